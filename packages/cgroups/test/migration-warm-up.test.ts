import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { type CgroupLayout, ownCgroupPaths } from '../src/index.js';
import { type MigrationWarmUpOptions, warmUpMigration } from '../src/migration-warm-up.js';

// warmUpMigration against plain files in a temporary directory (fsRoot),
// for the path it picks and its failures, and against the real cgroupfs of
// the machine, where the write must move nothing. That the write makes the
// next migration fast is a matter of timing, which tests do not assert.
// bench/migration-latency.mjs measures it.

const isRoot = process.getuid?.() === 0;
const temporaryDirectories: string[] = [];

afterEach(() => {
  for (const directory of temporaryDirectories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/** Creates a temporary fsRoot with an empty file at each of `files` (paths below the root). */
function fakeRoot(files: string[]): string {
  const fsRoot = mkdtempSync(join(tmpdir(), 'm-docker-warm-up-'));
  temporaryDirectories.push(fsRoot);
  for (const file of files) {
    mkdirSync(dirname(join(fsRoot, file)), { recursive: true });
    writeFileSync(join(fsRoot, file), '');
  }
  return fsRoot;
}

const HYBRID: CgroupLayout = {
  version: 1,
  controllers: { cpu: '/sys/fs/cgroup/cpu', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
};

/** Returns the distinct /proc/<tid>/cgroup texts of this process's threads. Threads may come and go between calls. */
function threadCgroups(): string[] {
  const texts = readdirSync('/proc/self/task').map((tid) => readFileSync(`/proc/self/task/${tid}/cgroup`, 'utf8'));
  return [...new Set(texts)];
}

/**
 * Makes `tasks` a FIFO whose buffer is full, so that a blocking write to it
 * waits until the returned reader drains it or is closed.
 */
function fullFifo(fsRoot: string): { path: string; reader: number } {
  const path = join(fsRoot, 'sys/fs/cgroup/cpu/tasks');
  mkdirSync(dirname(path), { recursive: true });
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const filler = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    for (const size of [4096, 1]) {
      for (;;) {
        try {
          writeSync(filler, Buffer.alloc(size));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(filler);
  }
  return { path, reader };
}

/** Reads the FIFO until it is empty, and returns the last bytes read as text. */
function drain(reader: number): string {
  const buffer = Buffer.alloc(65536);
  let last = '';
  for (;;) {
    let count: number;
    try {
      count = readSync(reader, buffer);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return last;
      throw error;
    }
    if (count === 0) return last;
    last = buffer.subarray(Math.max(0, count - 16), count).toString('latin1');
  }
}

describe('warmUpMigration', () => {
  it.each<[string, MigrationWarmUpOptions, string]>([
    ['v1: the first mounted hierarchy with an entry', { layout: HYBRID, ownPaths: { cpu: '/', memory: '/bound/box' } }, '/sys/fs/cgroup/cpu/tasks'],
    ['v1: a hierarchy missing from /proc/self/cgroup is skipped', { layout: HYBRID, ownPaths: { memory: '/bound/box' } }, '/sys/fs/cgroup/memory/bound/box/tasks'],
    [
      'v1 mounted from a cgroup below the root',
      { layout: { version: 1, controllers: { pids: '/sys/fs/cgroup/pids' }, mountRoots: { pids: '/docker/abc' } }, ownPaths: { pids: '/docker/abc/inner' } },
      '/sys/fs/cgroup/pids/inner/tasks',
    ],
    ['v2 in a cgroup of its own', { layout: { version: 2, root: '/sys/fs/cgroup' }, ownPaths: { '': '/user.slice/app.scope' } }, '/sys/fs/cgroup/user.slice/app.scope/cgroup.threads'],
    ['v2 in the root', { layout: { version: 2, root: '/sys/fs/cgroup' }, ownPaths: { '': '/' } }, '/sys/fs/cgroup/cgroup.threads'],
    [
      'v2 mounted from a cgroup below the root',
      { layout: { version: 2, root: '/sys/fs/cgroup', mountRoot: '/lxc/c1' }, ownPaths: { '': '/lxc/c1/app' } },
      '/sys/fs/cgroup/app/cgroup.threads',
    ],
  ])('writes the main thread id: %s', async (_case, options, file) => {
    const fsRoot = fakeRoot([file]);

    const outcome = await warmUpMigration({ ...options, fsRoot });

    expect(outcome).toEqual({ path: `${fsRoot}${file}` });
    expect(readFileSync(join(fsRoot, file), 'utf8')).toBe(String(process.pid));
  });

  it.each<[string, MigrationWarmUpOptions, string]>([
    ['v1 with no entry in /proc/self/cgroup', { layout: HYBRID, ownPaths: { '': '/' } }, 'no cgroup v1 hierarchy in /proc/self/mountinfo has an entry in /proc/self/cgroup'],
    ['v2 with no entry in /proc/self/cgroup', { layout: { version: 2, root: '/sys/fs/cgroup' }, ownPaths: { memory: '/' } }, '/proc/self/cgroup has no entry for the cgroup2 hierarchy'],
    [
      'own cgroup outside the mounted part',
      { layout: { version: 2, root: '/sys/fs/cgroup', mountRoot: '/lxc/c1' }, ownPaths: { '': '/lxc/c2' } },
      'cgroup /lxc/c2 is not visible: the cgroup2 hierarchy is mounted on /sys/fs/cgroup from /lxc/c1',
    ],
  ])('resolves with LAYOUT_UNKNOWN: %s', async (_case, options, message) => {
    const fsRoot = fakeRoot([]);

    const outcome = await warmUpMigration({ ...options, fsRoot });

    expect(outcome.path).toBeUndefined();
    expect(outcome.error?.code).toBe('LAYOUT_UNKNOWN');
    expect(outcome.error?.message).toBe(message);
  });

  it('resolves with WRITE_FAILED for a missing file', async () => {
    const fsRoot = fakeRoot([]);

    const outcome = await warmUpMigration({ layout: HYBRID, ownPaths: { cpu: '/' }, fsRoot });

    const path = `${fsRoot}/sys/fs/cgroup/cpu/tasks`;
    expect(outcome.path).toBe(path);
    expect(outcome.error?.code).toBe('WRITE_FAILED');
    expect(outcome.error?.path).toBe(path);
    expect(outcome.error?.value).toBe(String(process.pid));
    expect(outcome.error?.message).toBe(`writing the main thread's id to ${path} failed: ENOENT (no such file or directory)`);
  });

  it('resolves with WRITE_FAILED when the write fails', async () => {
    // /dev/full accepts the open and fails every write with ENOSPC.
    const fsRoot = fakeRoot([]);
    mkdirSync(join(fsRoot, 'sys/fs/cgroup/cpu'), { recursive: true });
    symlinkSync('/dev/full', join(fsRoot, 'sys/fs/cgroup/cpu/tasks'));

    const outcome = await warmUpMigration({ layout: HYBRID, ownPaths: { cpu: '/' }, fsRoot });

    expect(outcome.error?.code).toBe('WRITE_FAILED');
    expect(outcome.error?.message).toMatch(/: ENOSPC \(no space left on device\)$/);
    expect((outcome.error?.cause as NodeJS.ErrnoException | undefined)?.code).toBe('ENOSPC');
  });

  it('returns while the write still waits', async () => {
    const fsRoot = fakeRoot([]);
    const { path, reader } = fullFifo(fsRoot);
    try {
      let settled = false;
      const pending = warmUpMigration({ layout: HYBRID, ownPaths: { cpu: '/' }, fsRoot }).then((outcome) => {
        settled = true;
        return outcome;
      });

      // The write cannot end while the FIFO is full, whatever the delay.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(settled).toBe(false);

      let received = '';
      while (!settled) {
        received += drain(reader);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      received += drain(reader);
      expect(await pending).toEqual({ path });
      expect(received.replace(/\0/g, '')).toBe(String(process.pid));
    } finally {
      closeSync(reader);
    }
  });

  it('resolves with WRITE_FAILED when the reader goes away', async () => {
    // The write waits in the kernel like one to a busy cgroup.procs. Closing
    // the only reader makes it fail with EPIPE instead of hanging.
    const fsRoot = fakeRoot([]);
    const { path, reader } = fullFifo(fsRoot);

    const pending = warmUpMigration({ layout: HYBRID, ownPaths: { cpu: '/' }, fsRoot });
    closeSync(reader);
    const outcome = await pending;

    expect(outcome.path).toBe(path);
    expect(outcome.error?.code).toBe('WRITE_FAILED');
    expect((outcome.error?.cause as NodeJS.ErrnoException | undefined)?.code).toBe('EPIPE');
  });
});

describe.skipIf(!isRoot)('warmUpMigration on the real cgroupfs (needs root)', () => {
  it('moves no thread of this process', async () => {
    const before = readFileSync('/proc/self/cgroup', 'utf8');
    expect(threadCgroups()).toEqual([before]);

    const outcome = await warmUpMigration();

    expect(outcome.error).toBeUndefined();
    expect(outcome.path).toMatch(/\/(tasks|cgroup\.threads)$/);
    expect(threadCgroups()).toEqual([before]);
  });

  it('writes to the own cgroup of a real cgroup2 mount', async () => {
    // On a hybrid machine the cgroup2 mount has no controllers, but it is a
    // real v2 hierarchy: the write goes to cgroup.threads there.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    const unified = mounts.map((line) => line.split(' ')).find((fields) => fields[fields.indexOf('-', 6) + 1] === 'cgroup2');
    if (unified?.[3] !== '/') return;
    const ownPaths = ownCgroupPaths();
    const before = readFileSync('/proc/self/cgroup', 'utf8');

    const outcome = await warmUpMigration({ layout: { version: 2, root: unified[4] as string }, ownPaths });

    expect(outcome.error).toBeUndefined();
    expect(outcome.path).toBe(`${unified[4]}${ownPaths[''] === '/' ? '' : ownPaths['']}/cgroup.threads`);
    expect(threadCgroups()).toEqual([before]);
  });
});
