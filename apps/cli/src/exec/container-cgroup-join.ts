import { readFileSync, writeFileSync } from 'node:fs';

import { detectLayout, ownCgroupPaths } from '@m-docker/cgroups';

// An exec'd process belongs in its container's cgroups, so that it counts
// against the container's limits. Its pid is written into the cgroups that
// /proc/<PID 1>/cgroup lists, in every hierarchy this machine mounts.

/** Moves `pid` into the cgroups of the process `containerPid`; returns the cgroup directories written to. */
export function joinContainerCgroups(pid: number, containerPid: number): string[] {
  const layout = detectLayout();
  const paths = ownCgroupPaths(readFileSync(`/proc/${containerPid}/cgroup`, 'utf8'));
  const directories = new Set<string>();

  if (layout.version === 2) {
    const path = paths[''];
    if (path !== undefined) directories.add(`${layout.root}${stripMountRoot(path, layout.mountRoot)}`);
  } else {
    for (const [controller, mountPoint] of Object.entries(layout.controllers)) {
      const path = paths[controller];
      if (path !== undefined) directories.add(`${mountPoint}${stripMountRoot(path, layout.mountRoots?.[controller])}`);
    }
  }

  for (const directory of directories) writeFileSync(`${directory}/cgroup.procs`, `${pid}\n`);
  return [...directories];
}

function stripMountRoot(path: string, mountRoot: string | undefined): string {
  if (mountRoot === undefined || mountRoot === '/') return path === '/' ? '' : path;
  return path.slice(mountRoot.length);
}
