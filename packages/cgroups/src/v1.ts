import { join } from 'node:path';
import { readCgroupFile } from './cgroupfs.js';
import type { LimitWrite } from './limit-writes.js';
import { writeOrThrow } from './limit-writes.js';
import type { EffectiveLimits } from './limits.js';

// cgroup v1: each controller has its own hierarchy (or shares one with the
// controllers mounted together with it), and every file sits in the
// container's directory of that hierarchy.

const SWAP_HINT = 'the kernel has no swap accounting; boot it with swapaccount=1, or omit --memory-swap';

/** Lists the v1 interface files to write for the limits, in the order they must be written. */
export function v1LimitWrites(limits: EffectiveLimits): LimitWrite[] {
  const writes: LimitWrite[] = [];

  // memory.memsw.limit_in_bytes may never be below memory.limit_in_bytes.
  // A new cgroup has both unlimited, so memory goes first.
  if (limits.memory !== undefined) {
    writes.push({ controller: 'memory', file: 'memory.limit_in_bytes', value: String(limits.memory), field: 'memory' });
  }
  if (limits.memorySwap !== undefined) {
    const skipIfMissing = limits.memorySwapIsDefault || limits.memorySwap === -1;
    writes.push({ controller: 'memory', file: 'memory.memsw.limit_in_bytes', value: String(limits.memorySwap), field: 'memorySwap', skipIfMissing, hint: SWAP_HINT });
  }
  if (limits.memoryReservation !== undefined) {
    writes.push({ controller: 'memory', file: 'memory.soft_limit_in_bytes', value: String(limits.memoryReservation), field: 'memoryReservation' });
  }

  // The kernel checks a new quota against the current period, so the
  // period goes first.
  if (limits.cpuPeriod !== undefined) {
    writes.push({ controller: 'cpu', file: 'cpu.cfs_period_us', value: String(limits.cpuPeriod), field: 'cpuPeriod' });
  }
  if (limits.cpuQuota !== undefined) {
    writes.push({ controller: 'cpu', file: 'cpu.cfs_quota_us', value: String(limits.cpuQuota), field: 'cpuQuota' });
  }
  if (limits.cpuShares !== undefined) {
    writes.push({ controller: 'cpu', file: 'cpu.shares', value: String(limits.cpuShares), field: 'cpuShares' });
  }

  if (limits.cpusetCpus !== undefined) {
    writes.push({ controller: 'cpuset', file: 'cpuset.cpus', value: limits.cpusetCpus, field: 'cpusetCpus' });
  }
  if (limits.cpusetMems !== undefined) {
    writes.push({ controller: 'cpuset', file: 'cpuset.mems', value: limits.cpusetMems, field: 'cpusetMems' });
  }

  if (limits.pidsLimit !== undefined) {
    writes.push({ controller: 'pids', file: 'pids.max', value: limits.pidsLimit === -1 ? 'max' : String(limits.pidsLimit), field: 'pidsLimit' });
  }
  return writes;
}

/**
 * Copies cpuset.cpus and cpuset.mems into each directory whose lists are
 * empty, from its parent, top-down from `base`. A new v1 cpuset starts
 * with both empty, and the kernel refuses to attach a process to it (or to
 * fill a child's lists) until they are set.
 */
export function inheritCpusets(base: string, directories: readonly string[]): void {
  let parent = base;
  for (const directory of directories) {
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const path = join(directory, file);
      if (readCgroupFile(path).trim() === '') writeOrThrow(path, readCgroupFile(join(parent, file)).trim());
    }
    parent = directory;
  }
}
