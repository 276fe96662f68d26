import { symlinkSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { HAS_BUSYBOX, hostMounts, killStartedCli, makeTempDir, NOT_ROOT, runCli, writeBusyboxRootfs } from './helpers.js';

// `exec -t` without a real terminal: the command leads a new session with a
// pty of the container's own devpts as its controlling terminal, and the
// CLI copies the pty's output to its stdout. The tests in a real terminal
// (typing, resizing, Ctrl-C, the terminal mode) are in run-terminal.test.ts.

/** Applets the tests need besides those of writeBusyboxRootfs. */
const TERMINAL_APPLETS = ['tty', 'stty', 'readlink', 'kill', 'trap', 'stat'];

let base: { path: string; remove: () => void };
let rootfs: string;
let store: string;
let mountsBefore: string;

beforeAll(async () => {
  if (NOT_ROOT || !HAS_BUSYBOX) return;
  base = makeTempDir('exec-terminal');
  store = join(base.path, 'store');
  rootfs = join(base.path, 'rootfs');
  writeBusyboxRootfs(rootfs);
  for (const applet of TERMINAL_APPLETS) symlinkSync('busybox', join(rootfs, 'bin', applet));
  mountsBefore = hostMounts();
  await startTarget('target');
});

afterEach(() => {
  killStartedCli();
  if (mountsBefore !== undefined) expect(hostMounts()).toBe(mountsBefore);
});

afterAll(async () => {
  if (store !== undefined) await cli(['rm', '-f', 'target']);
  base?.remove();
});

function cli(args: string[], options: Parameters<typeof runCli>[1] = {}) {
  return runCli(['--root', store, ...args], options);
}

async function startTarget(name: string): Promise<void> {
  const started = await cli(['run', '-d', '--name', name, '--rootfs', rootfs, 'sleep', '1000']);
  if (started.status !== 0) throw new Error(`run -d failed: ${started.stderr}`);
}

/** The lines of pty output, whose line ends are \r\n. */
const ptyLines = (output: Buffer) => output.toString().split('\r\n');

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('exec -t (root only; needs /bin/busybox)', () => {
  it('exec -t names a pty of the container', async () => {
    const result = await cli(['exec', '-t', 'target', 'sh', '-c', 'tty; for fd in 0 1 2; do readlink /proc/self/fd/$fd; done']);

    expect(result.stderr.toString()).toBe('');
    expect(result.status).toBe(0);
    const [name, ...stdio] = ptyLines(result.stdout);
    expect(name).toMatch(/^\/dev\/pts\/\d+$/);
    expect(stdio).toEqual([name, name, name, '']);
  });

  it('exec -t command leads a session with the pty as controlling terminal', async () => {
    // Fields 6 and 7 of /proc/PID/stat: the session and the controlling terminal.
    const result = await cli(['exec', '-t', 'target', 'sh', '-c', 'read -r pid comm state ppid pgrp session tty rest < /proc/$$/stat; echo "$pid $session $tty"']);

    const [pid, session, tty] = (ptyLines(result.stdout)[0] as string).split(' ');
    expect(session).toBe(pid);
    expect(Number(tty)).toBeGreaterThan(0);
  });

  it('exec -t gives the command only the pty', async () => {
    const result = await cli(['exec', '-t', 'target', 'sh', '-c', 'ls -1 /proc/$$/fd; :']);

    expect(ptyLines(result.stdout)).toEqual(['0', '1', '2', '']);
  });

  it('exec -t sets TERM like docker', async () => {
    const result = await cli(['exec', '-t', 'target', 'sh', '-c', 'echo "TERM=$TERM"']);
    const kept = await cli(['exec', '-t', '-e', 'TERM=vt100', 'target', 'sh', '-c', 'echo "TERM=$TERM"']);

    expect(ptyLines(result.stdout)[0]).toBe('TERM=xterm');
    expect(ptyLines(kept.stdout)[0]).toBe('TERM=vt100');
  });

  it('exec -t passes the exit status on', async () => {
    const coded = await cli(['exec', '-t', 'target', 'sh', '-c', 'exit 7']);
    const killed = await cli(['exec', '-t', 'target', 'sh', '-c', 'kill -KILL $$']);

    expect(coded.status).toBe(7);
    expect(killed.status).toBe(137);
  });

  it('exec -t of a missing command gives 127', async () => {
    const result = await cli(['exec', '-t', 'target', 'nosuchcommand']);

    expect(result.status).toBe(127);
    expect(result.stderr.toString()).toBe(
      'm-docker: cannot run "nosuchcommand": executable file "nosuchcommand" not found in $PATH: check the command name and the container\'s PATH\n',
    );
  });

  it('exec -t of a file without execute permission gives 126', async () => {
    const result = await cli(['exec', '-t', 'target', '/etc/passwd']);

    expect(result.status).toBe(126);
    expect(result.stderr.toString()).toContain('permission denied');
  });

  it('exec -t -u gives the pty to the user', async () => {
    const result = await cli(['exec', '-t', '-u', 'app', 'target', 'sh', '-c', 'id; stat -c "%u" $(tty)']);

    expect(result.stderr.toString()).toBe('');
    expect(ptyLines(result.stdout)).toEqual(['uid=1000(app) gid=1000(app) groups=1000(app),2000(extra),2001(more)', '1000', '']);
  });

  it('exec -it without a terminal fails before it runs anything', async () => {
    const result = await cli(['exec', '-it', 'target', 'true'], { input: '' });

    expect(result.status).toBe(125);
    expect(result.stderr.toString()).toBe('m-docker: the input device is not a TTY: exec -it from a terminal, or drop -t to pass input through a pipe or file\n');
  });

  // A process left in the background that ignores the hangup keeps the pty
  // open; exec still ends with the command.
  it('exec -t returns when a background process keeps the pty', async () => {
    const result = await cli(['exec', '-t', 'target', 'sh', '-c', 'trap "" HUP; sleep 100 & echo started']);

    expect(result.status).toBe(0);
    expect(ptyLines(result.stdout)[0]).toBe('started');
  });

  // Bun aborts when it cannot start a thread, which the kernel refuses while
  // the CLI's main thread is in the container's PID namespace. Before that
  // window was cut to the spawn itself, about one exec -t in four crashed.
  it('repeated exec -t never crashes the runtime', async () => {
    const statuses: (number | null)[] = [];
    for (let round = 0; round < 30; round++) statuses.push((await cli(['exec', '-t', 'target', 'true'])).status);

    expect(statuses).toEqual(Array(30).fill(0));
  });

  it('exec -t ends when the container is killed', async () => {
    await startTarget('short-lived');
    const exec = cli(['exec', '-t', 'short-lived', 'sh', '-c', 'echo running; sleep 100']);
    const running = await waitForExecSleep(exec, 'short-lived');

    const removed = await cli(['rm', '-f', 'short-lived']);
    const result = await exec;

    expect(running).toBe(true);
    expect(removed.status).toBe(0);
    expect(result.status).toBe(137);
  });
});

// Waits until the container runs the exec'd sleep, by its process count;
// false when the exec ended first.
async function waitForExecSleep(exec: Promise<unknown>, name: string): Promise<boolean> {
  for (;;) {
    const listed = await cli(['exec', name, 'sh', '-c', 'ls /proc | grep -c "^[0-9]"']);
    // PID 1, the sh of exec -t, its sleep, and the sh -c of this check.
    if (Number(listed.stdout.toString()) >= 4) return true;
    const settled = await Promise.race([exec.then(() => true), Promise.resolve(false)]);
    if (settled) return false;
  }
}
