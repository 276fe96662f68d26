import { CPUSET_EXPECTED, invalidValue, MIN_CPU_QUOTA_US, MIN_MEMORY_BYTES, parseIdList } from './parse-values.js';

/**
 * A container's resource limits in docker's units: bytes, CFS microseconds,
 * relative CPU shares, kernel cpuset lists and a task count. An absent
 * field, or 0 as in docker's API, leaves the kernel's default (no limit).
 */
export interface ResourceLimits {
  /** `--memory`, bytes. */
  memory?: number;
  /** `--memory-swap`, bytes of memory plus swap, or -1 for unlimited swap. */
  memorySwap?: number;
  /** `--memory-reservation`, bytes: the soft limit that reclaim aims for under memory pressure. */
  memoryReservation?: number;
  /** `--cpu-quota`, µs of CPU time per period, or -1 for no quota. */
  cpuQuota?: number;
  /** `--cpu-period`, µs. */
  cpuPeriod?: number;
  /** `--cpu-shares`, a relative weight (docker's default is 1024). */
  cpuShares?: number;
  /** `--cpuset-cpus`, a list such as `0-1,3`. */
  cpusetCpus?: string;
  /** `--cpuset-mems`, a list of memory nodes such as `0`. */
  cpusetMems?: string;
  /** `--pids-limit`, the maximum number of tasks (processes and threads), or -1 for unlimited. */
  pidsLimit?: number;
}

/** docker's option name for each field, used in error messages. */
export const OPTION_NAMES = {
  memory: '--memory',
  memorySwap: '--memory-swap',
  memoryReservation: '--memory-reservation',
  cpuQuota: '--cpu-quota',
  cpuPeriod: '--cpu-period',
  cpuShares: '--cpu-shares',
  cpusetCpus: '--cpuset-cpus',
  cpusetMems: '--cpuset-mems',
  pidsLimit: '--pids-limit',
} as const satisfies Record<keyof ResourceLimits, string>;

export const MIN_CPU_SHARES = 2;
export const MAX_CPU_SHARES = 262_144;
export const MIN_CPU_PERIOD_US = 1000;
export const MAX_CPU_PERIOD_US = 1_000_000;

type NumericField = Exclude<keyof ResourceLimits, 'cpusetCpus' | 'cpusetMems'>;

/**
 * Checks the limits against each other and against docker's ranges, and
 * throws CgroupError 'INVALID_VALUE' naming the first option that fails.
 * 0 counts as unset, as in docker's API.
 */
export function validateLimits(limits: ResourceLimits): void {
  for (const field of Object.keys(OPTION_NAMES) as Array<keyof ResourceLimits>) {
    if (field === 'cpusetCpus' || field === 'cpusetMems') {
      checkCpusetSyntax(field, limits[field]);
    } else {
      checkInteger(field, limits[field]);
    }
  }

  checkMemory(limits);
  checkCpu(limits);

  const pids = limits.pidsLimit ?? 0;
  if (pids < -1) throw invalid('pidsLimit', pids, 'expected a positive number of tasks, or -1 for unlimited');
}

function checkMemory(limits: ResourceLimits): void {
  const memory = limits.memory ?? 0;
  const swap = limits.memorySwap ?? 0;
  const reservation = limits.memoryReservation ?? 0;
  const minimum = `the minimum is ${MIN_MEMORY_BYTES} bytes (6m)`;

  if (memory < 0) throw invalid('memory', memory, `expected a positive number of bytes; ${minimum}`);
  if (memory > 0 && memory < MIN_MEMORY_BYTES) throw invalid('memory', memory, minimum);

  if (swap < -1) throw invalid('memorySwap', swap, 'expected a number of bytes, or -1 for unlimited swap');
  if (swap > 0 && memory === 0) throw invalid('memorySwap', swap, 'set --memory too, because --memory-swap is the limit of memory plus swap');
  if (swap > 0 && swap < memory) throw invalid('memorySwap', swap, `expected at least the --memory limit of ${memory} bytes, because it includes memory`);

  if (reservation < 0) throw invalid('memoryReservation', reservation, `expected a positive number of bytes; ${minimum}`);
  if (reservation > 0 && reservation < MIN_MEMORY_BYTES) throw invalid('memoryReservation', reservation, minimum);
  if (reservation > 0 && memory > 0 && reservation > memory) {
    throw invalid('memoryReservation', reservation, `expected at most the --memory limit of ${memory} bytes`);
  }
}

function checkCpu(limits: ResourceLimits): void {
  const quota = limits.cpuQuota ?? 0;
  const period = limits.cpuPeriod ?? 0;
  const shares = limits.cpuShares ?? 0;

  if (quota !== 0 && quota !== -1 && quota < MIN_CPU_QUOTA_US) {
    throw invalid('cpuQuota', quota, `expected at least ${MIN_CPU_QUOTA_US} µs (1 ms), or -1 for no quota`);
  }
  if (period !== 0 && (period < MIN_CPU_PERIOD_US || period > MAX_CPU_PERIOD_US)) {
    throw invalid('cpuPeriod', period, `expected ${MIN_CPU_PERIOD_US} to ${MAX_CPU_PERIOD_US} µs (1 ms to 1 s)`);
  }
  if (shares !== 0 && (shares < MIN_CPU_SHARES || shares > MAX_CPU_SHARES)) {
    throw invalid('cpuShares', shares, `expected ${MIN_CPU_SHARES} to ${MAX_CPU_SHARES}`);
  }
}

function checkInteger(field: NumericField, value: number | undefined): void {
  if (value !== undefined && !Number.isSafeInteger(value)) throw invalid(field, value, 'expected a whole number');
}

function checkCpusetSyntax(field: 'cpusetCpus' | 'cpusetMems', value: string | undefined): void {
  if (value !== undefined && value !== '' && !parseIdList(value)) {
    throw invalidValue(OPTION_NAMES[field], value, CPUSET_EXPECTED);
  }
}

function invalid(field: keyof ResourceLimits, value: number, reason: string) {
  return invalidValue(OPTION_NAMES[field], String(value), reason);
}

/**
 * The limits that createCgroup writes: fields that are 0, empty or absent
 * are dropped, and `memorySwap` gets docker's default of twice `memory`
 * (as much swap as memory) when only `memory` is set.
 */
export interface EffectiveLimits extends ResourceLimits {
  /** True when `memorySwap` is docker's default rather than the caller's, so a missing swap controller is no error. */
  memorySwapIsDefault: boolean;
}

/** Computes the {@link EffectiveLimits} of validated limits. */
export function effectiveLimits(limits: ResourceLimits): EffectiveLimits {
  const effective: EffectiveLimits = { memorySwapIsDefault: false };
  for (const field of Object.keys(OPTION_NAMES) as Array<keyof ResourceLimits>) {
    const value = limits[field];
    if (value !== undefined && value !== 0 && value !== '') Object.assign(effective, { [field]: value });
  }

  if (effective.memory !== undefined && effective.memorySwap === undefined) {
    effective.memorySwap = effective.memory * 2;
    effective.memorySwapIsDefault = true;
  }
  return effective;
}
