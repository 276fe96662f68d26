import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';

import { close, LOCK_FILE_MODE, lockFile, O_RDONLY, openFile, SyscallError, unlockFile, withFileLock } from '../src/index.js';
import { cleanUp, makeTempDir, startFixture, waitForExit } from './helpers.js';

// The in-process tests use the koffi backend. The tests with fixtures run
// once per runtime, so they cover bun:ffi as well. flock(2) locks belong to
// an open file description, so two open(2) calls in one process conflict
// like two processes do.

afterEach(cleanUp);

const O_CLOEXEC_FLAG = 0o2000000;

function lockPath(): string {
  return join(makeTempDir(), 'lock');
}

function openTwice(path: string): [number, number] {
  withFileLock(path, () => undefined);
  return [openFile(path, O_RDONLY), openFile(path, O_RDONLY)];
}

function catchSyscallError(call: () => unknown): SyscallError {
  try {
    call();
  } catch (error) {
    if (SyscallError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a SyscallError');
}

// The descriptors of this process that point at `path`, with the flags of
// /proc/self/fdinfo (octal).
function descriptorsOf(path: string): { fd: number; flags: number }[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    })
    .map((fd) => {
      const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0';
      return { fd, flags: Number.parseInt(flags, 8) };
    });
}

// Lines of /proc/locks (proc(5)) for waiters ("->") on the file at `path`:
// the inode field is MAJOR:MINOR:INODE.
function waitersOn(path: string): string[] {
  const inode = statSync(path).ino;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .filter((line) => line.includes(' -> FLOCK ') && line.split(/\s+/)[6]?.endsWith(`:${inode}`));
}

async function waitUntil(check: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function startLockFixture(action: string, path: string) {
  const child = startFixture('file-lock.mjs', [action, path]);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  return {
    child,
    async nextLine(): Promise<Record<string, unknown>> {
      const { value, done } = await lines.next();
      if (done) throw new Error(`file-lock.mjs ${action} ended its output early`);
      return JSON.parse(value) as Record<string, unknown>;
    },
  };
}

describe('lockFile', () => {
  it('lockFile exclusive excludes a second description', () => {
    const [first, second] = openTwice(lockPath());
    try {
      expect(lockFile(first, 'exclusive')).toBe(true);
      expect(lockFile(second, 'exclusive', { wait: false })).toBe(false);
      expect(lockFile(second, 'shared', { wait: false })).toBe(false);
    } finally {
      close(first);
      close(second);
    }
  });

  it('lockFile shared admits other readers', () => {
    const [first, second] = openTwice(lockPath());
    try {
      expect(lockFile(first, 'shared')).toBe(true);
      expect(lockFile(second, 'shared', { wait: false })).toBe(true);
      unlockFile(second);
      expect(lockFile(second, 'exclusive', { wait: false })).toBe(false);
    } finally {
      close(first);
      close(second);
    }
  });

  it('unlockFile lets the next holder in', () => {
    const [first, second] = openTwice(lockPath());
    try {
      lockFile(first);
      unlockFile(first);
      expect(lockFile(second, 'exclusive', { wait: false })).toBe(true);
    } finally {
      close(first);
      close(second);
    }
  });

  it('close releases the lock', () => {
    const [first, second] = openTwice(lockPath());
    try {
      lockFile(first);
      close(first);
      expect(lockFile(second, 'exclusive', { wait: false })).toBe(true);
    } finally {
      close(second);
    }
  });

  it('lockFile of a closed descriptor throws EBADF', () => {
    const fd = openFile('/dev/null', O_RDONLY);
    close(fd);

    const error = catchSyscallError(() => lockFile(fd));

    expect(error.syscall).toBe('flock');
    expect(error.code).toBe('EBADF');
    expect(error.message).toBe(`flock fd=${fd} operation=LOCK_EX: EBADF (bad file descriptor)`);
  });

  it('unlockFile of a closed descriptor throws EBADF', () => {
    const fd = openFile('/dev/null', O_RDONLY);
    close(fd);

    expect(catchSyscallError(() => unlockFile(fd))).toMatchObject({ syscall: 'flock', code: 'EBADF', args: `fd=${fd} operation=LOCK_UN` });
  });
});

describe('withFileLock', () => {
  it('withFileLock creates the file with mode 0600', () => {
    const path = lockPath();
    const previous = process.umask(0);
    try {
      withFileLock(path, () => undefined);
    } finally {
      process.umask(previous);
    }

    expect(statSync(path).mode & 0o777).toBe(LOCK_FILE_MODE);
    expect(LOCK_FILE_MODE).toBe(0o600);
  });

  it('withFileLock returns the result and holds the lock', () => {
    const path = lockPath();
    const [other] = openTwice(path);
    try {
      const result = withFileLock(path, () => lockFile(other, 'exclusive', { wait: false }));

      expect(result).toBe(false);
      expect(lockFile(other, 'exclusive', { wait: false })).toBe(true);
    } finally {
      close(other);
    }
  });

  it('withFileLock opens the file close-on-exec', () => {
    const path = lockPath();

    const inside = withFileLock(path, () => descriptorsOf(path));

    expect(inside).toHaveLength(1);
    expect((inside[0]?.flags ?? 0) & O_CLOEXEC_FLAG).toBe(O_CLOEXEC_FLAG);
    expect(descriptorsOf(path)).toEqual([]);
  });

  it('withFileLock releases after the section throws', () => {
    const path = lockPath();

    expect(() =>
      withFileLock(path, () => {
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(descriptorsOf(path)).toEqual([]);
    const [other] = openTwice(path);
    try {
      expect(lockFile(other, 'exclusive', { wait: false })).toBe(true);
    } finally {
      close(other);
    }
  });

  it('withFileLock rejects an async section', async () => {
    const path = lockPath();
    let settled: Promise<void> | undefined;

    expect(() =>
      withFileLock(path, () => {
        settled = Promise.resolve();
        return settled;
      }),
    ).toThrow(TypeError);
    await settled;
    expect(descriptorsOf(path)).toEqual([]);
  });

  it('withFileLock in a missing folder throws ENOENT', () => {
    const path = join(makeTempDir(), 'missing', 'lock');

    expect(catchSyscallError(() => withFileLock(path, () => undefined))).toMatchObject({ syscall: 'open', code: 'ENOENT', path });
  });
});

describe('file locks between processes', () => {
  it('second process sees the lock taken', async () => {
    const path = lockPath();
    const holder = startLockFixture('hold', path);
    expect(await holder.nextLine()).toMatchObject({ step: 'locked' });

    const tried = startLockFixture('try', path);
    // Listening for the exit from the start: the process may end before its last line is read.
    const triedExit = waitForExit(tried.child);

    expect(await tried.nextLine()).toEqual({ step: 'tried', locked: false });
    expect(await triedExit).toMatchObject({ status: 0 });
  });

  it('waiter proceeds when the holder is killed', async () => {
    const path = lockPath();
    const holder = startLockFixture('hold', path);
    expect(await holder.nextLine()).toMatchObject({ step: 'locked' });
    const waiter = startLockFixture('wait', path);
    // Listening for the exit from the start: the process may end before its last line is read.
    const waiterExit = waitForExit(waiter.child);
    expect(await waiter.nextLine()).toMatchObject({ step: 'waiting' });
    await waitUntil(() => waitersOn(path).length === 1, 'the waiter to block in flock');

    const holderExit = waitForExit(holder.child);
    holder.child.kill('SIGKILL');

    expect(await holderExit).toMatchObject({ signal: 'SIGKILL' });
    expect(await waiter.nextLine()).toEqual({ step: 'locked' });
    expect(await waiterExit).toMatchObject({ status: 0 });
    expect(waitersOn(path)).toEqual([]);
  });

  it('child program never gets the lock descriptor', async () => {
    const path = lockPath();
    const spawner = startLockFixture('spawn', path);
    const spawnerExit = waitForExit(spawner.child);

    const { targets } = (await spawner.nextLine()) as { targets: string[] };

    expect(targets.length).toBeGreaterThanOrEqual(3);
    expect(targets).not.toContain(path);
    expect(await spawnerExit).toMatchObject({ status: 0 });
  });
});
