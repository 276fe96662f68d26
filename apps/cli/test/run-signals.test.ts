import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';

import { childPids, isAlive, killStartedCli, NOT_ROOT, runCli, waitFor } from './helpers.js';

afterEach(killStartedCli);

// A PID 1 that reports each signal it handles and exits on TERM. The loop
// of short sleeps lets sh run its traps between them.
const TRAPPING_SCRIPT = [
  'for sig in INT HUP QUIT USR1 USR2; do trap "echo got $sig" $sig; done',
  'trap "echo got TERM; exit 3" TERM',
  'echo ready',
  'while :; do sleep 0.05; done',
].join('\n');

function startTrapping(onCliPid: (pid: number) => void) {
  let output = '';
  const running = runCli(['run', '/bin/sh', '-c', TRAPPING_SCRIPT], {
    onSpawn: (child) => {
      onCliPid(child.pid as number);
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
    },
  });
  return { running, output: () => output };
}

describe.skipIf(NOT_ROOT)('run signals (needs root)', () => {
  it('signals to the CLI reach the container', async () => {
    let cliPid = 0;
    const container = startTrapping((pid) => {
      cliPid = pid;
    });
    await waitFor(() => container.output().includes('ready\n'), 'the container to start');

    for (const signal of ['SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const) {
      process.kill(cliPid, signal);
      const name = signal.slice(3);
      await waitFor(() => container.output().includes(`got ${name}\n`), `the container to handle ${signal}`);
    }
    process.kill(cliPid, 'SIGTERM');

    const result = await container.running;
    expect(result.status).toBe(3);
    expect(result.stdout.toString()).toBe('ready\ngot INT\ngot HUP\ngot QUIT\ngot USR1\ngot USR2\ngot TERM\n');
  });

  it('container dies when the CLI is killed', async () => {
    let cliPid = 0;
    const running = runCli(['run', '/bin/sleep', '4714'], {
      onSpawn: (child) => {
        cliPid = child.pid as number;
      },
    });
    let containerPid = 0;
    await waitFor(() => {
      containerPid = childPids(cliPid)[0] ?? 0;
      return containerPid > 0 && readComm(containerPid) === 'sleep';
    }, 'the container to exec sleep');

    process.kill(cliPid, 'SIGKILL');
    const result = await running;
    expect(result.signal).toBe('SIGKILL');
    await waitFor(() => !isAlive(containerPid), 'the container to die with its CLI');
  });

  it('init dies when the CLI is killed early', async () => {
    // The CLI is stopped as soon as the init exists, usually before it sent
    // start, so the init is left waiting on fd 3; then the CLI is killed.
    // Whatever step the init reached, nothing may survive.
    let cliPid = 0;
    const running = runCli(['run', '/bin/sleep', '4715'], {
      onSpawn: (child) => {
        cliPid = child.pid as number;
      },
    });
    let initPid = 0;
    await waitFor(() => {
      initPid = childPids(cliPid)[0] ?? 0;
      return initPid > 0;
    }, 'the CLI to spawn the init');
    process.kill(cliPid, 'SIGSTOP');
    process.kill(cliPid, 'SIGKILL');
    await running;
    await waitFor(() => !isAlive(initPid), 'the init to die with its CLI');
  });
});

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
