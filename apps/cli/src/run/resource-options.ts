import { readFileSync } from 'node:fs';

import {
  CgroupError,
  DEFAULT_PARENT,
  parseCpus,
  parseCpuset,
  parseMemoryBytes,
  parseMemorySwap,
  type ResourceLimits,
  validateLimits,
} from '@m-docker/cgroups';

import { CliError } from '../cli-error.js';

// run's resource options, with docker's names, units and meanings. The
// values are parsed and checked here, while the command line is parsed, so
// that an invalid one ends the run before the init gets its config. The
// cgroup itself is created in container-cgroup.ts.

/** The environment variable that sets the parent cgroup when --cgroup-parent is not given. */
export const CGROUP_PARENT_VARIABLE = 'M_DOCKER_CGROUP_PARENT';

/** The rows that command-line.ts adds to run's options table, from which it makes the parser and the help text. */
export const RESOURCE_OPTIONS = [
  { name: '--memory', alias: '-m', value: 'BYTES', help: 'memory limit in bytes, or with a unit: 512m, 1.5g; at least 6m' },
  { name: '--memory-swap', value: 'BYTES', help: 'memory plus swap limit; -1 for unlimited swap (default: twice --memory)' },
  { name: '--memory-reservation', value: 'BYTES', help: 'soft memory limit, which reclaim aims for under memory pressure; at least 6m' },
  { name: '--cpus', value: 'N', help: 'CPU limit in CPUs, such as 0.5: a CFS quota per period of 100000 microseconds' },
  { name: '--cpu-period', value: 'N', help: 'CFS period in microseconds, 1000 to 1000000 (default: 100000)' },
  { name: '--cpu-quota', value: 'N', help: 'CPU time in microseconds per CFS period, at least 1000; -1 for no limit' },
  { name: '--cpu-shares', value: 'N', help: 'relative CPU weight, 2 to 262144 (the kernel default is 1024)' },
  { name: '--cpuset-cpus', value: 'LIST', help: 'CPUs the container may run on, such as 0-2,4' },
  { name: '--cpuset-mems', value: 'LIST', help: 'NUMA memory nodes the container may use, such as 0' },
  { name: '--pids-limit', value: 'N', help: 'maximum number of processes and threads; -1 for unlimited' },
  { name: '--cgroup-parent', value: 'PATH', help: `parent cgroup of the container's cgroup (default: $${CGROUP_PARENT_VARIABLE}, else ${DEFAULT_PARENT})` },
] as const;

type ResourceOptionName = (typeof RESOURCE_OPTIONS)[number]['name'];

/** The parsed command line's values by option name, such as `{ '--memory': '32m' }`. Other options in it are ignored. */
export type ResourceOptionValues = Readonly<Record<string, unknown>>;

/** The container's cgroup as the command line requests it. */
export interface CgroupRequest {
  /** `/m-docker` (from each hierarchy's root) or `m-docker` (below the CLI's own cgroup). */
  parent: string;
  limits: ResourceLimits;
  /** The --memory value as given, such as `32m`, for the out-of-memory message. */
  memory?: string;
}

/**
 * Parses and checks the resource options and the parent cgroup. Throws a
 * CliError (status 125) that names the option and the value, such as
 * `invalid value "32x" for --memory: expected a number of bytes ...`.
 */
export function parseResourceOptions(values: ResourceOptionValues, env: NodeJS.ProcessEnv): CgroupRequest {
  try {
    const limits = parseLimits(values);
    validateLimits(limits);

    const request: CgroupRequest = { parent: selectParent(values['--cgroup-parent'], env), limits };
    const memory = optionValue(values, '--memory');
    if (memory !== undefined) request.memory = memory;
    return request;
  } catch (error) {
    if (CgroupError.isInstance(error)) throw new CliError(showGivenValue(error, values), undefined, { cause: error });
    throw error;
  }
}

// validateLimits checks numbers, so its message shows `--memory` 4m as
// "4194304"; the message names the value as the user typed it instead.
function showGivenValue(error: CgroupError, values: ResourceOptionValues): string {
  const typed = error.option === undefined ? undefined : values[error.option];
  const prefix = `invalid value "${error.value}" for ${error.option}:`;
  if (typeof typed !== 'string' || !error.message.startsWith(prefix)) return error.message;
  return `invalid value ${JSON.stringify(typed)} for ${error.option}:${error.message.slice(prefix.length)}`;
}

function parseLimits(values: ResourceOptionValues): ResourceLimits {
  const limits: ResourceLimits = {};
  const typedValue = (name: ResourceOptionName) => optionValue(values, name);

  const memory = typedValue('--memory');
  if (memory !== undefined) limits.memory = parseMemoryBytes('--memory', memory);
  const swap = typedValue('--memory-swap');
  if (swap !== undefined) limits.memorySwap = parseMemorySwap('--memory-swap', swap);
  const reservation = typedValue('--memory-reservation');
  if (reservation !== undefined) limits.memoryReservation = parseMemoryBytes('--memory-reservation', reservation);

  const cpus = typedValue('--cpus');
  const period = typedValue('--cpu-period');
  const quota = typedValue('--cpu-quota');
  if (cpus !== undefined && (period !== undefined || quota !== undefined)) {
    // docker rejects the pair too: --cpus sets the period and the quota itself.
    const other = period !== undefined ? '--cpu-period' : '--cpu-quota';
    throw new CliError(`--cpus and ${other} cannot be used together: give either --cpus or --cpu-period and --cpu-quota`);
  }
  if (cpus !== undefined) {
    const { quota: cpusQuota, period: cpusPeriod } = parseCpus(cpus);
    limits.cpuQuota = cpusQuota;
    limits.cpuPeriod = cpusPeriod;
  }
  if (period !== undefined) limits.cpuPeriod = parseInteger('--cpu-period', period);
  if (quota !== undefined) limits.cpuQuota = parseInteger('--cpu-quota', quota);

  const shares = typedValue('--cpu-shares');
  if (shares !== undefined) limits.cpuShares = parseInteger('--cpu-shares', shares);

  const cpusetCpus = typedValue('--cpuset-cpus');
  if (cpusetCpus !== undefined) limits.cpusetCpus = parseCpuset('--cpuset-cpus', cpusetCpus, readOnlineList('--cpuset-cpus', ONLINE_CPUS));
  const cpusetMems = typedValue('--cpuset-mems');
  // A kernel without NUMA support has no node directory and one node, 0.
  if (cpusetMems !== undefined) limits.cpusetMems = parseCpuset('--cpuset-mems', cpusetMems, readOnlineList('--cpuset-mems', ONLINE_NODES, '0'));

  const pids = typedValue('--pids-limit');
  if (pids !== undefined) limits.pidsLimit = parseInteger('--pids-limit', pids);
  return limits;
}

function optionValue(values: ResourceOptionValues, name: ResourceOptionName): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

// docker's integer options accept an optional minus sign and digits. The
// ranges are checked by validateLimits.
function parseInteger(option: string, value: string): number {
  if (!/^-?\d+$/.test(value)) {
    throw new CliError(`invalid value ${JSON.stringify(value)} for ${option}: expected a whole number`);
  }
  return Number(value);
}

const ONLINE_CPUS = '/sys/devices/system/cpu/online';
const ONLINE_NODES = '/sys/devices/system/node/online';

// The kernel's list of online CPUs or memory nodes, such as `0-3`. A parent
// cgroup may allow fewer, and then the kernel rejects the write to
// cpuset.cpus when the cgroup is created.
function readOnlineList(option: string, path: string, fallback?: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    if (fallback !== undefined) return fallback;
    throw new CliError(`cannot check ${option}: reading ${path} failed: ${(error as Error).message}`, undefined, { cause: error });
  }
}

/**
 * Chooses the parent cgroup: --cgroup-parent, else $M_DOCKER_CGROUP_PARENT,
 * else /m-docker. An empty value counts as not given, as in docker.
 */
export function selectParent(option: unknown, env: NodeJS.ProcessEnv): string {
  if (typeof option === 'string' && option !== '') return checkParent('--cgroup-parent', option);
  const variable = env[CGROUP_PARENT_VARIABLE];
  if (variable !== undefined && variable !== '') return checkParent(CGROUP_PARENT_VARIABLE, variable);
  return DEFAULT_PARENT;
}

// The cgroups library rejects these too, but only once it creates the
// cgroup, and its message names --cgroup-parent even when the value came
// from the environment.
function checkParent(source: string, parent: string): string {
  const segments = parent.split('/');
  if (segments.some((segment) => segment === '.' || segment === '..') || parent.includes('\0')) {
    throw new CliError(`invalid value ${JSON.stringify(parent)} for ${source}: expected a cgroup path without "." or ".." components, such as /m-docker or m-docker`);
  }
  return parent;
}
