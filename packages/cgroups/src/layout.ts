import { createRequire } from 'node:module';
import { CgroupError } from './errors.js';

// node:fs is required on first use rather than imported, because the CLI
// loads this module (through warmUpMigration) before anything else that
// needs node:fs, and under Bun importing node:fs costs about 3 ms.
function readProcFile(path: string): string {
  return (createRequire(import.meta.url)('node:fs') as typeof import('node:fs')).readFileSync(path, 'utf8');
}

/**
 * The mount points of the cgroup hierarchies. Version 1 maps each controller
 * to the mount point of its hierarchy, and co-mounted controllers such as
 * `cpu,cpuacct` share one. Version 2 has one hierarchy at `root`.
 *
 * `mountRoot` and `mountRoots` are present only when a hierarchy is mounted
 * from a cgroup below its root, as inside a container without a cgroup
 * namespace. /proc/self/cgroup paths then start with that cgroup's path.
 */
export type CgroupLayout =
  | { version: 2; root: string; mountRoot?: string }
  | { version: 1; controllers: Record<string, string>; mountRoots?: Record<string, string> };

/** The cgroup v1 controllers that the kernel can mount, by the names that mountinfo and /proc/self/cgroup use. */
export const V1_CONTROLLERS = [
  'blkio',
  'cpu',
  'cpuacct',
  'cpuset',
  'devices',
  'freezer',
  'hugetlb',
  'memory',
  'misc',
  'net_cls',
  'net_prio',
  'perf_event',
  'pids',
  'rdma',
] as const;

const V1_CONTROLLER_SET: ReadonlySet<string> = new Set(V1_CONTROLLERS);

/** The usual mount point of cgroupfs, preferred when a hierarchy is mounted more than once. */
const CGROUP_MOUNT_POINT = '/sys/fs/cgroup';

interface MountEntry {
  /** The directory of the file system that is mounted, `/` for the whole of it (field 4 of mountinfo). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/**
 * Detects the cgroup layout from /proc/self/mountinfo text. Any v1
 * hierarchy with a controller makes the layout v1, so a hybrid system (v1
 * controllers and a cgroup2 mount with no controllers, as systemd sets up)
 * is v1. Otherwise a cgroup2 mount makes it v2.
 */
export function detectLayout(mountinfo: string = readProcFile('/proc/self/mountinfo')): CgroupLayout {
  const mounts = parseMountinfo(mountinfo);

  const controllers: Record<string, string> = {};
  const mountRoots: Record<string, string> = {};
  for (const mount of mounts.filter((entry) => entry.fsType === 'cgroup')) {
    for (const option of mount.superOptions) {
      if (!V1_CONTROLLER_SET.has(option) || option in controllers) continue;
      controllers[option] = mount.mountPoint;
      mountRoots[option] = mount.root;
    }
  }
  if (Object.keys(controllers).length > 0) {
    // NOTE: a v2 hierarchy with some controllers next to v1 ones is
    // ignored, so those controllers count as missing.
    const belowRoot = Object.values(mountRoots).some((root) => root !== '/');
    return belowRoot ? { version: 1, controllers, mountRoots } : { version: 1, controllers };
  }

  const unified = mounts.filter((entry) => entry.fsType === 'cgroup2');
  const chosen = unified.find((entry) => entry.mountPoint === CGROUP_MOUNT_POINT) ?? unified[0];
  if (chosen) {
    return chosen.root === '/' ? { version: 2, root: chosen.mountPoint } : { version: 2, root: chosen.mountPoint, mountRoot: chosen.root };
  }

  throw new CgroupError(
    'LAYOUT_UNKNOWN',
    `no cgroup file system is mounted: /proc/self/mountinfo lists no cgroup or cgroup2 mount; mount cgroup2 on ${CGROUP_MOUNT_POINT}`,
  );
}

/**
 * Reads the calling process's cgroups from /proc/self/cgroup text: each v1
 * controller (and named hierarchy such as `name=systemd`) maps to its path,
 * and the v2 entry maps from `''`. Paths are absolute from the root of each
 * hierarchy, or of the cgroup namespace.
 */
export function ownCgroupPaths(procSelfCgroup: string = readProcFile('/proc/self/cgroup')): Record<string, string> {
  const paths: Record<string, string> = {};

  // Each line is `hierarchy-id:controller-list:path`, and the path may itself contain colons.
  for (const line of procSelfCgroup.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;

    const controllerList = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controllerList === '') {
      paths[''] = path;
    } else {
      for (const controller of controllerList.split(',')) paths[controller] = path;
    }
  }
  return paths;
}

function parseMountinfo(text: string): MountEntry[] {
  const mounts: MountEntry[] = [];

  // proc(5): `id parent major:minor root mount-point options [optional...] - fstype source super-options`.
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    const root = fields[3];
    const mountPoint = fields[4];
    const fsType = fields[separator + 1];
    const superOptions = fields[separator + 3];
    if (separator < 0 || root === undefined || mountPoint === undefined || fsType === undefined || superOptions === undefined) continue;

    mounts.push({ root: unescapeOctal(root), mountPoint: unescapeOctal(mountPoint), fsType, superOptions: superOptions.split(',') });
  }
  return mounts;
}

// The kernel writes a space, tab, newline or backslash in a path as \040, \011, \012 or \134.
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
