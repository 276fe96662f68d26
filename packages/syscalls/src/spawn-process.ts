import { cStringArray } from './calls.js';
import { syscallNumber } from './constants.js';
import { errnoName, SyscallError } from './errors.js';
import { O_RDONLY, O_WRONLY } from './fd-io.js';
import { lastErrno, loadLibc } from './libc.js';
import { O_RDWR } from './terminal-calls.js';

// A process started without any JavaScript in the child, optionally as
// the leader of a new session with a terminal as its controlling terminal.
// Node's and Bun's spawn call setsid(2) for `detached: true`, but they hand
// the child its stdio as descriptors that are already open. Such a
// descriptor never makes a terminal the controlling one. Only an open(2)
// by the session leader does, or ioctl(TIOCSCTTY) by the leader itself.
// Their spawn also runs JavaScript between the fork and its return, while
// a caller such as runInContainer needs that moment short.
//
// glibc's posix_spawn(3) does what is needed in the child, in this order,
// before execve(2): setsid(2) (POSIX_SPAWN_SETSID), the effective ids set to
// the real ones (POSIX_SPAWN_RESETIDS), then the file actions. With a
// terminal, the first file action opens it by path at fd 0, which makes it
// the controlling terminal, and fds 1 and 2 are copies of it. Otherwise the
// file actions copy the caller's descriptors to fds 0 to 2. posix_spawn
// forks with clone(CLONE_VM | CLONE_VFORK) from the calling thread and runs
// only glibc code in the child, so it is safe in a multithreaded runtime,
// and the child gets the calling thread's namespaces, root, working
// directory, cgroups and credentials.
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

/** The user a child of spawnProcess runs as. */
export interface SpawnUser {
  uid: number;
  gid: number;
  /** Supplementary group ids. */
  groups: readonly number[];
}

/**
 * The child's fds 0, 1 and 2. A terminal (a pty slave, by path) is opened
 * by the child as all three after setsid(2), so it becomes the controlling
 * terminal of a new session. Three descriptors of this process (null for
 * /dev/null) are copied, and the child stays in the caller's session.
 */
export type SpawnStdio = { terminal: string } | { descriptors: readonly [number | null, number | null, number | null] };

/** Options of spawnProcess: the program, its arguments, environment, stdio and user. */
export interface ProcessSpawnOptions {
  /** The program, as a path from the calling thread's root and working directory; PATH is not searched. */
  path: string;
  /** The whole argument vector, argv[0] included. */
  argv: readonly string[];
  /** The whole environment, as KEY=VALUE strings. */
  env: readonly string[];
  stdio: SpawnStdio;
  /** The child's user; the calling thread's when left out. */
  user?: SpawnUser;
}

/** The end of a child: its exit code, or the signal that killed it. */
export type ChildExit = { code: number; signal: null } | { code: null; signal: number };

/** The outcome of a prepared start: the child's pid, or the system call that failed. */
export type SpawnOutcome = { pid: number; failure?: undefined } | { pid?: number; failure: { syscall: string; errno: number } };

/** A process start whose arguments are all built, for a moment in which the caller must not run JavaScript that allocates. */
export interface PreparedSpawn {
  /**
   * Makes the system calls of the start, and nothing else: the thread's
   * ids for `user`, posix_spawn, the ids back. Returns the outcome without
   * throwing. A pid together with a failure means that the thread's ids
   * could not be put back.
   */
  start(): SpawnOutcome;
  /** Returns the pid of a start, or throws its failure as a SyscallError after killing a child that `start` left. */
  pidOf(outcome: SpawnOutcome): number;
  /** Frees glibc's copies of the attributes and file actions. Call it once, after start. */
  release(): void;
}

/**
 * Builds everything that starting `options.path` needs. glibc's attributes
 * ask for a new session with a terminal, every signal action at its
 * default, no signal blocked, and the real ids as effective ones for
 * `user`. The file actions set up `options.stdio`, and the path, argv and
 * envp become C arrays. Throws a SyscallError when glibc rejects an
 * attribute.
 */
export function prepareSpawn(options: ProcessSpawnOptions): PreparedSpawn {
  const libc = loadLibc();
  // Explicit ArrayBuffers live outside the JavaScript heap and never move,
  // as glibc keeps pointers into them between the calls.
  const attributes = new Uint8Array(new ArrayBuffer(ATTRIBUTES_SIZE));
  const fileActions = new Uint8Array(new ArrayBuffer(FILE_ACTIONS_SIZE));
  check(libc.posixSpawnattrInit(attributes), 'posix_spawnattr_init');
  const release = () => {
    libc.posixSpawnFileActionsDestroy(fileActions);
    libc.posixSpawnattrDestroy(attributes);
  };
  try {
    check(libc.posixSpawnFileActionsInit(fileActions), 'posix_spawn_file_actions_init');
    const everySignal = new Uint8Array(SIGSET_SIZE).fill(0xff);
    check(libc.posixSpawnattrSetsigdefault(attributes, everySignal), 'posix_spawnattr_setsigdefault');
    check(libc.posixSpawnattrSetsigmask(attributes, new Uint8Array(SIGSET_SIZE)), 'posix_spawnattr_setsigmask');
    const session = 'terminal' in options.stdio ? POSIX_SPAWN_SETSID : 0;
    const flags = session | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (options.user ? POSIX_SPAWN_RESETIDS : 0);
    check(libc.posixSpawnattrSetflags(attributes, flags), 'posix_spawnattr_setflags');
    addStdio(fileActions, options.stdio);
  } catch (error) {
    release();
    throw error;
  }

  const path = cStringArray(libc, [options.path]).strings;
  const argv = cStringArray(libc, options.argv);
  const env = cStringArray(libc, options.env);
  const pid = new Int32Array(new ArrayBuffer(4));
  const spawn = () => libc.posixSpawn(pid, path, fileActions, attributes, argv.pointers, env.pointers);
  const asUser = options.user ? prepareRealUser(options.user) : undefined;

  return {
    start(): SpawnOutcome {
      if (asUser === undefined) {
        const result = spawn();
        return result === 0 ? { pid: pid[0] as number } : { failure: { syscall: 'posix_spawn', errno: result } };
      }
      return asUser(spawn, pid);
    },
    pidOf(outcome: SpawnOutcome): number {
      if (outcome.failure === undefined) return outcome.pid;
      if (outcome.pid !== undefined) process.kill(outcome.pid, 'SIGKILL');
      const { syscall, errno } = outcome.failure;
      throw new SyscallError({ syscall, errno, code: errnoName(errno), ...(syscall === 'posix_spawn' ? { path: options.path } : {}) });
    },
    release,
  };
}

/**
 * Starts `options.path` with `options.stdio`, every signal action at its
 * default and no signal blocked, and returns its pid: prepareSpawn, start
 * and release in one call. Descriptors of this process that are not
 * close-on-exec are passed on as well: set FD_CLOEXEC on them first
 * (setCloseOnExecFrom). A failure throws a SyscallError with the errno of
 * the failed step, such as ENOENT or EACCES from execve(2), or EAGAIN when
 * a pids limit forbids the fork. No child is left then.
 */
export function spawnProcess(options: ProcessSpawnOptions): number {
  const prepared = prepareSpawn(options);
  try {
    return prepared.pidOf(prepared.start());
  } finally {
    prepared.release();
  }
}

// glibc 2.29 and later clear FD_CLOEXEC when a dup2 action copies a
// descriptor onto itself, as Node's stdio descriptors need.
function addStdio(fileActions: Uint8Array, stdio: SpawnStdio): void {
  const libc = loadLibc();
  if ('terminal' in stdio) {
    check(libc.posixSpawnFileActionsAddopen(fileActions, 0, stdio.terminal, O_RDWR, 0), 'posix_spawn_file_actions_addopen', stdio.terminal);
    check(libc.posixSpawnFileActionsAdddup2(fileActions, 0, 1), 'posix_spawn_file_actions_adddup2');
    check(libc.posixSpawnFileActionsAdddup2(fileActions, 0, 2), 'posix_spawn_file_actions_adddup2');
    return;
  }
  stdio.descriptors.forEach((fd, target) => {
    if (fd === null) {
      check(libc.posixSpawnFileActionsAddopen(fileActions, target, '/dev/null', target === 0 ? O_RDONLY : O_WRONLY, 0), 'posix_spawn_file_actions_addopen', '/dev/null');
    } else {
      check(libc.posixSpawnFileActionsAdddup2(fileActions, fd, target), 'posix_spawn_file_actions_adddup2');
    }
  });
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

// Returns a function that runs `spawn` with the calling thread's real
// uid, real gid and groups set to `user`'s and puts them back, building
// every argument beforehand. The ids to put back are read now, so a caller
// prepares on the thread that starts.
function prepareRealUser(user: SpawnUser): (spawn: () => number, pid: Int32Array) => SpawnOutcome {
  const libc = loadLibc();
  const setresuid = requireNumber('setresuid');
  const setresgid = requireNumber('setresgid');
  const setgroups = requireNumber('setgroups');
  const saved = threadIds();
  const userGroups = Uint32Array.from(user.groups);
  const savedGroups = Uint32Array.from(saved.groups);

  return (spawn, pid) => {
    if (libc.setThreadGroups(setgroups, userGroups) === -1) return { failure: { syscall: 'setgroups', errno: libc.errno() } };
    let failure: { syscall: string; errno: number } | undefined;
    let result = -1;
    if (libc.setThreadIds(setresgid, user.gid, UNCHANGED, UNCHANGED) === -1) {
      failure = { syscall: 'setresgid', errno: libc.errno() };
    } else {
      if (libc.setThreadIds(setresuid, user.uid, UNCHANGED, UNCHANGED) === -1) {
        failure = { syscall: 'setresuid', errno: libc.errno() };
      } else {
        result = spawn();
        if (libc.setThreadIds(setresuid, saved.uid, UNCHANGED, UNCHANGED) === -1) failure = { syscall: 'setresuid', errno: libc.errno() };
      }
      if (libc.setThreadIds(setresgid, saved.gid, UNCHANGED, UNCHANGED) === -1) failure ??= { syscall: 'setresgid', errno: libc.errno() };
    }
    if (libc.setThreadGroups(setgroups, savedGroups) === -1) failure ??= { syscall: 'setgroups', errno: libc.errno() };

    const started = result === 0 ? (pid[0] as number) : undefined;
    if (failure !== undefined) return { ...(started !== undefined ? { pid: started } : {}), failure };
    if (started === undefined) return { failure: { syscall: 'posix_spawn', errno: result } };
    return { pid: started };
  };
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
