import { currentJsRuntime, type JsRuntime } from '@m-docker/runtime';
import { fallbackDescriber, SyscallError } from './errors.js';
import { openBunLibc } from './libc-bun.js';
import { openKoffiLibc } from './libc-koffi.js';

/**
 * The glibc functions m-docker calls, with one implementation per
 * runtime: koffi under Node, bun:ffi under Bun. Functions that return int
 * return -1 on failure with errno set, and callers read `errno()` on the
 * very next line, before other native code can change it.
 */
export interface Libc {
  readonly backend: 'koffi' | 'bun:ffi';
  errno(): number;
  unshare(flags: number): number;
  setns(fd: number, nstype: number): number;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  sethostname(name: Buffer, length: number): number;
  chdir(path: string): number;
  fchdir(fd: number): number;
  chroot(path: string): number;
  execve(path: string, argv: readonly string[], envp: readonly string[]): number;
  /** execve(2) with a NUL-terminated path and NULL-terminated arrays of string addresses, converted in advance. */
  execvePrepared(path: Uint8Array, argv: BigUint64Array, envp: BigUint64Array): number;
  /** fcntl(2) with an int argument (F_SETFD, F_SETFL) or none (F_GETFD, F_GETFL: pass 0). */
  fcntl(fd: number, command: number, argument: number): number;
  /**
   * prctl(2) with one unsigned long argument, such as a signal number. The
   * kernel gets 0 for arguments 3 to 5, which some options require.
   */
  prctl(option: number, argument: number): number;
  /** prctl(2) whose second argument is a pointer to an int that the kernel fills in. */
  prctlReadInt(option: number, result: Int32Array): number;
  getpid(): number;
  /**
   * capget(2): `header` holds the version and the thread id (0 for the
   * calling thread), and the kernel fills `data` with two words of each of
   * the effective, permitted and inheritable sets, low words first.
   */
  capget(header: Uint32Array, data: Uint32Array): number;
  /** capset(2) with `header` and `data` laid out as for capget. */
  capset(header: Uint32Array, data: Uint32Array): number;
  close(fd: number): number;
  /** read(2) into `buffer`, which may be a view into a larger buffer. */
  read(fd: number, buffer: Uint8Array): number;
  /** write(2) from `buffer`, which may be a view into a larger buffer. */
  write(fd: number, buffer: Uint8Array): number;
  open(path: string, flags: number, mode: number): number;
  access(path: string, mode: number): number;
  /** flock(2): `operation` is LOCK_SH or LOCK_EX, optionally ORed with LOCK_NB, or LOCK_UN. */
  flock(fd: number, operation: number): number;
  dup2(oldFd: number, newFd: number): number;
  setsid(): number;
  /** socketpair(2): fills `fds` with the two descriptors. */
  socketpair(domain: number, type: number, protocol: number, fds: Int32Array): number;
  /** sendmsg(2) of the struct msghdr laid out in `message`. */
  sendmsg(fd: number, message: Uint8Array, flags: number): number;
  /** recvmsg(2); the kernel fills the buffers that the struct msghdr in `message` points to, and updates it. */
  recvmsg(fd: number, message: Uint8Array, flags: number): number;
  /** ioctl(2) with a pointer argument, or with 0 when `argument` is null. */
  ioctl(fd: number, request: number, argument: Uint8Array | null): number;
  /** The address of `buffer`'s first byte, for the pointers inside a struct such as msghdr. */
  address(buffer: Uint8Array): bigint;
  /** fchown(2); 0xffffffff (-1 as uid_t and gid_t) leaves that id unchanged. */
  fchown(fd: number, uid: number, gid: number): number;
  /** Sets the action of `signum` to SIG_DFL. */
  signalDefault(signum: number): void;
  sigprocmask(how: number, set: Buffer): number;
  pivotRoot(number: number, newRoot: string, putOld: string): number;
  mkdir(path: string, mode: number): number;
  chmod(path: string, mode: number): number;
  /** mknod(2); `device` is the kernel's dev_t as makedev(3) builds it. */
  mknod(path: string, mode: number, device: bigint): number;
  symlink(target: string, linkPath: string): number;
  /** readlink(2) into `buffer`; returns the length of the target, which has no NUL. */
  readlink(path: string, buffer: Uint8Array): number;
  setgroups(groups: Uint32Array): number;
  setgid(gid: number): number;
  setuid(uid: number): number;
  /** lsetxattr(2): sets the extended attribute `name` of `path` itself, never of a symlink's target. */
  lsetxattr(path: string, name: string, value: Uint8Array, flags: number): number;
  /** lgetxattr(2) into `buffer`; with an empty buffer it returns the value's length. */
  lgetxattr(path: string, name: string, buffer: Uint8Array): number;
  closeRange(number: number, first: number, last: number, flags: number): number;
  /** pidfd_open(2) through syscall(2); returns the new descriptor. */
  pidfdOpen(number: number, pid: number, flags: number): number;
  /** getcwd(3) into `buffer` as a NUL-terminated path; returns 0, or -1 with errno set. */
  getcwd(buffer: Uint8Array): number;
  /**
   * posix_spawn(3) with the attributes and file actions laid out in
   * `attributes` and `fileActions`, which the functions below fill in, and
   * the path, argv and envp built beforehand (cStringArray). Writes the
   * child's pid to `pid[0]`; returns 0 or an errno value.
   */
  posixSpawn(pid: Int32Array, path: Uint8Array, fileActions: Uint8Array, attributes: Uint8Array, argv: BigUint64Array, envp: BigUint64Array): number;
  posixSpawnattrInit(attributes: Uint8Array): number;
  posixSpawnattrDestroy(attributes: Uint8Array): number;
  posixSpawnattrSetflags(attributes: Uint8Array, flags: number): number;
  /** The signal mask of the child, a sigset_t. */
  posixSpawnattrSetsigmask(attributes: Uint8Array, set: Uint8Array): number;
  /** The signals whose action the child resets to the default, a sigset_t. */
  posixSpawnattrSetsigdefault(attributes: Uint8Array, set: Uint8Array): number;
  posixSpawnFileActionsInit(fileActions: Uint8Array): number;
  posixSpawnFileActionsDestroy(fileActions: Uint8Array): number;
  /** Adds an open(2) of `path` at `fd` in the child; glibc keeps a copy of the path. */
  posixSpawnFileActionsAddopen(fileActions: Uint8Array, fd: number, path: string, flags: number, mode: number): number;
  posixSpawnFileActionsAdddup2(fileActions: Uint8Array, fd: number, newFd: number): number;
  /** waitpid(2); the kernel writes the wait status to `status[0]`. */
  waitpid(pid: number, status: Int32Array, options: number): number;
  /**
   * A raw setresuid(2) or setresgid(2) through syscall(2): unlike glibc's
   * wrappers it changes only the calling thread. 0xffffffff leaves an id
   * as it is.
   */
  setThreadIds(number: number, real: number, effective: number, saved: number): number;
  /** getgroups(2) of the calling thread into `groups`; returns the count. With an empty array it returns only the count. */
  getgroups(groups: Uint32Array): number;
  /** A raw setgroups(2) through syscall(2), for the calling thread only. */
  setThreadGroups(number: number, groups: Uint32Array): number;
  _exit(status: number): never;
  strerror(errno: number): string;
}

let libc: Libc | undefined;

/**
 * Loads glibc through the runtime's foreign function interface and declares
 * the functions, once. Throws a SyscallError (ENOSYS) outside Linux or when
 * glibc (libc.so.6) cannot be loaded, for example on musl.
 */
export function loadLibc(platform: NodeJS.Platform = process.platform, runtime: JsRuntime = currentJsRuntime()): Libc {
  if (platform !== 'linux') {
    throw new SyscallError(
      { syscall: 'dlopen', errno: 0, code: 'ENOSYS' },
      `m-docker needs Linux namespaces, but this platform is ${platform}`,
    );
  }
  if (libc) return libc;

  try {
    libc = runtime === 'bun' ? openBunLibc() : openKoffiLibc();
  } catch (error) {
    throw new SyscallError(
      { syscall: 'dlopen', errno: 0, code: 'ENOSYS', path: 'libc.so.6' },
      `cannot load glibc (libc.so.6) with ${runtime === 'bun' ? 'bun:ffi' : 'koffi'}: ${(error as Error).message}`,
      { cause: error },
    );
  }

  const loaded = libc;
  fallbackDescriber.describe = (errno) => loaded.strerror(errno);
  return loaded;
}

/** Reads the calling thread's errno; call it on the line right after the failing call. */
export function lastErrno(): number {
  return loadLibc().errno();
}
