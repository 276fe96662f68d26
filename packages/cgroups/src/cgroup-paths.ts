import { join } from 'node:path';
import { CgroupError } from './errors.js';
import type { CgroupLayout } from './layout.js';
import { invalidValue } from './parse-values.js';

/** The parent cgroup that the CLI uses by default, like docker's `/docker` under its cgroupfs driver. */
export const DEFAULT_PARENT = '/m-docker';

// docker's rule for container names, which also admits its 64-digit hex ids.
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** One mounted hierarchy, seen from the calling process. */
export interface MountedHierarchy {
  /** The hierarchy's name in messages: `memory`, `cpu,cpuacct`, or `cgroup2`. */
  name: string;
  mountPoint: string;
  /** The cgroup mounted at `mountPoint`, `/` for the hierarchy's root. */
  mountRoot: string;
  /** The caller's cgroup in this hierarchy, from /proc/self/cgroup; needed only for a relative parent. */
  ownPath: string | undefined;
}

/**
 * The directories between an existing cgroup and a container's parent.
 * createCgroup creates the missing ones top-down, and on v2 enables
 * controllers in `base` and in each of `parentDirectories`.
 */
export interface ParentChain {
  /** The cgroup the chain starts from: the hierarchy's root for an absolute parent, the caller's cgroup for a relative one. */
  base: string;
  /** base/a, base/a/b, ... down to the parent itself; empty when the parent is `base`. */
  parentDirectories: string[];
}

/** Throws INVALID_VALUE unless `id` can name a cgroup directory: docker's container name characters, no slash. */
export function checkContainerId(id: string): void {
  if (!ID_PATTERN.test(id)) {
    throw invalidValue('container id', id, 'expected letters, digits, "_", "." or "-", starting with a letter or digit');
  }
}

/**
 * Resolves `parent` in one hierarchy. An absolute parent such as
 * `/m-docker` starts at the hierarchy's root, like docker's cgroupfs
 * driver. A relative one such as `m-docker` starts at the caller's own
 * cgroup, so everything stays inside the cgroup that bounds the caller.
 */
export function resolveParent(hierarchy: MountedHierarchy, parent: string, fsRoot: string): ParentChain {
  const segments = parentSegments(parent);
  const rootSegments = hierarchy.mountRoot.split('/').filter(Boolean);
  const mountPoint = join(fsRoot || '/', hierarchy.mountPoint);

  let base: string;
  let below: string[];
  if (parent.startsWith('/')) {
    if (!startsWithSegments(segments, rootSegments)) throw notVisible(hierarchy, parent);
    base = mountPoint;
    below = segments.slice(rootSegments.length);
  } else {
    const own = hierarchy.ownPath;
    if (own === undefined) {
      throw new CgroupError('LAYOUT_UNKNOWN', `/proc/self/cgroup has no entry for the ${hierarchy.name} hierarchy, so the relative parent "${parent}" cannot be resolved`);
    }
    const ownSegments = own.split('/').filter(Boolean);
    if (!startsWithSegments(ownSegments, rootSegments)) throw notVisible(hierarchy, own);
    base = join(mountPoint, ...ownSegments.slice(rootSegments.length));
    below = segments;
  }

  const parentDirectories = below.map((_segment, index) => join(base, ...below.slice(0, index + 1)));
  return { base, parentDirectories };
}

/** Splits a parent into directory names, rejecting `.`, `..` and NUL so that no path leaves the hierarchy. */
function parentSegments(parent: string): string[] {
  const segments = parent.split('/').filter(Boolean);
  for (const segment of segments) {
    if (segment === '.' || segment === '..' || segment.includes('\0')) {
      throw invalidValue('--cgroup-parent', parent, 'expected a path without "." or ".." components, such as /m-docker or m-docker');
    }
  }
  return segments;
}

function startsWithSegments(path: string[], prefix: string[]): boolean {
  return prefix.every((segment, index) => path[index] === segment);
}

function notVisible(hierarchy: MountedHierarchy, cgroup: string): CgroupError {
  return new CgroupError(
    'LAYOUT_UNKNOWN',
    `cgroup ${cgroup} is not visible: the ${hierarchy.name} hierarchy is mounted on ${hierarchy.mountPoint} from ${hierarchy.mountRoot}; use a relative --cgroup-parent`,
    { path: hierarchy.mountPoint },
  );
}

/** The v1 controllers of one hierarchy that a container joins, with the hierarchy itself. */
export interface HierarchyUse {
  controllers: string[];
  hierarchy: MountedHierarchy;
}

/**
 * Groups controllers by hierarchy, so co-mounted ones such as `cpu,cpuacct`
 * get one directory. On v2 the result is the single hierarchy, with no
 * controllers listed.
 */
export function hierarchiesOf(layout: CgroupLayout, controllers: readonly string[], ownPaths: Readonly<Record<string, string>>): HierarchyUse[] {
  if (layout.version === 2) {
    const hierarchy = { name: 'cgroup2', mountPoint: layout.root, mountRoot: layout.mountRoot ?? '/', ownPath: ownPaths[''] };
    return [{ controllers: [], hierarchy }];
  }

  const byMountPoint = new Map<string, HierarchyUse>();
  for (const controller of controllers) {
    const mountPoint = layout.controllers[controller];
    if (mountPoint === undefined) continue;

    const existing = byMountPoint.get(mountPoint);
    if (existing) {
      existing.controllers.push(controller);
      continue;
    }
    const mountedTogether = Object.keys(layout.controllers).filter((name) => layout.controllers[name] === mountPoint);
    const hierarchy = {
      name: mountedTogether.join(','),
      mountPoint,
      mountRoot: layout.mountRoots?.[controller] ?? '/',
      ownPath: ownPaths[controller],
    };
    byMountPoint.set(mountPoint, { controllers: [controller], hierarchy });
  }
  return [...byMountPoint.values()];
}
