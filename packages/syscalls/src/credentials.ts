import { errnoName, SyscallError } from './errors.js';
import { lastErrno, loadLibc } from './libc.js';

// glibc's setgroups, setgid and setuid change the credentials of every
// thread of the process, not only the caller's: the kernel keeps them per
// thread, and glibc signals each thread to make the same change (nptl's
// setxid). A multithreaded runtime such as Node or Bun therefore drops its
// privileges as a whole.

function fail(syscall: string, errno: number, args: string): SyscallError {
  return new SyscallError({ syscall, errno, code: errnoName(errno), args });
}

/**
 * Switches the process to `uid`, `gid` and the supplementary `groups`, in
 * the order that works: groups and gid while the process is still root,
 * uid last. The kernel clears the parent-death signal on this change, so a
 * caller that relies on it sets it again afterwards.
 */
export function switchUser(uid: number, gid: number, groups: readonly number[]): void {
  const libc = loadLibc();
  if (libc.setgroups(Uint32Array.from(groups)) === -1) {
    const errno = lastErrno();
    throw fail('setgroups', errno, `groups=${groups.join(',')}`);
  }
  if (libc.setgid(gid) === -1) {
    const errno = lastErrno();
    throw fail('setgid', errno, `gid=${gid}`);
  }
  if (libc.setuid(uid) === -1) {
    const errno = lastErrno();
    throw fail('setuid', errno, `uid=${uid}`);
  }
}
