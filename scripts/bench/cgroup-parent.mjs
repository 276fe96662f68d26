// The cgroup parent of the containers that the benchmark starts: a relative
// one, so every container's cgroup sits below the benchmark's own cgroup in
// each hierarchy, never at the top of one. It is removed at the end.
import { existsSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The variable through which the launcher's CLI gets the parent. */
export const CGROUP_PARENT_VARIABLE = 'M_DOCKER_CGROUP_PARENT';

// The v1 controllers whose hierarchies m-docker puts a container in.
const CONTROLLERS = ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset'];

/**
 * Returns the relative parent for this benchmark run and a cleanup that
 * removes the cgroups that killed CLIs left below it, then the parent's
 * directories, where they are empty. The cleanup uses the built cgroups
 * package under `root`.
 */
export async function benchCgroupParent(root) {
  const parent = `m-docker-bench-run-${process.pid}`;
  const cgroups = await import(pathToFileURL(join(root, 'packages/cgroups/dist/index.js')).href);

  const cleanup = () => {
    if (process.getuid?.() !== 0) return;
    // Every CLI of this benchmark has exited by now, so nothing below the
    // parent is alive. Cgroups with processes are kept by the library.
    cgroups.removeStaleCgroups({ parent, isAlive: () => false });
    for (const directory of parentDirectories(cgroups, parent)) {
      if (existsSync(directory)) rmdirSync(directory);
    }
  };
  return { parent, cleanup };
}

function parentDirectories(cgroups, parent) {
  const layout = cgroups.detectLayout();
  const own = cgroups.ownCgroupPaths();
  if (layout.version === 2) return [join(layout.root, below(own[''], layout.mountRoot), parent)];

  const directories = CONTROLLERS.filter((controller) => layout.controllers[controller] !== undefined).map((controller) =>
    join(layout.controllers[controller], below(own[controller], layout.mountRoots?.[controller]), parent),
  );
  return [...new Set(directories)];
}

// A cgroup path from /proc/self/cgroup, below the cgroup that the hierarchy is mounted from.
function below(ownPath = '/', mountRoot = '/') {
  return mountRoot === '/' ? ownPath : ownPath.slice(mountRoot.length) || '/';
}
