import { createRequire } from 'node:module';

import { setCloseOnExec } from './calls.js';
import { PR_GET_DUMPABLE, PR_SET_DUMPABLE, syscallNumber } from './constants.js';
import { errnoName, SyscallError, type SyscallErrorDetails } from './errors.js';
import { lastErrno, loadLibc } from './libc.js';

// Calls about processes: a descriptor that pins another process
// (pidfd_open), this process's dumpable flag, its descriptors' close-on-exec
// flags and the calling thread's working directory. `m-docker exec` uses
// them to join a running container.

function fail(errno: number, details: Omit<SyscallErrorDetails, 'errno' | 'code'>, subject?: string): SyscallError {
  return new SyscallError({ ...details, errno, code: errnoName(errno) }, subject);
}

const EBADF = 9;
const EINVAL = 22;
const ENOSYS = 38;

// close_range(2) flag (Linux 5.11): set FD_CLOEXEC instead of closing.
const CLOSE_RANGE_CLOEXEC = 4;

// PATH_MAX on Linux, including the terminating NUL.
const PATH_MAX = 4096;

/**
 * Opens a descriptor that refers to the process `pid` (pidfd_open(2),
 * Linux 5.3), close-on-exec. The descriptor keeps referring to that process
 * after it exits, so a recycled pid never leads to another one. Throws a
 * SyscallError: ESRCH when no process has that pid, EINVAL for an invalid
 * pid, and ENOSYS on a kernel or CPU without the call.
 */
export function pidfdOpen(pid: number): number {
  const number = syscallNumber('pidfd_open');
  if (number === undefined) {
    throw new SyscallError({ syscall: 'pidfd_open', errno: ENOSYS, code: 'ENOSYS', args: `arch=${process.arch}` });
  }

  const fd = loadLibc().pidfdOpen(number, pid, 0);
  if (fd === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'pidfd_open', args: `pid=${pid}` });
  }
  return fd;
}

/**
 * Sets whether this process is dumpable (prctl(PR_SET_DUMPABLE)). The flag
 * belongs to the whole process, not to one thread. While it is off, other
 * processes of the same user need CAP_SYS_PTRACE to ptrace this process or
 * to follow its /proc/PID/exe, /proc/PID/cwd and /proc/PID/fd links, and
 * no core dump is written. fork(2) copies the flag. execve(2) sets it back
 * to on, except for set-user-ID, set-group-ID and file-capability programs
 * and programs that the caller cannot read.
 */
export function setDumpable(dumpable: boolean): void {
  if (loadLibc().prctl(PR_SET_DUMPABLE, dumpable ? 1 : 0) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'prctl', args: `PR_SET_DUMPABLE ${dumpable ? 1 : 0}` });
  }
}

/**
 * Returns this process's dumpable flag (prctl(PR_GET_DUMPABLE)): 0 for off,
 * 1 for on, and 2 when the kernel made it readable by root only, after an
 * execve of a set-user-ID program with fs.suid_dumpable=2.
 */
export function getDumpable(): number {
  const value = loadLibc().prctl(PR_GET_DUMPABLE, 0);
  if (value === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'prctl', args: 'PR_GET_DUMPABLE' });
  }
  return value;
}

/**
 * Returns the calling thread's working directory, relative to its root
 * directory (getcwd(3)). Unlike `process.cwd()`, which Node caches, it
 * calls the kernel each time. It throws ENOENT when the directory was
 * removed, and with glibc 2.27 and later also when the directory is not
 * below the thread's root, as after a chdir(2) through a /proc/PID/fd link
 * to a directory outside a chroot(2) or pivot_root(2).
 */
export function getcwd(): string {
  const buffer = Buffer.alloc(PATH_MAX);
  if (loadLibc().getcwd(buffer) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'getcwd' });
  }

  const end = buffer.indexOf(0);
  return buffer.toString('utf8', 0, end === -1 ? buffer.length : end);
}

/**
 * Sets FD_CLOEXEC on every descriptor of this process from `first` up, so
 * that no later execve(2) passes them on (close_range(2) with
 * CLOSE_RANGE_CLOEXEC, Linux 5.11). The descriptors stay open in this
 * process. On older kernels (ENOSYS, or EINVAL for the unknown flag) it
 * sets the flag on each descriptor that /proc/self/fd lists.
 */
export function setCloseOnExecFrom(first: number): void {
  const number = syscallNumber('close_range');
  if (number !== undefined && loadLibc().closeRange(number, first, 0xffffffff, CLOSE_RANGE_CLOEXEC) === 0) {
    return;
  }
  const errno = number === undefined ? ENOSYS : lastErrno();
  if (errno !== ENOSYS && errno !== EINVAL) {
    throw fail(errno, { syscall: 'close_range', args: `first=${first} flags=CLOSE_RANGE_CLOEXEC` });
  }

  // node:fs is loaded only on this fallback path.
  const { readdirSync } = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (fd >= first) setCloseOnExecIfOpen(fd);
  }
}

// The descriptor that readdirSync listed the folder through is closed by
// now, and fcntl(2) fails on it with EBADF.
function setCloseOnExecIfOpen(fd: number): void {
  try {
    setCloseOnExec(fd);
  } catch (error) {
    if (!(SyscallError.isInstance(error) && error.errno === EBADF)) throw error;
  }
}
