import { syscallNumber } from './constants.js';
import { errnoName, SyscallError } from './errors.js';
import { lastErrno, loadLibc } from './libc.js';
import { O_RDWR } from './terminal-calls.js';

// A process that leads a new session with a terminal as its controlling
// terminal, started without any JavaScript in the child. Node's and Bun's
// spawn call setsid(2) for `detached: true`, but they hand the child its
// stdio as descriptors that are already open. Such a descriptor never makes
// a terminal the controlling one. Only an open(2) by the session leader
// does, or ioctl(TIOCSCTTY) by the leader itself.
//
// glibc's posix_spawn(3) does what is needed in the child, in this order,
// before execve(2): setsid(2) (POSIX_SPAWN_SETSID), the effective ids set to
// the real ones (POSIX_SPAWN_RESETIDS), then the file actions. The first
// file action opens the terminal by path at fd 0, which makes it the
// controlling terminal; fds 1 and 2 are copies of it. posix_spawn forks
// with clone(CLONE_VM | CLONE_VFORK) from the calling thread and runs only
// glibc code in the child, so it is safe in a multithreaded runtime, and
// the child gets the calling thread's namespaces, root, working directory,
// cgroups and credentials.
//
// For another user, the calling thread's real uid, real gid and groups are
// changed for the moment of the call with raw system calls, which change
// only that thread (glibc's setuid(2) wrappers change every thread). Its
// effective ids stay root, so the thread keeps its privileges, and the
// child takes the real ids as effective ones before it opens the terminal.
// execve(2) then clears the child's capabilities, because none of its ids
// is 0.
//
// Nothing waits for the child: reapChild polls for its exit. The runtime's
// own spawn machinery reaps only the children it started, by pid.

// <spawn.h> flags of glibc.
const POSIX_SPAWN_RESETIDS = 0x01;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;

// Sizes of glibc's posix_spawnattr_t (336 bytes) and
// posix_spawn_file_actions_t (80 bytes) on x86_64 and aarch64, rounded up.
const ATTRIBUTES_SIZE = 512;
const FILE_ACTIONS_SIZE = 128;
// sigset_t of glibc: 1024 bits.
const SIGSET_SIZE = 128;

const WNOHANG = 1;
// An id argument that leaves the id unchanged: -1 as an unsigned int.
const UNCHANGED = 0xffffffff;

/** The user a child of spawnOnTerminal runs as. */
export interface SpawnUser {
  uid: number;
  gid: number;
  /** Supplementary group ids. */
  groups: readonly number[];
}

/** Options of spawnOnTerminal: the program, its arguments, environment, terminal and user. */
export interface TerminalSpawnOptions {
  /** The program, as a path from the calling thread's root and working directory; PATH is not searched. */
  path: string;
  /** The whole argument vector, argv[0] included. */
  argv: readonly string[];
  /** The whole environment, as KEY=VALUE strings. */
  env: readonly string[];
  /** The terminal (a pty slave) that the child opens as fds 0, 1 and 2 and that becomes its controlling terminal. */
  terminal: string;
  /** The child's user; the calling thread's when left out. */
  user?: SpawnUser;
}

/** The end of a child: its exit code, or the signal that killed it. */
export type ChildExit = { code: number; signal: null } | { code: null; signal: number };

/**
 * Starts `options.path` in a new session with `options.terminal` as its
 * controlling terminal and stdio, every signal action at its default and
 * no signal blocked, and returns its pid. Descriptors of this process
 * that are not close-on-exec are passed on as well: set FD_CLOEXEC on
 * them first (setCloseOnExecFrom). A failure throws a SyscallError with
 * the errno of the failed step, such as ENOENT or EACCES from execve(2), or
 * EAGAIN when a pids limit forbids the fork. No child is left then.
 */
export function spawnOnTerminal(options: TerminalSpawnOptions): number {
  const libc = loadLibc();
  // Explicit ArrayBuffers live outside the JavaScript heap and never move,
  // as glibc keeps pointers into them between the calls.
  const attributes = new Uint8Array(new ArrayBuffer(ATTRIBUTES_SIZE));
  const fileActions = new Uint8Array(new ArrayBuffer(FILE_ACTIONS_SIZE));
  check(libc.posixSpawnattrInit(attributes), 'posix_spawnattr_init');
  try {
    check(libc.posixSpawnFileActionsInit(fileActions), 'posix_spawn_file_actions_init');
    try {
      const everySignal = new Uint8Array(SIGSET_SIZE).fill(0xff);
      check(libc.posixSpawnattrSetsigdefault(attributes, everySignal), 'posix_spawnattr_setsigdefault');
      check(libc.posixSpawnattrSetsigmask(attributes, new Uint8Array(SIGSET_SIZE)), 'posix_spawnattr_setsigmask');
      const flags = POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (options.user ? POSIX_SPAWN_RESETIDS : 0);
      check(libc.posixSpawnattrSetflags(attributes, flags), 'posix_spawnattr_setflags');
      check(libc.posixSpawnFileActionsAddopen(fileActions, 0, options.terminal, O_RDWR, 0), 'posix_spawn_file_actions_addopen', options.terminal);
      check(libc.posixSpawnFileActionsAdddup2(fileActions, 0, 1), 'posix_spawn_file_actions_adddup2');
      check(libc.posixSpawnFileActionsAdddup2(fileActions, 0, 2), 'posix_spawn_file_actions_adddup2');

      const pid = new Int32Array(1);
      const spawn = () => libc.posixSpawn(pid, options.path, fileActions, attributes, options.argv, options.env);
      const result = options.user ? asRealUser(options.user, spawn) : spawn();
      check(result, 'posix_spawn', options.path);
      return pid[0] as number;
    } finally {
      libc.posixSpawnFileActionsDestroy(fileActions);
    }
  } finally {
    libc.posixSpawnattrDestroy(attributes);
  }
}

/**
 * Returns how the child `pid` of this process ended and reaps it, or
 * undefined while it runs (waitpid(2) with WNOHANG). Throws ECHILD for a
 * pid that is not an unreaped child of this process.
 */
export function reapChild(pid: number): ChildExit | undefined {
  const status = new Int32Array(1);
  const result = loadLibc().waitpid(pid, status, WNOHANG);
  if (result === -1) {
    const errno = lastErrno();
    throw new SyscallError({ syscall: 'waitpid', errno, code: errnoName(errno), args: `pid=${pid}` });
  }
  if (result === 0) return undefined;

  const value = status[0] as number;
  // <sys/wait.h>: the low 7 bits hold the signal, 0 for a normal exit.
  const signal = value & 0x7f;
  if (signal === 0) return { code: (value >> 8) & 0xff, signal: null };
  return { code: null, signal };
}

// Runs `spawn` with the calling thread's real uid, real gid and groups set
// to `user`'s, and puts them back, also when `spawn` throws.
function asRealUser(user: SpawnUser, spawn: () => number): number {
  const libc = loadLibc();
  const numbers = {
    setresuid: requireNumber('setresuid'),
    setresgid: requireNumber('setresgid'),
    setgroups: requireNumber('setgroups'),
  };
  const saved = threadIds();

  const setGroups = (groups: readonly number[]) => {
    if (libc.setThreadGroups(numbers.setgroups, Uint32Array.from(groups)) === -1) failWithErrno('setgroups', `groups=${groups.join(',')}`);
  };
  const setReal = (name: 'setresuid' | 'setresgid', id: number) => {
    if (libc.setThreadIds(numbers[name], id, UNCHANGED, UNCHANGED) === -1) failWithErrno(name, `real=${id}`);
  };

  setGroups(user.groups);
  try {
    setReal('setresgid', user.gid);
    try {
      setReal('setresuid', user.uid);
      try {
        return spawn();
      } finally {
        setReal('setresuid', saved.uid);
      }
    } finally {
      setReal('setresgid', saved.gid);
    }
  } finally {
    setGroups(saved.groups);
  }
}

// The calling thread's real uid and gid and its groups. They come from
// system calls, not from /proc, which inside a container's mount namespace
// is the container's and does not show this process.
// Node's process.getgroups() would add the effective gid to the list.
function threadIds(): { uid: number; gid: number; groups: number[] } {
  const libc = loadLibc();
  const count = libc.getgroups(new Uint32Array(0));
  const groups = new Uint32Array(Math.max(count, 0));
  if (count < 0 || libc.getgroups(groups) === -1) failWithErrno('getgroups', '');
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: [...groups] };
}

function requireNumber(name: 'setresuid' | 'setresgid' | 'setgroups'): number {
  const number = syscallNumber(name);
  if (number === undefined) {
    throw new SyscallError({ syscall: name, errno: 38, code: 'ENOSYS', args: `arch=${process.arch}` });
  }
  return number;
}

function failWithErrno(syscall: string, args: string): never {
  const errno = lastErrno();
  throw new SyscallError({ syscall, errno, code: errnoName(errno), args });
}

// The posix_spawn functions return an errno value instead of setting errno.
function check(result: number, syscall: string, path?: string): void {
  if (result === 0) return;
  throw new SyscallError({ syscall, errno: result, code: errnoName(result), ...(path !== undefined ? { path } : {}) });
}
