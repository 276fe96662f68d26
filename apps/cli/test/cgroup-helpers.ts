import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

import { type CgroupLayout, detectLayout, ownCgroupPaths } from '@m-docker/cgroups';

// What the tests need to find the cgroups that `m-docker run` creates below
// a relative parent: the parent's directory in each hierarchy, the
// containers' directories in it, and a way to remove the parent afterwards.

/** The v1 controllers whose hierarchies m-docker puts a container in (cpuset only for its options). */
export const CONTAINER_CONTROLLERS = ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset'] as const;

/** This machine's cgroup layout, or undefined where no cgroup file system is mounted. */
export const LAYOUT: CgroupLayout | undefined = (() => {
  try {
    return detectLayout();
  } catch {
    return undefined;
  }
})();

/** The test process's own cgroup in each hierarchy, as /proc/self/cgroup lists it. */
export const OWN_PATHS = ownCgroupPaths();

/** Returns the suite's relative cgroup parent, which vitest.shared.ts sets. */
export function suiteParent(): string {
  const parent = process.env.M_DOCKER_CGROUP_PARENT;
  if (parent === undefined || parent === '' || parent.startsWith('/')) {
    throw new Error(`M_DOCKER_CGROUP_PARENT is ${JSON.stringify(parent)}: the tests need a relative cgroup parent, set by vitest.shared.ts`);
  }
  return parent;
}

/**
 * Returns the directory of the relative `parent` in each hierarchy that
 * m-docker uses, one per mount point: below the test process's own cgroup.
 */
export function parentDirectories(parent: string, layout: CgroupLayout | undefined = LAYOUT): string[] {
  if (layout === undefined) return [];
  if (layout.version === 2) return [join(layout.root, relativeOwnPath('', layout.mountRoot), parent)];

  const directories: string[] = [];
  for (const controller of CONTAINER_CONTROLLERS) {
    const mountPoint = layout.controllers[controller];
    if (mountPoint === undefined) continue;
    directories.push(join(mountPoint, relativeOwnPath(controller, layout.mountRoots?.[controller]), parent));
  }
  return [...new Set(directories)];
}

/** Returns the container's cgroup directory `name` below `parent` in the hierarchy of `controller` (v1). */
export function containerDirectory(controller: string, parent: string, name: string): string {
  if (LAYOUT?.version !== 1) throw new Error('containerDirectory is for cgroup v1');
  const mountPoint = LAYOUT.controllers[controller];
  if (mountPoint === undefined) throw new Error(`the ${controller} controller is not mounted`);
  return join(mountPoint, relativeOwnPath(controller, LAYOUT.mountRoots?.[controller]), parent, name);
}

/** Lists the cgroup directories below `parent` in every hierarchy, as absolute paths. */
export function cgroupsBelow(parent: string): string[] {
  return parentDirectories(parent)
    .filter((directory) => existsSync(directory))
    .flatMap((directory) =>
      readdirSync(directory, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => join(directory, entry.name)),
    );
}

/**
 * Removes the directories of the relative `parent`, deepest first, where
 * they exist and are empty, keeping its first `keep` path segments, which
 * other suites may share. Returns the directories that could not be
 * removed, with the reason.
 */
export function removeParentDirectories(parent: string, keep = 0): string[] {
  const failures: string[] = [];
  const segments = parent.split('/').filter(Boolean);
  for (let depth = segments.length; depth > keep; depth--) {
    for (const directory of parentDirectories(segments.slice(0, depth).join('/'))) {
      if (!existsSync(directory)) continue;
      try {
        rmdirSync(directory);
      } catch (error) {
        failures.push(`${directory}: ${(error as Error).message}`);
      }
    }
  }
  return failures;
}

/** Returns the pids in a cgroup's cgroup.procs. */
export function cgroupProcesses(directory: string): number[] {
  return readFileSync(join(directory, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

// The own cgroup's path below the hierarchy's mount, which differs from
// /proc/self/cgroup's path only when the hierarchy is mounted from a cgroup
// below its root.
function relativeOwnPath(key: string, mountRoot: string | undefined): string {
  const own = OWN_PATHS[key] ?? '/';
  const root = mountRoot ?? '/';
  return root === '/' ? own : own.slice(root.length) || '/';
}
