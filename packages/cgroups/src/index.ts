export { DEFAULT_PARENT } from './cgroup-paths.js';
export { type ContainerCgroup, type CgroupOptions, createCgroup } from './container-cgroup.js';
export { CgroupError, type CgroupErrorCode, type CgroupErrorDetails } from './errors.js';
export { type CgroupLayout, detectLayout, ownCgroupPaths, V1_CONTROLLERS } from './layout.js';
export { type MigrationWarmUp, type MigrationWarmUpOptions, warmUpMigration } from './migration-warm-up.js';
export { MAX_CPU_PERIOD_US, MAX_CPU_SHARES, MIN_CPU_PERIOD_US, MIN_CPU_SHARES, OPTION_NAMES, type ResourceLimits, validateLimits } from './limits.js';
export { DEFAULT_CPU_PERIOD_US, MIN_CPU_QUOTA_US, MIN_MEMORY_BYTES, parseCpus, parseCpuset, parseMemoryBytes, parseMemorySwap } from './parse-values.js';
export { type RemoveStaleOptions, removeStaleCgroups } from './remove-stale.js';
export { cpuWeightFromShares } from './v2.js';
