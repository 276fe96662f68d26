import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { buildTestImages } from '../../../scripts/test-images/build-test-images.mjs';
import { HAS_BUSYBOX, isAlive, killStartedCli, makeTempDir, NOT_ROOT, runCli, waitFor } from './helpers.js';

// `run -d` with -t and -i, in containers of the busybox test image. The
// monitor keeps the pty's master or the stdin socket open, so an interactive
// `sh` or `cat` waits for input instead of exiting, and the pty's output
// goes to the log file as stdout lines. No test has a client terminal:
// runCli's standard input is /dev/null.

let base: { path: string; remove: () => void };
let store: string;

beforeAll(async () => {
  if (NOT_ROOT || !HAS_BUSYBOX) return;
  base = makeTempDir('detached-terminal');
  const images = await buildTestImages(join(base.path, 'images'));
  store = join(base.path, 'store');
  const imported = await runCli(['--root', store, 'image', 'import', images.dockerArchive]);
  if (imported.status !== 0) throw new Error(`import failed: ${imported.stderr}`);
}, 60_000);

afterEach(killStartedCli);

afterAll(async () => {
  if (store !== undefined) {
    const left = (await cli(['ps', '-a', '-q'])).stdout.toString().split('\n').filter(Boolean);
    if (left.length > 0) await cli(['rm', '-f', ...left]);
  }
  base?.remove();
});

function cli(args: string[]) {
  return runCli(['--root', store, ...args]);
}

/** Starts `run -d ARGS` and returns the container's id. */
async function startDetached(args: string[]): Promise<string> {
  const started = await cli(['run', '-d', ...args]);
  if (started.status !== 0) throw new Error(`run -d ${args.join(' ')} failed with ${started.status}: ${started.stderr}`);
  return started.stdout.toString().trim();
}

function readRecord(id: string): { owner: { pid: number }; init: { pid: number } } {
  return JSON.parse(readFileSync(join(store, 'containers', id, 'container.json'), 'utf8'));
}

function readLogEntries(id: string): { log: string; stream: string; time: string }[] {
  return readFileSync(join(store, 'containers', id, 'container.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

/** Returns the `ps -a --format json` line of the container `name`. */
async function psLine(name: string): Promise<Record<string, string> | undefined> {
  const lines = (await cli(['ps', '-a', '--format', 'json'])).stdout.toString().split('\n').filter(Boolean);
  return lines.map((line) => JSON.parse(line) as Record<string, string>).find((line) => line.Names === name);
}

/** Returns field 3 of /proc/1/stat in the container, PID 1's state (S: sleeping, such as in a read), through exec. */
async function stateOfPid1(name: string): Promise<string> {
  const result = await cli(['exec', name, 'cut', '-d', ' ', '-f', '3', '/proc/1/stat']);
  expect(result.stderr).toBe('');
  return result.stdout.toString().trim();
}

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('run -d with -t and -i (root only; needs /bin/busybox)', () => {
  it('run -dit sh stays up until stopped', async () => {
    await startDetached(['-i', '-t', '--name', 'shell', '--image', 'busybox', 'sh']);

    const stdin = await cli(['exec', 'shell', 'readlink', '/proc/1/fd/0']);
    const state = await stateOfPid1('shell');
    const listed = await psLine('shell');
    const stopped = await cli(['stop', '-t', '1', 'shell']);
    const waited = await cli(['wait', 'shell']);

    expect(stdin.stdout.toString()).toMatch(/^\/dev\/pts\/\d+\n$/);
    expect(state).toBe('S');
    expect(listed?.State).toBe('running');
    expect(stopped.status).toBe(0);
    // An interactive sh ignores SIGTERM, so stop falls back to SIGKILL.
    expect(waited.stdout.toString()).toBe('137\n');
  });

  it('run -dt logs the pty and its size', async () => {
    const id = await startDetached(['-t', '--image', 'busybox', 'sh', '-c', 'tty; test -c "$(tty)" && echo exists; stty size; echo to-stderr >&2']);
    const waited = await cli(['wait', id]);

    const logs = await cli(['logs', id]);
    const entries = readLogEntries(id);

    expect(waited.stdout.toString()).toBe('0\n');
    expect(logs.stdout.toString()).toMatch(/^\/dev\/pts\/\d+\r\nexists\r\n24 80\r\nto-stderr\r\n$/);
    // A terminal has one output, so stderr's lines are stdout's too, as with docker.
    expect(logs.stderr).toBe('');
    expect(entries.map((entry) => entry.stream)).toEqual(['stdout', 'stdout', 'stdout', 'stdout']);
    expect(entries.map((entry) => entry.log).slice(1)).toEqual(['exists\r\n', '24 80\r\n', 'to-stderr\r\n']);
    for (const entry of entries) expect(entry.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('run -dt keeps output written before the exit', async () => {
    const id = await startDetached(['-t', '--image', 'busybox', 'seq', '1', '20000']);
    await cli(['wait', id]);

    const entries = readLogEntries(id);

    expect(entries).toHaveLength(20000);
    expect(entries[0]?.log).toBe('1\r\n');
    expect(entries.at(-1)?.log).toBe('20000\r\n');
    expect(entries.map((entry) => entry.log).join('')).toBe(Array.from({ length: 20000 }, (_, index) => `${index + 1}\r\n`).join(''));
  });

  it('run -di cat waits until stopped', async () => {
    await startDetached(['-i', '--name', 'reader', '--image', 'busybox', 'cat']);

    const stdin = await cli(['exec', 'reader', 'readlink', '/proc/1/fd/0']);
    const state = await stateOfPid1('reader');
    const stopped = await cli(['stop', '-t', '1', 'reader']);
    const waited = await cli(['wait', 'reader']);
    const listed = await psLine('reader');

    expect(stdin.stdout.toString()).toMatch(/^socket:\[\d+\]\n$/);
    expect(state).toBe('S');
    expect(stopped.status).toBe(0);
    expect(waited.stdout.toString()).toBe('137\n');
    expect(listed?.Status).toMatch(/^Exited \(137\) /);
  });

  it('run -d without -i gives cat /dev/null', async () => {
    const id = await startDetached(['--image', 'busybox', 'sh', '-c', 'readlink /proc/self/fd/0; cat']);
    const waited = await cli(['wait', id]);
    const logs = await cli(['logs', id]);

    expect(waited.stdout.toString()).toBe('0\n');
    expect(logs.stdout.toString()).toBe('/dev/null\n');
  });

  it('run -dt --rm removes the container', async () => {
    const id = await startDetached(['-t', '--rm', '--image', 'busybox', 'sh', '-c', 'echo bye; exit 3']);

    await waitFor(() => !existsSync(join(store, 'containers', id)), 'the container directory to go');
    expect((await cli(['ps', '-a', '-q'])).stdout.toString()).not.toContain(id.slice(0, 12));
  });

  it('run -dt reports a failed start', async () => {
    const before = readdirSync(join(store, 'containers'));
    const result = await cli(['run', '-d', '-i', '-t', '--image', 'busybox', 'nosuchcommand']);

    expect(result.status).toBe(127);
    expect(result.stderr).toContain('cannot run "nosuchcommand"');
    expect(readdirSync(join(store, 'containers'))).toEqual(before);
  });

  // The monitor keeps the pty's master (-t) or the stdin socket (-i) open.
  // Its death must end the container through the parent-death signal.
  it.each([
    ['-it', 'sh', 1],
    ['-i', 'cat', 0],
  ] as const)('killed monitor ends a %s container', async (options, command, masterCount) => {
    const name = `orphaned-${command}`;
    const id = await startDetached([options, '--name', name, '--image', 'busybox', command]);
    const record = readRecord(id);
    const masters = readdirSync(`/proc/${record.owner.pid}/fd`).filter((fd) => {
      try {
        return readFileSync(`/proc/${record.owner.pid}/fdinfo/${fd}`, 'utf8').includes('tty-index:');
      } catch {
        return false;
      }
    });

    process.kill(record.owner.pid, 'SIGKILL');
    await waitFor(() => !isAlive(record.init.pid), 'the container to die with its monitor');
    const listed = await psLine(name);
    const removed = await cli(['rm', '-f', name]);

    expect(masters).toHaveLength(masterCount);
    expect(listed?.Status).toBe('Exited (unknown: its m-docker process was killed)');
    expect(removed.status).toBe(0);
    expect(existsSync(join(store, 'containers', id))).toBe(false);
  });
});
