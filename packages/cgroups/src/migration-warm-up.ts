import { createRequire } from 'node:module';

import { CgroupError, describeFsError } from './errors.js';
import { type CgroupLayout, detectLayout, ownCgroupPaths } from './layout.js';

// Every move of a process into a cgroup write-locks the kernel's
// cgroup_threadgroup_rwsem with percpu_down_write()
// (kernel/locking/percpu-rwsem.c). That first calls rcu_sync_enter()
// (kernel/rcu/sync.c), which waits for a whole RCU grace period unless an
// earlier writer released the lock less than about one grace period ago.
// The release, rcu_sync_exit(), queues rcu_sync_func() to put the lock back
// into its idle state one grace period later, and a writer that comes
// before that skips the wait.
//
// warmUpMigration() makes such a write that moves nothing. It writes the
// caller's main thread id to the thread-level file (`tasks` on v1,
// `cgroup.threads` on v2) of the cgroup that /proc/self/cgroup lists, so no
// other thread of the process is touched either. The kernel takes the lock
// and then finds nothing to migrate, because cgroup_migrate_prepare_dst()
// (kernel/cgroup/cgroup.c) drops a source css_set that equals its
// destination. The write runs on the thread pool, so the caller goes on
// while the kernel waits. A move that follows soon after is fast, and a
// move made while the warm-up still waits only waits for the rest of that
// grace period.
//
// A failed write does not help, because cgroup_procs_write_start() looks
// the thread up before it takes the lock. A thread id that does not exist
// fails with ESRCH and leaves the lock idle.
//
// NOTE: this relies on kernel behaviour that no interface promises. It was
// measured on Linux 6.18 (2 vCPUs, HZ=250, bench/migration-latency.mjs) in
// the v1 hierarchies and in the empty cgroup2 of a hybrid layout. A move
// after a pause took 5 to 16 ms, and a move made 15 to 20 ms after a
// warm-up started took under 1 ms. On a hierarchy mounted with
// favordynmods, cgroup_favor_dynmods() keeps the lock's rcu_sync entered
// for good, so moves are fast anyway and the warm-up changes nothing (read
// in the kernel source, not measured).
//
// NOTE: the cgroup is read from /proc/self/cgroup just before the write. A
// cgroup manager that moved the caller's main thread between the read and
// the write would see it moved back.

/** The outcome of one warm-up write. */
export interface MigrationWarmUp {
  /** The file written: `tasks` or `cgroup.threads` of the caller's own cgroup. Absent when no file was found. */
  path?: string;
  /** The failure: no file was found, or the open or the write failed. It costs only the warm-up. */
  error?: CgroupError;
}

/** The inputs of warmUpMigration. Each one defaults to what /proc/self shows. */
export interface MigrationWarmUpOptions {
  layout?: CgroupLayout;
  /** The caller's cgroups, as ownCgroupPaths() returns them. */
  ownPaths?: Record<string, string>;
  /** A directory prefixed to every cgroup path, for tests. */
  fsRoot?: string;
}

type NodeFs = typeof import('node:fs');

// node:fs is required on first use. The CLI calls this right after it spawns
// the init, before it has loaded anything else that needs node:fs, and under
// Bun importing node:fs costs about 3 ms.
let nodeFs: NodeFs | undefined;
function fs(): NodeFs {
  nodeFs ??= createRequire(import.meta.url)('node:fs') as NodeFs;
  return nodeFs;
}

/**
 * Starts a write that moves no process but makes the kernel's next cgroup
 * migration skip its wait for an RCU grace period, if that migration comes
 * within about one grace period after this write ends. Returns at once. The
 * promise never rejects. It resolves when the write has ended, with the
 * error when there was one.
 */
export function warmUpMigration(options: MigrationWarmUpOptions = {}): Promise<MigrationWarmUp> {
  let path: string;
  let fd: number;
  try {
    path = ownThreadFile(options);
  } catch (error) {
    return Promise.resolve({ error: asCgroupError(error) });
  }
  try {
    fd = fs().openSync(path, fs().constants.O_WRONLY);
  } catch (error) {
    return Promise.resolve({ path, error: writeFailed(path, error) });
  }

  // The main thread's id is the process id.
  const threadId = String(process.pid);
  return new Promise((resolve) => {
    try {
      fs().write(fd, threadId, (writeError) => {
        fs().close(fd, () => undefined);
        resolve(writeError ? { path, error: writeFailed(path, writeError) } : { path });
      });
    } catch (error) {
      fs().closeSync(fd);
      resolve({ path, error: writeFailed(path, error) });
    }
  });
}

/**
 * Returns the thread-level file of the caller's cgroup in one hierarchy.
 * On v1 that is `tasks` in the first mounted hierarchy that
 * /proc/self/cgroup has an entry for, and on v2 `cgroup.threads`. Any
 * hierarchy does, because they all share the lock.
 */
function ownThreadFile(options: MigrationWarmUpOptions): string {
  const layout = options.layout ?? detectLayout();
  const ownPaths = options.ownPaths ?? ownCgroupPaths();
  const fsRoot = options.fsRoot ?? '';

  if (layout.version === 2) {
    return `${fsRoot}${cgroupDirectory(layout.root, layout.mountRoot ?? '/', ownPaths[''], 'cgroup2')}cgroup.threads`;
  }
  for (const [controller, mountPoint] of Object.entries(layout.controllers)) {
    const own = ownPaths[controller];
    if (own === undefined) continue;
    return `${fsRoot}${cgroupDirectory(mountPoint, layout.mountRoots?.[controller] ?? '/', own, controller)}tasks`;
  }
  throw new CgroupError('LAYOUT_UNKNOWN', 'no cgroup v1 hierarchy in /proc/self/mountinfo has an entry in /proc/self/cgroup');
}

/** Returns the directory of the cgroup `own`, with a trailing slash, in a hierarchy mounted on `mountPoint` from the cgroup `mountRoot`. */
function cgroupDirectory(mountPoint: string, mountRoot: string, own: string | undefined, name: string): string {
  if (own === undefined) throw new CgroupError('LAYOUT_UNKNOWN', `/proc/self/cgroup has no entry for the ${name} hierarchy`);

  const rootSegments = mountRoot.split('/').filter(Boolean);
  const ownSegments = own.split('/').filter(Boolean);
  if (!rootSegments.every((segment, index) => ownSegments[index] === segment)) {
    throw new CgroupError('LAYOUT_UNKNOWN', `cgroup ${own} is not visible: the ${name} hierarchy is mounted on ${mountPoint} from ${mountRoot}`, {
      path: mountPoint,
    });
  }
  const mountSegments = mountPoint.split('/').filter(Boolean);
  return `/${[...mountSegments, ...ownSegments.slice(rootSegments.length)].map((segment) => `${segment}/`).join('')}`;
}

function writeFailed(path: string, error: unknown): CgroupError {
  return new CgroupError('WRITE_FAILED', `writing the main thread's id to ${path} failed: ${describeFsError(error)}`, {
    path,
    value: String(process.pid),
    cause: error,
  });
}

function asCgroupError(error: unknown): CgroupError {
  if (CgroupError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new CgroupError('LAYOUT_UNKNOWN', `reading the caller's cgroup failed: ${message}`, { cause: error });
}
