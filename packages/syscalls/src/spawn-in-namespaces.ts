import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';

import { chroot, close, fchdir, setns, unshare } from './calls.js';
import { CLONE_FS, CLONE_NEWNS, NAMESPACES, type NamespaceName } from './constants.js';
import { SyscallError } from './errors.js';
import { O_RDONLY, openFile } from './fd-io.js';

// Node cannot pass clone flags to spawn, and namespaces belong to a thread.
// So the main thread unshares the namespaces, spawns the child (libuv forks
// from the calling thread, and the child inherits that thread's
// namespaces), then goes back with setns(2) into the namespaces it had,
// through descriptors of /proc/thread-self/ns/* opened before the unshare.
// setns into a mount namespace also resets the thread's root and working
// directory to that namespace's root, so both are restored from descriptors
// opened beforehand. Everything here is synchronous: the thread pool stays
// in the old namespaces, and no other JavaScript runs in between.

/** Options for spawnInNamespaces: Node's spawn options plus the namespaces to create. */
export interface NamespaceSpawnOptions extends SpawnOptions {
  /** The new namespaces the child starts in; the child of a new PID namespace is its PID 1. */
  namespaces: readonly NamespaceName[];
}

export interface SavedContext {
  namespaces: { name: NamespaceName; fd: number; path: string }[];
  rootFd: number;
  cwdFd: number;
}

/**
 * Spawns `command` in new namespaces and leaves the calling thread in the
 * namespaces, root and working directory it had. Throws a SyscallError when
 * unshare fails (EPERM without CAP_SYS_ADMIN), and kills the child if the
 * caller cannot be restored.
 */
export function spawnInNamespaces(command: string, args: readonly string[], options: NamespaceSpawnOptions): ChildProcess {
  const { namespaces, ...spawnOptions } = options;
  // Required on first use: under Bun, the CLI starts processes with
  // Bun.spawn and never pays for loading node:child_process.
  const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  return runInNamespaces(
    namespaces,
    () => spawn(command, args, spawnOptions),
    (child) => child.kill('SIGKILL'),
  );
}

/**
 * Calls `start` with the calling thread in new namespaces, then returns the
 * thread to the namespaces, root and working directory it had. `start` must
 * create the process synchronously from this thread, as child_process.spawn
 * and Bun.spawn do; the process keeps the new namespaces. If the thread
 * cannot be restored, `abandon` ends the process and the error is thrown.
 */
export function runInNamespaces<T>(namespaces: readonly NamespaceName[], start: () => T, abandon: (started: T) => void): T {
  const flags = namespaces.reduce((all, name) => all | NAMESPACES[name].flag, 0);
  const saved = saveContext(namespaces);

  // A failed unshare(2) changes nothing, so nothing is restored. A setns(2)
  // back would hide its error, and fails too without CAP_SYS_ADMIN.
  try {
    unshare(flags);
  } catch (error) {
    closeContext(saved);
    throw error;
  }

  const restoreFilesystem = namespaces.includes('mnt');
  let started: T;
  try {
    started = start();
  } catch (error) {
    restoreAndClose(saved, restoreFilesystem);
    throw error;
  }

  try {
    restoreAndClose(saved, restoreFilesystem);
  } catch (error) {
    abandon(started);
    throw error;
  }
  return started;
}

export function saveContext(namespaces: readonly NamespaceName[]): SavedContext {
  const saved: SavedContext = { namespaces: [], rootFd: -1, cwdFd: -1 };
  try {
    for (const name of namespaces) {
      const path = `/proc/thread-self/ns/${NAMESPACES[name].procName}`;
      saved.namespaces.push({ name, fd: openOrThrow(path), path });
    }
    saved.rootFd = openOrThrow('/');
    saved.cwdFd = openOrThrow('.');
  } catch (error) {
    closeContext(saved);
    throw error;
  }
  return saved;
}

// setns(2) into each saved namespace undoes the unshare. setns into a mount
// namespace also moves the thread's root and working directory to that
// namespace's root, so both are restored after the loop. The PID namespace
// comes first. While a thread's namespace for children differs from its
// own, clone(2) of a new thread fails with EINVAL, and Bun, which starts
// threads for its compiler and garbage collector at any moment, aborts.
function restoreContext(saved: SavedContext, restoreFilesystem: boolean): void {
  const pidFirst = [...saved.namespaces].sort((a, b) => Number(b.name === 'pid') - Number(a.name === 'pid'));
  for (const { name, fd, path } of pidFirst) {
    if (name === 'mnt') enterMountNamespace(fd, path);
    else setns(fd, NAMESPACES[name].flag, path);
  }
  if (restoreFilesystem) {
    fchdir(saved.rootFd);
    chroot('.');
    fchdir(saved.cwdFd);
  }
}

/** How often the way back into a mount namespace is tried. */
const MOUNT_SETNS_ATTEMPTS = 3;

// setns(2) into a mount namespace fails with EINVAL while another thread
// shares this thread's root and working directory (one fs_struct). A thread
// that the runtime starts from this thread while it is away shares them:
// Bun 1.4.5 starts its compiler's worker threads at any moment, and
// BUN_JSC_useConcurrentJIT=0 made such failures stop. After such a failure,
// unshare(CLONE_FS) gives this thread a private copy again for the next try.
// NOTE: the other thread keeps the root, working directory and namespaces
// it started with. A compiler thread resolves no paths, but a runtime
// thread that did would resolve them there.
function enterMountNamespace(fd: number, path: string): void {
  for (let attempt = 1; ; attempt++) {
    try {
      setns(fd, CLONE_NEWNS, path);
      return;
    } catch (error) {
      const shared = SyscallError.isInstance(error) && error.code === 'EINVAL';
      if (!shared || attempt === MOUNT_SETNS_ATTEMPTS) throw error;
    }
    unshare(CLONE_FS);
  }
}

export function restoreAndClose(saved: SavedContext, restoreFilesystem: boolean): void {
  try {
    restoreContext(saved, restoreFilesystem);
  } finally {
    closeContext(saved);
  }
}

export function closeContext(saved: SavedContext): void {
  for (const { fd } of saved.namespaces) close(fd);
  if (saved.rootFd >= 0) close(saved.rootFd);
  if (saved.cwdFd >= 0) close(saved.cwdFd);
}

// The descriptors are close-on-exec, so no child inherits them.
function openOrThrow(path: string): number {
  return openFile(path, O_RDONLY);
}
