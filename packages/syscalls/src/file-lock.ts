import { close } from './calls.js';
import { errnoName, SyscallError } from './errors.js';
import { O_CLOEXEC, O_CREAT, O_RDONLY, openFile } from './fd-io.js';
import { lastErrno, loadLibc } from './libc.js';

// Advisory whole-file locks with flock(2). A lock belongs to the open file
// description, not to the process. Two open(2) calls on one file give two
// locks that conflict, even in one process, and a lock is released when the
// last descriptor of its description is closed. The kernel closes every
// descriptor of a process that dies, SIGKILL included, so a lock never
// outlives its holder and no stale-lock check is needed. On Linux, flock(2)
// locks and fcntl(2) record locks do not interact, and flock(2) detects no
// deadlock: a process that waits for a lock it holds through another
// descriptor waits forever (flock(2), NOTES).

/** Whether a lock may be shared with other readers or excludes every other holder. */
export type LockMode = 'shared' | 'exclusive';

/** Options of lockFile. */
export interface LockOptions {
  /** Block until the lock is free (the default), or return false at once when another holder has it. */
  wait?: boolean;
}

/** flock(2) operations from <sys/file.h>, the same on every Linux architecture. */
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** The permission bits of a lock file that withFileLock creates, before the umask. */
export const LOCK_FILE_MODE = 0o600;

const EINTR = 4;
// EWOULDBLOCK is EAGAIN on Linux.
const EWOULDBLOCK = 11;

const OPERATIONS: Record<LockMode, number> = { shared: LOCK_SH, exclusive: LOCK_EX };
const OPERATION_NAMES: Record<number, string> = {
  [LOCK_SH]: 'LOCK_SH',
  [LOCK_EX]: 'LOCK_EX',
  [LOCK_SH | LOCK_NB]: 'LOCK_SH|LOCK_NB',
  [LOCK_EX | LOCK_NB]: 'LOCK_EX|LOCK_NB',
  [LOCK_UN]: 'LOCK_UN',
};

function callFlock(fd: number, operation: number): number {
  for (;;) {
    if (loadLibc().flock(fd, operation) === 0) return 0;
    const errno = lastErrno();
    if (errno !== EINTR) return errno;
  }
}

function fail(fd: number, operation: number, errno: number): SyscallError {
  const args = `fd=${fd} operation=${OPERATION_NAMES[operation] ?? operation}`;
  return new SyscallError({ syscall: 'flock', errno, code: errnoName(errno), args });
}

/**
 * Locks the file open at `fd` (flock(2)) in `mode`. By default it blocks
 * until the lock is free and returns true. With `wait: false` it returns
 * false at once when another holder has a conflicting lock. Retries EINTR.
 * Throws a SyscallError for EBADF, ENOLCK and other failures. A lock that
 * this open file description already holds is converted to `mode`, and
 * the kernel may hand the file to a waiting process during the conversion.
 */
export function lockFile(fd: number, mode: LockMode = 'exclusive', options: LockOptions = {}): boolean {
  const operation = OPERATIONS[mode] | (options.wait === false ? LOCK_NB : 0);
  const errno = callFlock(fd, operation);
  if (errno === 0) return true;
  if (errno === EWOULDBLOCK && options.wait === false) return false;
  throw fail(fd, operation, errno);
}

/** Releases the lock that the open file description of `fd` holds (flock(2) with LOCK_UN). Without a lock it does nothing. */
export function unlockFile(fd: number): void {
  const errno = callFlock(fd, LOCK_UN);
  if (errno !== 0) throw fail(fd, LOCK_UN, errno);
}

/**
 * Runs `section` while holding a lock on the file at `path`, and returns
 * its result. The file is created with LOCK_FILE_MODE when it is missing,
 * and opened close-on-exec, so a program that a child process executes
 * never inherits the lock. The call blocks until the lock is free. The lock
 * is released when `section` returns or throws, and by the kernel when the
 * process dies inside it.
 *
 * `section` must be synchronous: a returned promise would settle after the
 * lock is gone, so it is rejected with a TypeError (after the release).
 * Calls on one path must not nest, because the inner call opens the file
 * again and waits for the outer lock forever.
 */
export function withFileLock<T>(path: string, section: () => T, mode: LockMode = 'exclusive'): T {
  const fd = openFile(path, O_RDONLY | O_CREAT | O_CLOEXEC, LOCK_FILE_MODE);
  let result: T;
  try {
    lockFile(fd, mode);
    result = section();
  } finally {
    // close(2) alone would keep the lock while a forked child still has a
    // copy of the descriptor, so the lock is released first. A failed
    // release changes nothing that close(2) does not fix.
    loadLibc().flock(fd, LOCK_UN);
    close(fd);
  }
  if (isPromiseLike(result)) {
    throw new TypeError(`withFileLock(${path}): the section returned a promise, but the lock covers synchronous work only: make the section synchronous`);
  }
  return result;
}

function isPromiseLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
