import { describe, expect, it } from 'vitest';
import { CgroupError, MIN_MEMORY_BYTES, type ResourceLimits, validateLimits } from '../src/index.js';
import { effectiveLimits } from '../src/limits.js';

const MIB = 1024 * 1024;
const MINIMUM = `the minimum is ${MIN_MEMORY_BYTES} bytes (6m)`;

function catchError(action: () => unknown): CgroupError {
  try {
    action();
  } catch (error) {
    if (CgroupError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a CgroupError');
}

describe('validateLimits', () => {
  it.each([
    ['no limits', {}],
    ['minimum memory', { memory: MIN_MEMORY_BYTES }],
    ['swap equal to memory', { memory: 32 * MIB, memorySwap: 32 * MIB }],
    ['unlimited swap', { memory: 32 * MIB, memorySwap: -1 }],
    ['unlimited swap alone', { memorySwap: -1 }],
    ['reservation equal to memory', { memory: 32 * MIB, memoryReservation: 32 * MIB }],
    ['reservation alone', { memoryReservation: 16 * MIB }],
    ['cpu bounds', { cpuQuota: 1000, cpuPeriod: 1000, cpuShares: 2 }],
    ['cpu upper bounds', { cpuQuota: 5_000_000, cpuPeriod: 1_000_000, cpuShares: 262_144 }],
    ['no quota', { cpuQuota: -1 }],
    ['cpusets', { cpusetCpus: '0-1,3', cpusetMems: '0' }],
    ['unlimited pids', { pidsLimit: -1 }],
    ['zeros as unset', { memory: 0, memorySwap: 0, memoryReservation: 0, cpuQuota: 0, cpuPeriod: 0, cpuShares: 0, pidsLimit: 0 }],
  ] as Array<[string, ResourceLimits]>)('accepts %s', (_name, limits) => {
    expect(() => validateLimits(limits)).not.toThrow();
  });

  it.each([
    ['memory below minimum', { memory: 4 * MIB }, '--memory', '4194304', MINIMUM],
    ['negative memory', { memory: -5 }, '--memory', '-5', `expected a positive number of bytes; ${MINIMUM}`],
    ['fractional memory', { memory: 1.5 }, '--memory', '1.5', 'expected a whole number'],
    ['NaN memory', { memory: Number.NaN }, '--memory', 'NaN', 'expected a whole number'],
    ['swap without memory', { memorySwap: 64 * MIB }, '--memory-swap', '67108864', 'set --memory too, because --memory-swap is the limit of memory plus swap'],
    [
      'swap below memory',
      { memory: 32 * MIB, memorySwap: 16 * MIB },
      '--memory-swap',
      '16777216',
      'expected at least the --memory limit of 33554432 bytes, because it includes memory',
    ],
    ['negative swap', { memory: 32 * MIB, memorySwap: -2 }, '--memory-swap', '-2', 'expected a number of bytes, or -1 for unlimited swap'],
    ['reservation below minimum', { memoryReservation: MIB }, '--memory-reservation', '1048576', MINIMUM],
    ['negative reservation', { memoryReservation: -1 }, '--memory-reservation', '-1', `expected a positive number of bytes; ${MINIMUM}`],
    [
      'reservation above memory',
      { memory: 16 * MIB, memoryReservation: 32 * MIB },
      '--memory-reservation',
      '33554432',
      'expected at most the --memory limit of 16777216 bytes',
    ],
    ['quota below 1 ms', { cpuQuota: 999 }, '--cpu-quota', '999', 'expected at least 1000 µs (1 ms), or -1 for no quota'],
    ['negative quota', { cpuQuota: -2 }, '--cpu-quota', '-2', 'expected at least 1000 µs (1 ms), or -1 for no quota'],
    ['period below 1 ms', { cpuPeriod: 999 }, '--cpu-period', '999', 'expected 1000 to 1000000 µs (1 ms to 1 s)'],
    ['period above 1 s', { cpuPeriod: 1_000_001 }, '--cpu-period', '1000001', 'expected 1000 to 1000000 µs (1 ms to 1 s)'],
    ['shares below 2', { cpuShares: 1 }, '--cpu-shares', '1', 'expected 2 to 262144'],
    ['shares above maximum', { cpuShares: 262_145 }, '--cpu-shares', '262145', 'expected 2 to 262144'],
    ['negative pids', { pidsLimit: -2 }, '--pids-limit', '-2', 'expected a positive number of tasks, or -1 for unlimited'],
    ['fractional pids', { pidsLimit: 1.5 }, '--pids-limit', '1.5', 'expected a whole number'],
    ['malformed cpus', { cpusetCpus: 'x' }, '--cpuset-cpus', 'x', 'expected a list of numbers and ranges such as 0-2,4'],
    ['reversed mems', { cpusetMems: '1-0' }, '--cpuset-mems', '1-0', 'expected a list of numbers and ranges such as 0-2,4'],
  ] as Array<[string, ResourceLimits, string, string, string]>)('rejects %s', (_name, limits, option, value, reason) => {
    const error = catchError(() => validateLimits(limits));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe(`invalid value "${value}" for ${option}: ${reason}`);
    expect(error.option).toBe(option);
    expect(error.value).toBe(value);
  });
});

describe('effectiveLimits', () => {
  it.each([
    ['docker default swap', { memory: 32 * MIB }, { memory: 32 * MIB, memorySwap: 64 * MIB, memorySwapIsDefault: true }],
    ['explicit swap', { memory: 32 * MIB, memorySwap: 40 * MIB }, { memory: 32 * MIB, memorySwap: 40 * MIB, memorySwapIsDefault: false }],
    ['zeros dropped', { memory: 0, pidsLimit: 0, cpusetCpus: '' }, { memorySwapIsDefault: false }],
  ] as Array<[string, ResourceLimits, object]>)('computes %s', (_name, limits, expected) => {
    expect(effectiveLimits(limits)).toEqual(expected);
  });
});
