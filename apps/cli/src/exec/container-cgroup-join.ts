import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { type CgroupLayout, detectLayout, ownCgroupPaths } from '@m-docker/cgroups';
import type { Logger } from '@m-docker/log';

// An exec'd process belongs in its container's cgroups from its first
// instruction, so that it counts against the container's limits before it
// can fork. Node's spawn cannot start a child in another cgroup (clone3(2)
// with CLONE_INTO_CGROUP), but a child starts in the cgroups of the thread
// that forks it. So the CLI moves that thread, its main thread, into the
// container's cgroups right before the fork, and back right after it:
//
//   - cgroup v1 keeps cgroups per thread: the main thread's id goes into
//     `tasks` of each hierarchy, and the runtime's other threads stay where
//     they are
//   - cgroup v2 keeps a process's threads together outside threaded
//     subtrees: the CLI's pid goes into `cgroup.procs`, which moves the
//     whole CLI for the moment of the spawn
//
// A fork that the container's pids limit forbids then fails with EAGAIN, as
// it would inside the container.

/** The cgroup directories of the container and of the main thread, and the file that moves a thread between them. */
interface Membership {
  /** The file that a thread id (v1) or a pid (v2) is written to. */
  file: 'tasks' | 'cgroup.procs';
  /** The container's cgroup directories, one per hierarchy. */
  container: string[];
  /** The main thread's own cgroup directories, in the same order. */
  own: string[];
}

/** Moves the CLI's main thread into the container's cgroups and back, through descriptors opened on the host. */
export interface CgroupSwitch {
  /** Moves the thread in; throws, with the thread back where it was, when a cgroup refuses it. */
  enter(): void;
  /** Moves the thread back; a failure goes to `onLeaveFailed` instead of being thrown. */
  leave(): void;
  /** Closes the descriptors. */
  close(): void;
}

/**
 * Opens the membership files of the cgroups of the process `containerPid`
 * (the container's PID 1) and of the main thread's own cgroups. The files
 * are opened here, on the host, because the thread moves while it is in
 * the container's mount namespace, where /sys/fs/cgroup is the
 * container's. Moving the thread costs one write(2) a hierarchy, so the
 * move can cover only the fork. While the thread is in a container's
 * cgroups, a thread that the runtime starts is created there too, and
 * fails at the container's pids limit. `onLeaveFailed` hears of a thread
 * that could not go back, which leaves the CLI counted in the container's
 * cgroups until it exits.
 */
export function openCgroupSwitch(containerPid: number, onLeaveFailed: (error: Error) => void): CgroupSwitch {
  const membership = membershipOf(containerPid, detectLayout());
  const intoContainer: number[] = [];
  const back: number[] = [];
  const closeAll = () => {
    for (const fd of [...intoContainer, ...back]) closeSync(fd);
  };
  try {
    for (const directory of membership.container) intoContainer.push(openSync(`${directory}/${membership.file}`, 'w'));
    for (const directory of membership.own) back.push(openSync(`${directory}/${membership.file}`, 'w'));
  } catch (error) {
    closeAll();
    throw error;
  }

  // The main thread's id is the process id, in Node and in Bun.
  const id = Buffer.from(`${process.pid}\n`);
  let joined = 0;
  // The thread leaves in the reverse order, the pids hierarchy first: a
  // command that forks right after its execve finds all of the container's
  // free slots as soon as possible.
  const leave = () => {
    for (const fd of back.slice(0, joined).reverse()) {
      try {
        writeSync(fd, id);
      } catch (error) {
        onLeaveFailed(error as Error);
      }
    }
    joined = 0;
  };
  return {
    enter() {
      try {
        for (const fd of intoContainer) {
          writeSync(fd, id);
          joined++;
        }
      } catch (error) {
        leave();
        throw error;
      }
    },
    leave,
    close: closeAll,
  };
}

function membershipOf(containerPid: number, layout: CgroupLayout): Membership {
  const containerPaths = ownCgroupPaths(readFileSync(`/proc/${containerPid}/cgroup`, 'utf8'));
  const threadPaths = ownCgroupPaths(readFileSync('/proc/thread-self/cgroup', 'utf8'));
  const membership: Membership = { file: layout.version === 2 ? 'cgroup.procs' : 'tasks', container: [], own: [] };

  const hierarchies: [mountPoint: string, key: string, mountRoot: string | undefined][] =
    layout.version === 2
      ? [[layout.root, '', layout.mountRoot]]
      : Object.entries(layout.controllers)
          .map(([controller, mountPoint]): [string, string, string | undefined] => [mountPoint, controller, layout.mountRoots?.[controller]])
          // The pids hierarchy comes last, so the thread counts there for the shortest time.
          .sort(([, a], [, b]) => Number(a === 'pids') - Number(b === 'pids'));

  const seen = new Set<string>();
  for (const [mountPoint, key, mountRoot] of hierarchies) {
    const containerPath = containerPaths[key];
    const threadPath = threadPaths[key];
    // Controllers mounted together share one hierarchy and one directory.
    if (containerPath === undefined || threadPath === undefined || seen.has(mountPoint) || containerPath === threadPath) continue;
    seen.add(mountPoint);
    membership.container.push(`${mountPoint}${stripMountRoot(containerPath, mountRoot)}`);
    membership.own.push(`${mountPoint}${stripMountRoot(threadPath, mountRoot)}`);
  }
  return membership;
}

function stripMountRoot(path: string, mountRoot: string | undefined): string {
  if (mountRoot === undefined || mountRoot === '/') return path === '/' ? '' : path;
  return path.slice(mountRoot.length);
}

/** Returns the message for a fork that failed with EAGAIN, as at the container's pids limit. */
export function forkRefused(command: string): string {
  return `cannot run ${JSON.stringify(command)} in the container: the kernel refused a new process (EAGAIN): the container may be at its pids limit (--pids-limit), and exec needs two free slots for a moment, one for m-docker's own thread; end some of its processes and try again`;
}

/** Logs that the CLI's main thread stayed in the container's cgroups after the spawn. */
export function warnCgroupReturn(log: Logger, error: Error): void {
  log.warn("cannot move m-docker back out of the container's cgroups; it counts against the container's limits until it exits", { error: error.message });
}
