import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import type { ContainerConfig } from '@m-docker/ipc';
import { afterEach, describe, expect, it } from 'vitest';

import {
  cleanUp,
  fixturePath,
  HANG_DEADLINE_MS,
  hasBusybox,
  isRoot,
  makeConfig,
  makeRoot,
  NEEDS_ROOT,
  trackProcess,
  withDeadline,
} from './helpers.js';

/** The state and start time (in clock ticks since boot) of a process, from /proc/PID/stat (proc(5)). */
interface ProcessStat {
  state: string;
  startTime: string;
}

// Returns undefined once the process is gone. The command field may hold
// spaces and parentheses, so the fields are counted from its closing one.
function readStat(pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', startTime: fields[19] ?? '' };
}

// A process is dead once /proc has no entry for it, its entry is a zombie
// not yet reaped, or the pid belongs to a newer process.
function isDead(pid: number, startTime: string): boolean {
  const stat = readStat(pid);
  return stat === undefined || stat.state === 'Z' || stat.state === 'X' || stat.startTime !== startTime;
}

async function waitUntilDead(pid: number, startTime: string): Promise<void> {
  const deadline = Date.now() + HANG_DEADLINE_MS;
  while (!isDead(pid, startTime)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still runs ${HANG_DEADLINE_MS} ms after its parent died`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// The init that the fixture started, killed by pid in afterEach if the test failed to end it.
let orphan: { pid: number; startTime: string } | undefined;

afterEach(async () => {
  if (orphan && !isDead(orphan.pid, orphan.startTime)) process.kill(orphan.pid, 'SIGKILL');
  orphan = undefined;
  await cleanUp();
});

/** Starts fixtures/parent.mjs and returns it with the init's pid that it prints. */
async function startParent(argv: string[], step: 'ready' | 'exec', overrides: Partial<ContainerConfig> = {}) {
  const config = makeConfig({ argv, ...overrides });
  const parent = trackProcess(
    spawn(process.execPath, [fixturePath('parent.mjs'), JSON.stringify(config), step], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  const lines = createInterface({ input: parent.stdout })[Symbol.asyncIterator]();
  const first = await withDeadline(lines.next(), 'the init pid from parent.mjs');
  if (first.done) throw new Error('parent.mjs ended before it printed the init pid');

  const { initPid } = JSON.parse(first.value) as { initPid: number };
  const stat = readStat(initPid);
  if (!stat) throw new Error(`init ${initPid} is gone before the test killed its parent`);
  orphan = { pid: initPid, startTime: stat.startTime };
  return { parent, initPid, startTime: stat.startTime };
}

describe.skipIf(!isRoot)(`init parent-death signal (${NEEDS_ROOT})`, () => {
  it('kills command when parent dies', async () => {
    const { parent, initPid, startTime } = await startParent(['sleep', '1000'], 'exec');

    // The init's pid is the command's: execve kept the process.
    expect(readFileSync(`/proc/${initPid}/cmdline`, 'utf8')).toBe('sleep\u00001000\u0000');
    expect(isDead(initPid, startTime)).toBe(false);
    parent.kill('SIGKILL');

    await waitUntilDead(initPid, startTime);
  });

  it('ends init waiting for start when parent dies', async () => {
    const { parent, initPid, startTime } = await startParent(['/bin/sh', '-c', 'echo command-ran'], 'ready');

    expect(isDead(initPid, startTime)).toBe(false);
    parent.kill('SIGKILL');

    await waitUntilDead(initPid, startTime);
  });

  // The kernel clears the parent-death signal when the credentials change,
  // so the init must set it again after switching to the user.
  it.skipIf(!hasBusybox)('kills command of another user when parent dies', async () => {
    const { parent, initPid, startTime } = await startParent(['/bin/sleep', '1000'], 'exec', {
      root: makeRoot(),
      user: { spec: 'app', setHome: true },
    });

    expect(readFileSync(`/proc/${initPid}/status`, 'utf8')).toMatch(/^Uid:\s+1000\s/m);
    parent.kill('SIGKILL');

    await waitUntilDead(initPid, startTime);
  });
});
