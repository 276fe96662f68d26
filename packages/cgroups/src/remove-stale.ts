import { join } from 'node:path';
import { hierarchiesOf, resolveParent } from './cgroup-paths.js';
import { cgroupFileExists, listChildCgroups, readCgroupFile, rmdirCgroup } from './cgroupfs.js';
import { V1_CONTROLLER_USES } from './controllers.js';
import { CgroupError, describeFsError, errnoCode } from './errors.js';
import { type CgroupLayout, detectLayout, ownCgroupPaths } from './layout.js';
import { invalidValue } from './parse-values.js';

/** The options of removeStaleCgroups: the parent that createCgroup was given, and a check of which containers still run. */
export interface RemoveStaleOptions {
  parent: string;
  /** Returns whether the container with this id still runs; its cgroup is then kept. */
  isAlive: (id: string) => boolean;
  layout?: CgroupLayout;
  fsRoot?: string;
  ownPaths?: Record<string, string>;
}

/**
 * Removes the container cgroups under `parent` that a killed CLI left
 * behind: each child directory whose id is not alive and which has no
 * processes and no child cgroups. Returns the removed paths. A cgroup that
 * the kernel has not released yet (EBUSY) is kept for a later call.
 */
export function removeStaleCgroups(options: RemoveStaleOptions): string[] {
  const layout = options.layout ?? detectLayout();
  const relative = !options.parent.startsWith('/');
  const ownPaths = options.ownPaths ?? (relative ? ownCgroupPaths() : {});
  const controllers = V1_CONTROLLER_USES.map((use) => use.controller);
  const removed: string[] = [];

  for (const use of hierarchiesOf(layout, controllers, ownPaths)) {
    const chain = resolveParent(use.hierarchy, options.parent, options.fsRoot ?? '');
    const parent = chain.parentDirectories.at(-1);
    // Without this check, parent "/" would offer every empty top-level
    // cgroup of the machine, such as systemd's, for removal.
    if (parent === undefined) {
      throw invalidValue('--cgroup-parent', options.parent, 'removeStaleCgroups needs a parent below the hierarchy root or the own cgroup, such as /m-docker');
    }
    if (!cgroupFileExists(parent)) continue;

    for (const id of listChildCgroups(parent)) {
      const directory = join(parent, id);
      if (options.isAlive(id) || !isEmptyCgroup(directory)) continue;
      if (removeIfUnused(directory)) removed.push(directory);
    }
  }
  return removed;
}

function isEmptyCgroup(directory: string): boolean {
  if (listChildCgroups(directory).length > 0) return false;
  return readCgroupFile(join(directory, 'cgroup.procs')).trim() === '';
}

function removeIfUnused(directory: string): boolean {
  try {
    rmdirCgroup(directory);
    return true;
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EBUSY' || code === 'ENOENT') return false;
    throw new CgroupError('REMOVE_FAILED', `removing stale cgroup ${directory} failed: ${describeFsError(error)}`, { path: directory, cause: error });
  }
}
