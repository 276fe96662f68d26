import { join } from 'node:path';
import { cgroupFileExists, readCgroupFile, writeCgroupFile } from './cgroupfs.js';
import { CgroupError, describeFsError, errnoCode } from './errors.js';
import type { LimitWrite } from './limit-writes.js';
import type { EffectiveLimits } from './limits.js';
import { DEFAULT_CPU_PERIOD_US } from './parse-values.js';

// cgroup v2: one hierarchy. A controller's files appear in a cgroup only
// after every cgroup above it has the controller in cgroup.subtree_control,
// so createCgroup enables them from the top of the chain down.

const SWAP_HINT = 'the kernel has no swap accounting (memory.swap.max exists only with CONFIG_MEMCG_SWAP and without swapaccount=0); omit --memory-swap';

/** Lists the v2 interface files to write for the limits, with docker's values converted to v2's units. */
export function v2LimitWrites(limits: EffectiveLimits): LimitWrite[] {
  const writes: LimitWrite[] = [];
  const add = (file: string, value: string, field: LimitWrite['field'], extra: Partial<LimitWrite> = {}) =>
    writes.push({ controller: '', file, value, field, ...extra });

  if (limits.memory !== undefined) add('memory.max', String(limits.memory), 'memory');

  // docker's --memory-swap counts memory plus swap, memory.swap.max only swap.
  if (limits.memorySwap !== undefined) {
    const value = limits.memorySwap === -1 ? 'max' : String(limits.memorySwap - (limits.memory ?? 0));
    add('memory.swap.max', value, 'memorySwap', { skipIfMissing: limits.memorySwapIsDefault || limits.memorySwap === -1, hint: SWAP_HINT });
  }
  if (limits.memoryReservation !== undefined) add('memory.low', String(limits.memoryReservation), 'memoryReservation');

  if (limits.cpuQuota !== undefined || limits.cpuPeriod !== undefined) {
    const quota = limits.cpuQuota === undefined || limits.cpuQuota === -1 ? 'max' : String(limits.cpuQuota);
    add('cpu.max', `${quota} ${limits.cpuPeriod ?? DEFAULT_CPU_PERIOD_US}`, limits.cpuQuota !== undefined ? 'cpuQuota' : 'cpuPeriod');
  }
  if (limits.cpuShares !== undefined) add('cpu.weight', String(cpuWeightFromShares(limits.cpuShares)), 'cpuShares');

  if (limits.cpusetCpus !== undefined) add('cpuset.cpus', limits.cpusetCpus, 'cpusetCpus');
  if (limits.cpusetMems !== undefined) add('cpuset.mems', limits.cpusetMems, 'cpusetMems');

  if (limits.pidsLimit !== undefined) add('pids.max', limits.pidsLimit === -1 ? 'max' : String(limits.pidsLimit), 'pidsLimit');
  return writes;
}

/**
 * Converts v1 CPU shares (2..262144) to a v2 cpu.weight (1..10000) with
 * runc's linear formula, so docker's default of 1024 shares gives 39.
 */
export function cpuWeightFromShares(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262_142);
}

/** Reads the controllers listed in a cgroup's `cgroup.controllers` or `cgroup.subtree_control`. */
export function readControllerList(path: string): Set<string> {
  return new Set(readCgroupFile(path).split(/\s+/).filter(Boolean));
}

/**
 * Enables `controllers` for the children of `directory`, writing only the
 * ones not enabled already, as `+memory +pids` in one write. Throws
 * INTERNAL_PROCESS when the cgroup has processes of its own.
 */
export function enableControllers(directory: string, controllers: readonly string[]): void {
  const available = readControllerList(join(directory, 'cgroup.controllers'));
  const missing = controllers.filter((controller) => !available.has(controller));
  if (missing.length > 0) {
    throw new CgroupError(
      'CONTROLLER_MISSING',
      `${missing.join(', ')} not in ${join(directory, 'cgroup.controllers')}: enable it in cgroup.subtree_control of the cgroup above`,
      { path: join(directory, 'cgroup.controllers') },
    );
  }

  const subtreeControl = join(directory, 'cgroup.subtree_control');
  const enabled = readControllerList(subtreeControl);
  const toEnable = controllers.filter((controller) => !enabled.has(controller));
  if (toEnable.length === 0) return;

  const processes = isRootCgroup(directory) ? [] : readCgroupFile(join(directory, 'cgroup.procs')).split('\n').filter(Boolean);
  if (processes.length > 0) throw internalProcess(subtreeControl, toEnable, processes);

  const value = toEnable.map((controller) => `+${controller}`).join(' ');
  try {
    writeCgroupFile(subtreeControl, value);
  } catch (error) {
    // A process can join between the check above and the write.
    if (errnoCode(error) === 'EBUSY') throw internalProcess(subtreeControl, toEnable, [], error);
    throw new CgroupError('WRITE_FAILED', `writing "${value}" to ${subtreeControl} failed: ${describeFsError(error)}`, {
      path: subtreeControl,
      value,
      cause: error,
    });
  }
}

// The kernel creates cgroup.type in every cgroup except the root one
// (cgroup-v2.rst, "Core Interface Files"), and only the root cgroup is exempt from the
// no-internal-process rule.
function isRootCgroup(directory: string): boolean {
  return !cgroupFileExists(join(directory, 'cgroup.type'));
}

function internalProcess(subtreeControl: string, controllers: readonly string[], processes: readonly string[], cause?: unknown): CgroupError {
  const shown = processes.slice(0, 5).join(', ') + (processes.length > 5 ? ', ...' : '');
  const which = processes.length > 0 ? ` (pids ${shown})` : '';
  const message =
    `cannot enable ${controllers.join(', ')} in ${subtreeControl}: the cgroup contains processes${which}. ` +
    'cgroup v2 enables controllers for the children of a non-root cgroup only while it has no processes of its own. ' +
    'Use a --cgroup-parent whose cgroups contain no processes, or move those processes into a child cgroup first.';
  return new CgroupError('INTERNAL_PROCESS', message, { path: subtreeControl, value: controllers.join(' '), ...(cause === undefined ? {} : { cause }) });
}
