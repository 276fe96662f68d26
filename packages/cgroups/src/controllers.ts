import { CgroupError } from './errors.js';
import { type EffectiveLimits, OPTION_NAMES, type ResourceLimits } from './limits.js';

/** A controller that createCgroup may put the container in, and the option fields that need it. */
interface ControllerUse {
  controller: string;
  fields: Array<keyof ResourceLimits>;
  /** Whether the container joins it even without those fields, when it is available. */
  always: boolean;
}

// On v1 the container joins the memory hierarchy for OOM detection, pids,
// and cpu and cpuacct for CPU accounting, whatever its limits. cpuset is
// joined only for its options, because each new v1 cpuset directory needs
// cpuset.cpus and cpuset.mems copied in before a process may enter it.
export const V1_CONTROLLER_USES: readonly ControllerUse[] = [
  { controller: 'memory', fields: ['memory', 'memorySwap', 'memoryReservation'], always: true },
  { controller: 'pids', fields: ['pidsLimit'], always: true },
  { controller: 'cpu', fields: ['cpuQuota', 'cpuPeriod', 'cpuShares'], always: true },
  { controller: 'cpuacct', fields: [], always: true },
  { controller: 'cpuset', fields: ['cpusetCpus', 'cpusetMems'], always: false },
];

// On v2, cpu.stat exists without the cpu controller, and a kernel built
// with CONFIG_RT_GROUP_SCHED refuses to enable the cpu controller while
// realtime processes run outside the root cgroup (cgroup-v2.rst, "CPU"),
// so cpu is enabled only for its options.
export const V2_CONTROLLER_USES: readonly ControllerUse[] = [
  { controller: 'memory', fields: ['memory', 'memorySwap', 'memoryReservation'], always: true },
  { controller: 'pids', fields: ['pidsLimit'], always: true },
  { controller: 'cpu', fields: ['cpuQuota', 'cpuPeriod', 'cpuShares'], always: false },
  { controller: 'cpuset', fields: ['cpusetCpus', 'cpusetMems'], always: false },
];

/**
 * Picks the controllers the container joins. A missing controller is
 * skipped, unless an option that needs it is set: then it throws
 * CONTROLLER_MISSING, with `whereMissing` saying where it was looked for.
 */
export function selectControllers(
  uses: readonly ControllerUse[],
  isAvailable: (controller: string) => boolean,
  limits: EffectiveLimits,
  whereMissing: (controller: string) => string,
): string[] {
  const selected: string[] = [];

  for (const use of uses) {
    const field = use.fields.find((name) => limits[name] !== undefined && !(name === 'memorySwap' && limits.memorySwapIsDefault));
    if (!isAvailable(use.controller)) {
      if (field === undefined) continue;
      const option = OPTION_NAMES[field];
      throw new CgroupError('CONTROLLER_MISSING', `${option} needs the ${use.controller} controller, which ${whereMissing(use.controller)}`, {
        option,
        value: String(limits[field]),
      });
    }
    if (field !== undefined || use.always) selected.push(use.controller);
  }
  return selected;
}
