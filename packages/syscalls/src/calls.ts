import { createRequire } from 'node:module';

import {
  AF_UNIX,
  F_GETFD,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  O_NONBLOCK,
  PR_GET_PDEATHSIG,
  PR_SET_PDEATHSIG,
  SOCK_CLOEXEC,
  SOCK_STREAM,
  type SyscallName,
  syscallNumber,
} from './constants.js';
import { errnoName, SyscallError, type SyscallErrorDetails } from './errors.js';
import { readTextFile } from './fd-io.js';
import { type Libc, lastErrno, loadLibc } from './libc.js';

// Builds the error for a call that just failed. errno must be read by the
// caller on the line right after the call and passed in.
function fail(errno: number, details: Omit<SyscallErrorDetails, 'errno' | 'code'>, subject?: string): SyscallError {
  return new SyscallError({ ...details, errno, code: errnoName(errno) }, subject);
}

const toHex = (value: number) => `0x${value.toString(16)}`;

// fcntl(2) command (<linux/fcntl.h>, Linux 2.6.24): duplicate with FD_CLOEXEC set.
const F_DUPFD_CLOEXEC = 1030;

/** Moves the calling thread into new namespaces (unshare(2)); `flags` is an OR of CLONE_* values. */
export function unshare(flags: number): void {
  if (loadLibc().unshare(flags) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'unshare', args: `flags=${toHex(flags)}` });
  }
}

/** Moves the calling thread into the namespace that `fd` refers to (setns(2)); `nstype` 0 accepts any type. */
export function setns(fd: number, nstype = 0, path?: string): void {
  if (loadLibc().setns(fd, nstype) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'setns', ...(path ? { path } : {}), args: `fd=${fd} nstype=${toHex(nstype)}` });
  }
}

/** Mounts `source` on `target` (mount(2)); `flags` is an OR of MS_* values. */
export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null = null,
): void {
  if (loadLibc().mount(source, target, fstype, flags, data) === -1) {
    const errno = lastErrno();
    const subject = `mount ${fstype ?? source ?? 'none'} on ${target}`;
    throw fail(errno, { syscall: 'mount', path: target, args: `flags=${toHex(flags)}` }, subject);
  }
}

/** Unmounts `target` (umount2(2)); `flags` takes MNT_DETACH or MNT_FORCE. */
export function umount2(target: string, flags = 0): void {
  if (loadLibc().umount2(target, flags) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'umount2', path: target, args: `flags=${toHex(flags)}` });
  }
}

/**
 * Makes `newRoot` the root of the calling process's mount namespace and
 * moves the old root to `putOld` (pivot_root(2), which glibc does not wrap).
 */
export function pivotRoot(newRoot: string, putOld: string): void {
  const number = requireSyscallNumber('pivot_root');
  if (loadLibc().pivotRoot(number, newRoot, putOld) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'pivot_root', path: newRoot, args: `put_old=${putOld}` });
  }
}

/** Sets the hostname of the calling thread's UTS namespace (sethostname(2)); at most 64 bytes. */
export function sethostname(name: string): void {
  const bytes = Buffer.from(name, 'utf8');
  if (loadLibc().sethostname(bytes, bytes.length) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'sethostname', args: JSON.stringify(name) });
  }
}

/** Changes the working directory of the calling thread (chdir(2)). */
export function chdir(path: string): void {
  if (loadLibc().chdir(path) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'chdir', path });
  }
}

/** Changes the working directory to the directory open at `fd` (fchdir(2)). */
export function fchdir(fd: number): void {
  if (loadLibc().fchdir(fd) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'fchdir', args: `fd=${fd}` });
  }
}

/** Changes the root directory of the calling thread (chroot(2)). */
export function chroot(path: string): void {
  if (loadLibc().chroot(path) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'chroot', path });
  }
}

/**
 * Replaces the process image (execve(2)). It returns only by throwing: on
 * success the calling program is gone. `path` is used as it is, without a
 * PATH search.
 */
export function execve(path: string, argv: readonly string[], env: readonly string[]): never {
  loadLibc().execve(path, argv, env);
  const errno = lastErrno();
  throw fail(errno, { syscall: 'execve', path });
}

/** An execve(2) call whose arguments prepareExecve has converted in advance. */
export interface PreparedExecve {
  readonly path: string;
  /**
   * Calls execve(2) and returns its errno, since it returns only when
   * execve fails. It allocates no JavaScript values before the call, and it
   * throws nothing.
   */
  call(): number;
}

/**
 * Converts `path`, `argv` and `env` into the C strings and NULL-terminated
 * `char *[]` arrays of execve(2) now, so that the call itself allocates
 * nothing. Under Bun an allocation can start a garbage collection, which
 * can start a thread, and the container's init must start none between
 * writing its pids limit and execve. The buffers are fresh ArrayBuffers,
 * which the garbage collector never moves, and the returned object keeps
 * them referenced.
 */
export function prepareExecve(path: string, argv: readonly string[], env: readonly string[]): PreparedExecve {
  const libc = loadLibc();
  const pathBytes = cStringArray(libc, [path]).strings;
  const args = cStringArray(libc, argv);
  const environment = cStringArray(libc, env);
  return {
    path,
    call: () => {
      libc.execvePrepared(pathBytes, args.pointers, environment.pointers);
      return lastErrno();
    },
  };
}

// Copies each value, UTF-8 and NUL-terminated, into one zero-filled buffer
// and lists the address of each copy, then 0 (NULL).
function cStringArray(libc: Libc, values: readonly string[]): { strings: Uint8Array; pointers: BigUint64Array } {
  const encoded = values.map((value) => Buffer.from(value, 'utf8'));
  const size = encoded.reduce((total, bytes) => total + bytes.byteLength + 1, 0);
  const strings = new Uint8Array(new ArrayBuffer(Math.max(size, 1)));
  const pointers = new BigUint64Array(new ArrayBuffer(8 * (values.length + 1)));

  const base = libc.address(strings);
  let offset = 0;
  encoded.forEach((bytes, index) => {
    strings.set(bytes, offset);
    pointers[index] = base + BigInt(offset);
    offset += bytes.byteLength + 1;
  });
  return { strings, pointers };
}

/** Clears FD_CLOEXEC on `fd`, so the descriptor stays open across execve(2). */
export function clearCloseOnExec(fd: number): void {
  updateFlags(fd, F_GETFD, F_SETFD, (flags) => flags & ~FD_CLOEXEC);
}

/** Sets FD_CLOEXEC on `fd`, so execve(2) closes it when it succeeds. */
export function setCloseOnExec(fd: number): void {
  updateFlags(fd, F_GETFD, F_SETFD, (flags) => flags | FD_CLOEXEC);
}

/** Clears O_NONBLOCK on the open file description behind `fd`. */
export function clearNonBlocking(fd: number): void {
  updateFlags(fd, F_GETFL, F_SETFL, (flags) => flags & ~O_NONBLOCK);
}

/**
 * Returns a new descriptor, close-on-exec, for the open file of `fd`
 * (fcntl(F_DUPFD_CLOEXEC)). Both share the file offset and status flags,
 * and each can be closed on its own.
 */
export function dupCloseOnExec(fd: number): number {
  const duplicate = loadLibc().fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (duplicate === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'fcntl', args: `fd=${fd} cmd=F_DUPFD_CLOEXEC` });
  }
  return duplicate;
}

/** Returns the descriptor flags (F_GETFD) of `fd`. */
export function getDescriptorFlags(fd: number): number {
  return fcntlGet(fd, F_GETFD);
}

/** Returns the file status flags (F_GETFL) of `fd`. */
export function getStatusFlags(fd: number): number {
  return fcntlGet(fd, F_GETFL);
}

function fcntlGet(fd: number, command: number): number {
  const flags = loadLibc().fcntl(fd, command, 0);
  if (flags === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'fcntl', args: `fd=${fd} cmd=${command}` });
  }
  return flags;
}

function updateFlags(fd: number, getCommand: number, setCommand: number, change: (flags: number) => number): void {
  const flags = fcntlGet(fd, getCommand);
  const updated = change(flags);
  if (updated === flags) return;
  if (loadLibc().fcntl(fd, setCommand, updated) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'fcntl', args: `fd=${fd} cmd=${setCommand} flags=${toHex(updated)}` });
  }
}

/**
 * Asks the kernel to send `signal` to this process when the thread that
 * created it exits (prctl(PR_SET_PDEATHSIG)). execve(2) keeps the setting,
 * except for setuid and file-capability programs; a credential change clears it.
 */
export function setParentDeathSignal(signal: number): void {
  if (loadLibc().prctl(PR_SET_PDEATHSIG, signal) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'prctl', args: `PR_SET_PDEATHSIG ${signal}` });
  }
}

/** Returns the parent-death signal of this process, 0 when none is set (prctl(PR_GET_PDEATHSIG)). */
export function getParentDeathSignal(): number {
  const result = new Int32Array(1);
  if (loadLibc().prctlReadInt(PR_GET_PDEATHSIG, result) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'prctl', args: 'PR_GET_PDEATHSIG' });
  }
  return result[0] as number;
}

/**
 * Creates a connected pair of AF_UNIX stream sockets, both close-on-exec
 * (socketpair(2)). A child gets one end by passing it in spawn's stdio,
 * which duplicates it without the flag.
 */
export function socketpair(): [number, number] {
  const fds = new Int32Array(2);
  if (loadLibc().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'socketpair', args: 'AF_UNIX SOCK_STREAM|SOCK_CLOEXEC' });
  }
  return [fds[0] as number, fds[1] as number];
}

/** Makes `newFd` refer to the open file of `oldFd`, closing what `newFd` was (dup2(2)). */
export function dup2(oldFd: number, newFd: number): void {
  if (loadLibc().dup2(oldFd, newFd) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'dup2', args: `oldfd=${oldFd} newfd=${newFd}` });
  }
}

/** Starts a new session with the calling process as its leader, without a controlling terminal (setsid(2)). */
export function setsid(): void {
  if (loadLibc().setsid() === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'setsid' });
  }
}

/** Closes `fd` (close(2)). */
export function close(fd: number): void {
  if (loadLibc().close(fd) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'close', args: `fd=${fd}` });
  }
}

/** Returns the process id in the calling process's PID namespace (getpid(2)). */
export function getpid(): number {
  return loadLibc().getpid();
}

/**
 * Closes every descriptor from `first` up (close_range(2), Linux 5.9). On
 * older kernels (ENOSYS) it closes the descriptors listed in /proc/self/fd.
 */
export function closeFrom(first: number): void {
  const number = syscallNumber('close_range');
  if (number !== undefined && loadLibc().closeRange(number, first, 0xffffffff, 0) === 0) {
    return;
  }
  const errno = number === undefined ? 38 : lastErrno();
  if (errno !== 38) throw fail(errno, { syscall: 'close_range', args: `first=${first}` });

  // node:fs is loaded only on this fallback path.
  const { readdirSync } = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (fd >= first) closeQuietly(fd);
  }
}

// close(2) fails with EBADF for the descriptor that readdirSync used to
// list the folder, which is closed by then; nothing else needs handling.
function closeQuietly(fd: number): void {
  loadLibc().close(fd);
}

/** Ends the process at once with `status` (_exit(2)): no exit handlers, no flushing of Node's streams. */
export function exitNow(status: number): never {
  return loadLibc()._exit(status);
}

function requireSyscallNumber(name: SyscallName): number {
  const number = syscallNumber(name);
  if (number === undefined) {
    throw new SyscallError({ syscall: name, errno: 38, code: 'ENOSYS', args: `arch=${process.arch}` });
  }
  return number;
}

const SIG_SETMASK = 2;
// glibc's sigset_t is 1024 bits; an all-zero set unblocks every signal.
const EMPTY_SIGNAL_SET = Buffer.alloc(128);

/**
 * Restores the default action of every signal this process ignores and
 * unblocks all signals. execve(2) keeps ignored signals ignored, and Node
 * ignores SIGPIPE and SIGXFSZ, so without this a command started from Node
 * would never die of a broken pipe.
 */
export function resetSignals(): void {
  const ignored = readSignalMask('SigIgn');
  for (let signal = 1; signal <= 64; signal++) {
    if ((ignored >> BigInt(signal - 1)) & 1n) loadLibc().signalDefault(signal);
  }
  if (loadLibc().sigprocmask(SIG_SETMASK, EMPTY_SIGNAL_SET) === -1) {
    const errno = lastErrno();
    throw fail(errno, { syscall: 'sigprocmask', args: 'SIG_SETMASK empty' });
  }
}

// Reads one of the hexadecimal signal masks of /proc/thread-self/status (proc(5)).
function readSignalMask(field: 'SigIgn' | 'SigBlk'): bigint {
  const status = readTextFile('/proc/thread-self/status');
  const match = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status);
  return match?.[1] ? BigInt(`0x${match[1]}`) : 0n;
}
