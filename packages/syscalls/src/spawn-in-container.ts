import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';

import { chdir, setns, unshare } from './calls.js';
import { clearAmbientCapabilities, getCapabilities, limitBoundingSet, setCapabilities } from './capability-calls.js';
import { CLONE_FS, CLONE_NEWPID, NAMESPACES, type NamespaceName } from './constants.js';
import { errnoName, SyscallError } from './errors.js';
import { getcwd, getDumpable, setCloseOnExecFrom, setDumpable } from './process-calls.js';
import { closeContext, restoreAndClose, saveContext } from './spawn-in-namespaces.js';

// Joining a running container is spawnInNamespaces with setns(2) in place
// of unshare(2). The main thread enters the namespaces of the process
// behind a pidfd, the runtime forks the child from that thread, and the
// thread goes back through descriptors of its own namespaces, root and
// working directory opened beforehand.
//
// - setns(2) takes the pidfd and several namespace flags in one call (Linux
//   5.8), and changes either all of those namespaces or none. The
//   pidfd refers to one process, so a pid that the kernel gave to a new
//   process after the container's process exited never leads elsewhere:
//   setns then fails with ESRCH.
// - The PID namespace is joined last, right before the child is created,
//   and left first. While the thread's namespace for children is the
//   container's, clone(2) of a new thread fails with EINVAL. Bun starts
//   threads for its compiler and garbage collector on demand and aborts
//   when that fails, so `start` should run as little JavaScript as it can.
// - unshare(CLONE_FS) comes first, because the runtime's threads share one
//   root and working directory (one fs_struct). setns(2) with CLONE_NEWNS
//   alone fails with EINVAL while that is shared. With more flags, the
//   kernel checks a private copy and then writes the container's root and
//   working directory into the shared one, which moves every thread of the
//   process, libuv's pool included, into the container's file system.
// - setns(2) into the mount namespace sets the thread's root and working
//   directory to that namespace's root. For a container whose init called
//   pivot_root(2), that is the container's root file system. The working
//   directory is then changed with chdir(2) and checked with getcwd(3), so a
//   path through a /proc/PID/fd link cannot lead the child out of the root.
// - This process is made non-dumpable before the fork, because the forked
//   child is a copy of it (a Node or Bun binary of the host) inside the
//   container's PID namespace until its execve(2). While the flag is off, a
//   container process without CAP_SYS_PTRACE cannot open /proc/PID/exe of
//   the child, so it cannot reach the host's binary to overwrite it later.
//   execve(2) makes the child dumpable again with its own program.
// - Every descriptor of this process from 3 up gets FD_CLOEXEC before the
//   fork, so only the child's stdio entries reach the command.
// - With `childCapabilities`, the thread's bounding set shrinks to that set
//   and its inheritable and ambient sets are emptied, before it moves. The
//   child's execve(2) then gives the command at most that set, because
//   root's new permitted set is inheritable | bounding (capabilities(7)).
//   No call raises a bounding set again, so the thread keeps the smaller
//   one until it exits. Its effective set stays, so it can still go back
//   to its own namespaces. Until its execve the child keeps the thread's
//   permitted set, and a process whose permitted set lacks some of those
//   needs CAP_SYS_PTRACE to follow its /proc/PID/exe
//   (cap_ptrace_access_check), besides the dumpable flag.

/** The namespaces spawnInContainer joins by default: all that m-docker creates. */
export const CONTAINER_NAMESPACES: readonly NamespaceName[] = ['uts', 'ipc', 'net', 'pid', 'mnt', 'cgroup'];

/** Options of runInContainer: the namespaces to join and the child's working directory. */
export interface ContainerRunOptions {
  /**
   * The target's namespaces to join, CONTAINER_NAMESPACES by default.
   * Joining a namespace the caller already shares with the target changes
   * nothing, except that `mnt` always resets the root and working directory.
   */
  namespaces?: readonly NamespaceName[];
  /**
   * The child's working directory, resolved inside the container after its
   * root (default `/`). A relative path starts at the container's root.
   * Only allowed when `namespaces` contains `mnt`.
   */
  cwd?: string;
  /**
   * Work that covers the creation of the child and nothing more, such as
   * moving the thread into the container's cgroups through descriptors
   * opened beforehand. `before` runs right before `start`, once the thread
   * is in every namespace, and `after` right after it, also when `start`
   * throws. An error of `before` fails the call before anything starts,
   * and `after` must not throw.
   */
  aroundStart?: { before(): void; after(): void };
  /**
   * The maximum capability set of the started process (see CAPABILITIES),
   * or undefined to leave the thread's capabilities as they are. The
   * calling thread's bounding set is limited to it and its inheritable and
   * ambient sets are emptied, for good. Needs CAP_SETPCAP.
   */
  childCapabilities?: bigint | undefined;
}

/**
 * Options for spawnInContainer: those of child_process.spawn, except that
 * `cwd` is a path inside the container, `env` is empty by default so the
 * host's environment never reaches the container, and `stdio` lists at
 * most fds 0, 1 and 2.
 */
export interface ContainerSpawnOptions extends Omit<SpawnOptions, 'cwd'>, ContainerRunOptions {}

/**
 * Spawns `command` in the namespaces of the process behind `pidfd` (see
 * pidfdOpen) and leaves the calling thread in the namespaces, root and
 * working directory it had. The command is looked up inside the container.
 * Throws a SyscallError when the thread cannot enter the namespaces (ESRCH
 * when the process has exited) or the working directory, and kills the
 * child if the thread cannot be restored. The caller keeps `pidfd` open.
 */
export function spawnInContainer(
  pidfd: number,
  command: string,
  args: readonly string[],
  options: ContainerSpawnOptions = {},
): ChildProcess {
  const { namespaces, cwd, aroundStart, childCapabilities, ...spawnOptions } = options;
  checkStdio(spawnOptions.stdio);
  // Required on first use, as in spawnInNamespaces.
  const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const childOptions: SpawnOptions = { ...spawnOptions, env: spawnOptions.env ?? {} };

  return runInContainer(
    pidfd,
    () => spawn(command, args, childOptions),
    (child) => child.kill('SIGKILL'),
    { ...(namespaces ? { namespaces } : {}), ...(cwd !== undefined ? { cwd } : {}), ...(aroundStart ? { aroundStart } : {}), childCapabilities },
  );
}

/**
 * Calls `start` with the calling thread in the namespaces of the process
 * behind `pidfd`, in the working directory `options.cwd` inside the
 * container, and with this process non-dumpable. Then it moves the thread
 * back to the namespaces, root and working directory it had, and makes the
 * process dumpable again if it was. A bounding set that
 * `options.childCapabilities` limited stays limited. `start` must create
 * the process synchronously from this thread and return after the child
 * called execve(2) or exited, as child_process.spawn and Bun.spawn do. If
 * the thread cannot be restored, `abandon` ends the process, the error is
 * thrown and the process stays non-dumpable.
 */
export function runInContainer<T>(
  pidfd: number,
  start: () => T,
  abandon: (started: T) => void,
  options: ContainerRunOptions = {},
): T {
  const namespaces = options.namespaces ?? CONTAINER_NAMESPACES;
  const joinsMount = namespaces.includes('mnt');
  if (options.cwd !== undefined && !joinsMount) {
    throw new TypeError(`runInContainer: invalid cwd ${options.cwd} without 'mnt' in namespaces: add 'mnt' or leave cwd out`);
  }
  const flags = namespaces.reduce((all, name) => all | NAMESPACES[name].flag, 0);
  const otherFlags = flags & ~CLONE_NEWPID;

  // Descriptors and the working directory are read before the thread
  // moves, because afterwards every path resolves inside the container.
  setCloseOnExecFrom(3);
  const wasDumpable = getDumpable() === 1;
  const saved = saveContext(namespaces);

  try {
    // A loop of FFI calls, which may make the runtime start a thread, such
    // as Bun's compiler. So it runs before the thread moves: a new thread
    // shares the thread's root and working directory (fs_struct), and
    // setns(2) into a mount namespace fails with EINVAL while they are
    // shared, which would make the way back fail.
    if (options.childCapabilities !== undefined) limitChildCapabilities(options.childCapabilities);
    setDumpable(false);
    if (joinsMount) unshare(CLONE_FS);
    if (otherFlags !== 0) setns(pidfd, otherFlags);
  } catch (error) {
    closeContext(saved);
    restoreDumpable(wasDumpable);
    throw error;
  }

  let started: T;
  try {
    if (joinsMount) enterWorkingDirectory(options.cwd ?? '/');
    if (otherFlags !== flags) setns(pidfd, CLONE_NEWPID);
    started = startCovered(start, options.aroundStart);
  } catch (error) {
    restoreAndClose(saved, joinsMount);
    restoreDumpable(wasDumpable);
    throw error;
  }

  try {
    restoreAndClose(saved, joinsMount);
  } catch (error) {
    abandon(started);
    throw error;
  }
  restoreDumpable(wasDumpable);
  return started;
}

function startCovered<T>(start: () => T, around: ContainerRunOptions['aroundStart']): T {
  if (around === undefined) return start();
  around.before();
  try {
    return start();
  } finally {
    around.after();
  }
}

// The thread's own effective and permitted sets stay, so that it can
// still leave the container's namespaces.
function limitChildCapabilities(keep: bigint): void {
  limitBoundingSet(keep);
  const current = getCapabilities();
  setCapabilities({ ...current, inheritable: 0n });
  clearAmbientCapabilities();
}

// Making the process dumpable again is safe once the child has called
// execve(2), because the child is then the container's program, not a copy
// of this process. This process itself never joins the container's PID
// namespace, because setns(2) with CLONE_NEWPID changes only the namespace
// of later children. So a container with its own /proc cannot list it, and
// a container that can list the host's processes could list it before the
// call too.
function restoreDumpable(wasDumpable: boolean): void {
  if (wasDumpable) setDumpable(true);
}

// chdir(2) resolves `path` from the container's root, but a /proc/PID/fd
// link in it can lead to a directory of another mount namespace, such as
// one that this process has open. getcwd(3) fails with ENOENT for a
// directory outside the thread's root.
// NOTE: on Linux 6.18, a host directory on the same file system as the
// root of a container without pivot_root(2) counts as below that root. So
// the check protects only containers with a root file system of their own,
// as m-docker's are.
function enterWorkingDirectory(path: string): void {
  chdir(path);
  try {
    getcwd();
  } catch (error) {
    if (!SyscallError.isInstance(error) || error.code !== 'ENOENT') throw error;
    throw new SyscallError(
      { syscall: 'chdir', errno: error.errno, code: errnoName(error.errno), path },
      `chdir ${path} leads outside the container's root`,
      { cause: error },
    );
  }
}

// Node's spawn gives the child one descriptor per stdio entry, and 'ipc'
// adds a channel. Only fds 0, 1 and 2 may reach a command in a container.
function checkStdio(stdio: SpawnOptions['stdio']): void {
  if (!Array.isArray(stdio)) return;
  if (stdio.length > 3 || stdio.includes('ipc')) {
    throw new TypeError(
      `spawnInContainer: invalid stdio with ${stdio.length} entries: pass at most fds 0, 1 and 2, without 'ipc'`,
    );
  }
}
