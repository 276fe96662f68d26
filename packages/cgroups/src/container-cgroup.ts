import { join } from 'node:path';
import { checkContainerId, type HierarchyUse, hierarchiesOf, type ParentChain, resolveParent } from './cgroup-paths.js';
import { cgroupFileExists, mkdirCgroup, readCgroupFile, rmdirCgroup, sleepSync } from './cgroupfs.js';
import { selectControllers, V1_CONTROLLER_USES, V2_CONTROLLER_USES } from './controllers.js';
import { CgroupError, describeFsError, errnoCode } from './errors.js';
import { type CgroupLayout, detectLayout, ownCgroupPaths } from './layout.js';
import { applyLimitWrites, writeOrThrow } from './limit-writes.js';
import { type EffectiveLimits, effectiveLimits, type ResourceLimits, validateLimits } from './limits.js';
import { invalidValue } from './parse-values.js';
import { inheritCpusets, v1LimitWrites } from './v1.js';
import { enableControllers, readControllerList, v2LimitWrites } from './v2.js';

/** The container's id, parent and limits, and the layout to create its cgroup in. */
export interface CgroupOptions {
  /** The container id, which names the cgroup directory. */
  id: string;
  /** `/m-docker` (from each hierarchy's root) or `m-docker` (below the caller's own cgroup in each hierarchy). */
  parent: string;
  limits: ResourceLimits;
  /** Default: detectLayout() of /proc/self/mountinfo. */
  layout?: CgroupLayout;
  /** A directory prefixed to every cgroup path, for tests against a fake cgroupfs tree. Default: none. */
  fsRoot?: string;
  /** The caller's cgroups, used for a relative parent. Default: ownCgroupPaths() of /proc/self/cgroup. */
  ownPaths?: Record<string, string>;
}

/** A container's cgroup, created by {@link createCgroup}. */
export interface ContainerCgroup {
  /** The container's directory in each hierarchy: v1 controller name to absolute path, or `''` to the path on v2. */
  readonly paths: Readonly<Record<string, string>>;
  /** Moves a process (all its threads) into the cgroup by writing its pid to every cgroup.procs. */
  addProcess(pid: number): void;
  /** Returns whether the kernel's OOM killer has killed a process of this cgroup. */
  oomKilled(): boolean;
  /** Removes every directory that createCgroup created, children first. Safe to call again. */
  remove(): void;
}

// How many rounds createCgroup makes when a parent directory vanishes under
// it: another container's remove() may rmdir a shared parent that was
// empty between this mkdir's EEXIST and the next mkdir below it.
const MAX_CHAIN_ROUNDS = 3;

// rmdir(2) of a cgroup whose last process has just exited can fail with
// EBUSY until the kernel has finished releasing the process. One remove()
// retries for at most REMOVE_RETRIES * REMOVE_RETRY_DELAY_MS (about 1 s).
const REMOVE_RETRIES = 50;
const REMOVE_RETRY_DELAY_MS = 20;

/**
 * Creates the container's cgroup in every hierarchy it needs and writes
 * its limits. Missing parent directories are created. On any failure the
 * directories created so far are removed before the error is thrown.
 */
export function createCgroup(options: CgroupOptions): ContainerCgroup {
  checkContainerId(options.id);
  validateLimits(options.limits);

  const limits = effectiveLimits(options.limits);
  const layout = options.layout ?? detectLayout();
  const relative = !options.parent.startsWith('/');
  const ownPaths = options.ownPaths ?? (relative ? ownCgroupPaths() : {});
  const tracker: CreatedDirectories = { all: [], leaves: new Set() };
  const context = { options, limits, ownPaths, fsRoot: options.fsRoot ?? '', tracker };

  try {
    const paths = layout.version === 2 ? createV2(context, layout) : createV1(context, layout);
    return new CgroupHandle(layout.version, paths, tracker);
  } catch (error) {
    const failures = removeDirectories(tracker);
    if (failures.length > 0 && error instanceof Error) {
      error.message += `; removing ${failures.map((failure) => failure.path).join(', ')} failed too`;
    }
    throw error;
  }
}

/** The directories one createCgroup made, in creation order; `leaves` are the container's own. */
interface CreatedDirectories {
  all: string[];
  leaves: Set<string>;
}

interface CreateContext {
  options: CgroupOptions;
  limits: EffectiveLimits;
  ownPaths: Readonly<Record<string, string>>;
  fsRoot: string;
  tracker: CreatedDirectories;
}

function createV1(context: CreateContext, layout: Extract<CgroupLayout, { version: 1 }>): Record<string, string> {
  const controllers = selectControllers(
    V1_CONTROLLER_USES,
    (controller) => controller in layout.controllers,
    context.limits,
    () => 'is not mounted: no cgroup v1 hierarchy in /proc/self/mountinfo lists it',
  );

  const paths: Record<string, string> = {};
  for (const use of hierarchiesOf(layout, controllers, context.ownPaths)) {
    const chain = resolveParent(use.hierarchy, context.options.parent, context.fsRoot);
    const leaf = makeChain(chain, context);
    if (use.controllers.includes('cpuset')) inheritCpusets(chain.base, [...chain.parentDirectories, leaf]);
    for (const controller of use.controllers) paths[controller] = leaf;
  }

  applyLimitWrites(v1LimitWrites(context.limits), paths);
  return paths;
}

function createV2(context: CreateContext, layout: Extract<CgroupLayout, { version: 2 }>): Record<string, string> {
  const [use] = hierarchiesOf(layout, [], context.ownPaths) as [HierarchyUse];
  const chain = resolveParent(use.hierarchy, context.options.parent, context.fsRoot);

  const controllersFile = join(chain.base, 'cgroup.controllers');
  const available = readLayoutFile(controllersFile, () => readControllerList(controllersFile));
  const controllers = selectControllers(V2_CONTROLLER_USES, (controller) => available.has(controller), context.limits, () => `is not in ${controllersFile}`);

  const leaf = makeChain(chain, context, (directory) => enableControllers(directory, controllers));
  const paths = { '': leaf };
  applyLimitWrites(v2LimitWrites(context.limits), paths);
  return paths;
}

/**
 * Creates the missing parent directories and the container's directory,
 * top-down, and returns the container's. `beforeChild` runs on each
 * directory before the one below it is created.
 */
function makeChain(chain: ParentChain, context: CreateContext, beforeChild?: (directory: string) => void): string {
  const parent = chain.parentDirectories.at(-1) ?? chain.base;
  const leaf = join(parent, context.options.id);

  for (let round = 1; ; round++) {
    try {
      beforeChild?.(chain.base);
      for (const directory of chain.parentDirectories) {
        if (mkdirOrThrow(directory)) context.tracker.all.push(directory);
        beforeChild?.(directory);
      }

      if (!mkdirOrThrow(leaf)) {
        throw new CgroupError('ALREADY_EXISTS', `cgroup ${leaf} exists already: another container may use it; remove it if it is a leftover`, {
          path: leaf,
        });
      }
      context.tracker.all.push(leaf);
      context.tracker.leaves.add(leaf);
      return leaf;
    } catch (error) {
      const vanished = CgroupError.isInstance(error) && error.code === 'WRITE_FAILED' && errnoCode(error.cause) === 'ENOENT';
      if (!vanished || round === MAX_CHAIN_ROUNDS) throw error;
    }
  }
}

function mkdirOrThrow(directory: string): boolean {
  try {
    return mkdirCgroup(directory);
  } catch (error) {
    throw new CgroupError('WRITE_FAILED', `creating cgroup ${directory} failed: ${describeFsError(error)}`, { path: directory, cause: error });
  }
}

function readLayoutFile<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw new CgroupError('LAYOUT_UNKNOWN', `reading ${path} failed: ${describeFsError(error)}`, { path, cause: error });
  }
}

class CgroupHandle implements ContainerCgroup {
  readonly paths: Readonly<Record<string, string>>;
  readonly #version: 1 | 2;
  readonly #created: CreatedDirectories;

  constructor(version: 1 | 2, paths: Record<string, string>, created: CreatedDirectories) {
    this.paths = Object.freeze({ ...paths });
    this.#version = version;
    this.#created = created;
  }

  addProcess(pid: number): void {
    if (!Number.isSafeInteger(pid) || pid <= 0) throw invalidValue('pid', String(pid), 'expected a positive process id');

    for (const directory of new Set(Object.values(this.paths))) {
      writeOrThrow(join(directory, 'cgroup.procs'), String(pid));
    }
  }

  // v2 counts OOM kills in memory.events and v1 (since Linux 4.13) in
  // memory.oom_control, both as an `oom_kill N` line.
  oomKilled(): boolean {
    const directory = this.#version === 2 ? this.paths[''] : this.paths.memory;
    if (directory === undefined) return false;

    const file = join(directory, this.#version === 2 ? 'memory.events' : 'memory.oom_control');
    if (!cgroupFileExists(file)) return false;
    const match = /^oom_kill (\d+)$/m.exec(readCgroupFile(file));
    return match !== null && Number(match[1]) > 0;
  }

  remove(): void {
    const [failure, ...others] = removeDirectories(this.#created);
    if (!failure) return;

    const more = others.length > 0 ? `; ${others.map((other) => other.path).join(', ')} also remain` : '';
    throw new CgroupError('REMOVE_FAILED', `removing cgroup ${failure.path} failed: ${failure.reason}${more}`, {
      path: failure.path,
      cause: failure.error,
    });
  }
}

interface RemoveFailure {
  path: string;
  reason: string;
  error: unknown;
}

/**
 * Removes the created directories, newest first. The container's own
 * directories are retried on EBUSY. A parent directory that is still in
 * use, by another container's cgroup below it, is kept without error.
 */
function removeDirectories(created: CreatedDirectories): RemoveFailure[] {
  const failures: RemoveFailure[] = [];
  let retries = REMOVE_RETRIES;

  for (const directory of [...created.all].reverse()) {
    const isLeaf = created.leaves.has(directory);
    for (;;) {
      try {
        rmdirCgroup(directory);
        break;
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'ENOENT') break;
        if (code === 'EBUSY' && isLeaf && retries > 0) {
          retries--;
          sleepSync(REMOVE_RETRY_DELAY_MS);
          continue;
        }
        if (!isLeaf && (code === 'EBUSY' || code === 'ENOTEMPTY')) break;

        failures.push({ path: directory, reason: describeRemoveFailure(directory, error), error });
        break;
      }
    }
  }
  return failures;
}

function describeRemoveFailure(directory: string, error: unknown): string {
  const reason = describeFsError(error);
  if (errnoCode(error) !== 'EBUSY') return reason;

  const procs = join(directory, 'cgroup.procs');
  const pids = cgroupFileExists(procs) ? readCgroupFile(procs).split('\n').filter(Boolean) : [];
  if (pids.length === 0) return `${reason}: it has child cgroups, or the kernel has not yet released its exited processes`;
  return `${reason}: processes ${pids.slice(0, 5).join(', ')}${pids.length > 5 ? ', ...' : ''} are still in it; end them first`;
}
