import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';

import { CliError } from '../src/cli-error.js';
import { parseCommandLine } from '../src/command-line.js';
import { type CgroupRequest, parseResourceOptions, selectParent } from '../src/run/resource-options.js';

const MIB = 1024 * 1024;

// The resource options as the command line gives them, through the real
// parser, so that aliases and attached values are covered too.
function parseRun(options: string[]): CgroupRequest {
  const parsed = parseCommandLine(['run', ...options, 'true']);
  if (parsed.kind !== 'run') throw new Error(`expected a run request, got ${parsed.kind}`);
  return parsed.request.cgroup;
}

function errorOf(action: () => unknown): CliError {
  try {
    action();
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error('expected a CliError');
}

describe('resource options', () => {
  it.each([
    [['-m', '32m'], { memory: 32 * MIB }],
    [['-m32m'], { memory: 32 * MIB }],
    [['--memory=1.5g'], { memory: 1.5 * 1024 * MIB }],
    [['--memory', '8m', '--memory-swap', '-1'], { memory: 8 * MIB, memorySwap: -1 }],
    [['--memory', '8m', '--memory-swap', '16m'], { memory: 8 * MIB, memorySwap: 16 * MIB }],
    [['--memory-reservation', '6m'], { memoryReservation: 6 * MIB }],
    [['--cpus', '0.5'], { cpuQuota: 50_000, cpuPeriod: 100_000 }],
    [['--cpu-period', '50000', '--cpu-quota', '25000'], { cpuPeriod: 50_000, cpuQuota: 25_000 }],
    [['--cpu-quota', '-1'], { cpuQuota: -1 }],
    [['--cpu-shares', '512'], { cpuShares: 512 }],
    [['--cpuset-cpus', '0'], { cpusetCpus: '0' }],
    [['--cpuset-mems', '0'], { cpusetMems: '0' }],
    [['--pids-limit', '10'], { pidsLimit: 10 }],
    [['--pids-limit', '-1'], { pidsLimit: -1 }],
    [[], {}],
  ])('%j gives %j', (options, limits) => {
    expect(parseRun(options).limits).toEqual(limits);
  });

  it('keeps the --memory value as given', () => {
    expect(parseRun(['-m', '32m']).memory).toBe('32m');
    expect(parseRun([]).memory).toBeUndefined();
  });

  it.each([
    [['-m', '32x'], 'invalid value "32x" for --memory: expected a number of bytes with an optional unit b, k, m, g, t or p (multiples of 1024), such as 512m or 1.5g'],
    [['-m', '-1'], 'invalid value "-1" for --memory: expected a number of bytes with an optional unit b, k, m, g, t or p (multiples of 1024), such as 512m or 1.5g'],
    [['-m', '4m'], `invalid value "4m" for --memory: the minimum is ${6 * MIB} bytes (6m)`],
    [['--memory-swap', '-2', '-m', '8m'], 'invalid value "-2" for --memory-swap: expected a number of bytes with an optional unit b, k, m, g, t or p (multiples of 1024), such as 512m or 1.5g, or -1 for unlimited swap'],
    [['--memory-swap', '16m'], 'invalid value "16m" for --memory-swap: set --memory too, because --memory-swap is the limit of memory plus swap'],
    [['-m', '16m', '--memory-swap', '8m'], `invalid value "8m" for --memory-swap: expected at least the --memory limit of ${16 * MIB} bytes, because it includes memory`],
    [['--memory-reservation', '1k'], `invalid value "1k" for --memory-reservation: the minimum is ${6 * MIB} bytes (6m)`],
    [['-m', '8m', '--memory-reservation', '16m'], `invalid value "16m" for --memory-reservation: expected at most the --memory limit of ${8 * MIB} bytes`],
    [['--cpus', '-1'], `invalid value "-1" for --cpus: expected a number of CPUs from 0.01 to ${availableParallelism()}, such as 0.5 or 1.5`],
    [['--cpus', 'half'], `invalid value "half" for --cpus: expected a number of CPUs from 0.01 to ${availableParallelism()}, such as 0.5 or 1.5`],
    [['--cpus', '0.001'], `invalid value "0.001" for --cpus: expected a number of CPUs from 0.01 to ${availableParallelism()}, such as 0.5 or 1.5`],
    [['--cpus', '4096'], `invalid value "4096" for --cpus: expected at most ${availableParallelism()}, the number of CPUs this process can use`],
    [['--cpus', '0.5', '--cpu-quota', '50000'], '--cpus and --cpu-quota cannot be used together: give either --cpus or --cpu-period and --cpu-quota'],
    [['--cpus', '0.5', '--cpu-period', '50000'], '--cpus and --cpu-period cannot be used together: give either --cpus or --cpu-period and --cpu-quota'],
    [['--cpu-period', '100'], 'invalid value "100" for --cpu-period: expected 1000 to 1000000 µs (1 ms to 1 s)'],
    [['--cpu-period', '1e5'], 'invalid value "1e5" for --cpu-period: expected a whole number'],
    [['--cpu-quota', '999'], 'invalid value "999" for --cpu-quota: expected at least 1000 µs (1 ms), or -1 for no quota'],
    [['--cpu-quota', '-2'], 'invalid value "-2" for --cpu-quota: expected at least 1000 µs (1 ms), or -1 for no quota'],
    [['--cpu-shares', '1'], 'invalid value "1" for --cpu-shares: expected 2 to 262144'],
    [['--cpu-shares', '1.5'], 'invalid value "1.5" for --cpu-shares: expected a whole number'],
    [['--cpuset-cpus', '4096'], 'invalid value "4096" for --cpuset-cpus: 4096 is not available (available: '],
    [['--cpuset-cpus', '0-'], 'invalid value "0-" for --cpuset-cpus: expected a list of numbers and ranges such as 0-2,4'],
    [['--cpuset-mems', '1024'], 'invalid value "1024" for --cpuset-mems: 1024 is not available (available: '],
    [['--pids-limit', '-2'], 'invalid value "-2" for --pids-limit: expected a positive number of tasks, or -1 for unlimited'],
    [['--pids-limit', 'ten'], 'invalid value "ten" for --pids-limit: expected a whole number'],
    [['--pids-limit', '99999999999999999999'], 'invalid value "99999999999999999999" for --pids-limit: expected a whole number'],
    [['--cgroup-parent', '../up'], 'invalid value "../up" for --cgroup-parent: expected a cgroup path without "." or ".." components, such as /m-docker or m-docker'],
    [['--cgroup-parent', '/a/./b'], 'invalid value "/a/./b" for --cgroup-parent: expected a cgroup path without "." or ".." components, such as /m-docker or m-docker'],
  ])('%j is rejected', (options, message) => {
    const error = errorOf(() => parseRun(options));
    expect(error.status).toBe(125);
    expect(error.message.startsWith(message)).toBe(true);
  });
});

describe('selectParent', () => {
  it.each([
    [undefined, {}, '/m-docker'],
    ['', {}, '/m-docker'],
    [undefined, { M_DOCKER_CGROUP_PARENT: '' }, '/m-docker'],
    [undefined, { M_DOCKER_CGROUP_PARENT: 'from-env' }, 'from-env'],
    ['/from-option', { M_DOCKER_CGROUP_PARENT: 'from-env' }, '/from-option'],
    ['relative/path', {}, 'relative/path'],
  ])('option %j with %j gives %j', (option, env, parent) => {
    expect(selectParent(option, env)).toBe(parent);
  });

  it('names the variable of an invalid parent', () => {
    const error = errorOf(() => selectParent(undefined, { M_DOCKER_CGROUP_PARENT: 'a/..' }));
    expect(error.message).toBe(
      'invalid value "a/.." for M_DOCKER_CGROUP_PARENT: expected a cgroup path without "." or ".." components, such as /m-docker or m-docker',
    );
  });

  it('parseResourceOptions reads the variable', () => {
    expect(parseResourceOptions({}, { M_DOCKER_CGROUP_PARENT: 'from-env' }).parent).toBe('from-env');
  });
});
