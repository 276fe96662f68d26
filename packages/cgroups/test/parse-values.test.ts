import { describe, expect, it } from 'vitest';
import { CgroupError, parseCpus, parseCpuset, parseMemoryBytes, parseMemorySwap } from '../src/index.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

const SIZE_EXPECTED = 'expected a number of bytes with an optional unit b, k, m, g, t or p (multiples of 1024), such as 512m or 1.5g';
const SWAP_EXPECTED = `${SIZE_EXPECTED}, or -1 for unlimited swap`;
const CPUS_EXPECTED = 'expected a number of CPUs from 0.01 to 2, such as 0.5 or 1.5';
const CPUSET_EXPECTED = 'expected a list of numbers and ranges such as 0-2,4';

function catchError(action: () => unknown): CgroupError {
  try {
    action();
  } catch (error) {
    if (CgroupError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a CgroupError');
}

describe('parseMemoryBytes', () => {
  it.each([
    ['1048576', 1048576],
    ['0', 0],
    ['10b', 10],
    ['10B', 10],
    ['512k', 512 * KIB],
    ['512kb', 512 * KIB],
    ['512KiB', 512 * KIB],
    ['32m', 32 * MIB],
    ['32M', 32 * MIB],
    ['32mb', 32 * MIB],
    ['32 m', 32 * MIB],
    ['1g', GIB],
    ['1.5g', 1.5 * GIB],
    ['1.1k', 1126],
    ['0.5k', 512],
    ['1t', 1024 * GIB],
    ['2p', 2 * 1024 ** 5],
  ])('parses %j', (value, bytes) => {
    expect(parseMemoryBytes('--memory', value)).toBe(bytes);
  });

  it.each([
    ['', SIZE_EXPECTED],
    ['-1', SIZE_EXPECTED],
    ['-32m', SIZE_EXPECTED],
    ['32x', SIZE_EXPECTED],
    ['32mm', SIZE_EXPECTED],
    ['32ib', SIZE_EXPECTED],
    ['m', SIZE_EXPECTED],
    ['1.2.3m', SIZE_EXPECTED],
    ['.5g', SIZE_EXPECTED],
    ['1e3', SIZE_EXPECTED],
    ['0x10', SIZE_EXPECTED],
    [' 32m', SIZE_EXPECTED],
    ['32m ', SIZE_EXPECTED],
    ['32 ', SIZE_EXPECTED],
    ['32  m', SIZE_EXPECTED],
    ['9000p', `expected at most ${Number.MAX_SAFE_INTEGER} bytes`],
  ])('rejects %j', (value, reason) => {
    const error = catchError(() => parseMemoryBytes('--memory', value));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe(`invalid value "${value}" for --memory: ${reason}`);
    expect(error.option).toBe('--memory');
    expect(error.value).toBe(value);
  });
});

describe('parseMemorySwap', () => {
  it.each([
    ['-1', -1],
    ['64m', 64 * MIB],
    ['0', 0],
  ])('parses %j', (value, bytes) => {
    expect(parseMemorySwap('--memory-swap', value)).toBe(bytes);
  });

  it.each(['-2', 'max', '', '-1m'])('rejects %j', (value) => {
    const error = catchError(() => parseMemorySwap('--memory-swap', value));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe(`invalid value "${value}" for --memory-swap: ${SWAP_EXPECTED}`);
  });
});

describe('parseCpus', () => {
  it.each([
    ['0.5', 50_000],
    ['.5', 50_000],
    ['1', 100_000],
    ['2', 200_000],
    ['2.0', 200_000],
    ['0.01', 1000],
    ['0.29', 29_000],
    ['1.333333', 133_333],
    ['0.123456', 12_345],
  ])('converts %j', (value, quota) => {
    expect(parseCpus(value, 2)).toEqual({ quota, period: 100_000 });
  });

  it.each([
    ['0', CPUS_EXPECTED],
    ['0.0', CPUS_EXPECTED],
    ['0.001', CPUS_EXPECTED],
    ['0.00999', CPUS_EXPECTED],
    ['', CPUS_EXPECTED],
    ['-1', CPUS_EXPECTED],
    ['abc', CPUS_EXPECTED],
    ['1/2', CPUS_EXPECTED],
    ['1e0', CPUS_EXPECTED],
    ['1.', CPUS_EXPECTED],
    ['2.5', 'expected at most 2, the number of CPUs this process can use'],
    ['3', 'expected at most 2, the number of CPUs this process can use'],
  ])('rejects %j', (value, reason) => {
    const error = catchError(() => parseCpus(value, 2));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe(`invalid value "${value}" for --cpus: ${reason}`);
    expect(error.option).toBe('--cpus');
  });

  it('defaults to the usable CPUs', () => {
    expect(parseCpus('0.5')).toEqual({ quota: 50_000, period: 100_000 });
  });
});

describe('parseCpuset', () => {
  it.each([
    ['0', '0-1'],
    ['0-1', '0-1'],
    ['1,0', '0-1\n'],
    ['0-1,3', '0-3'],
    ['4', '0-1,4-5'],
  ])('accepts %j within %j', (value, available) => {
    expect(parseCpuset('--cpuset-cpus', value, available)).toBe(value);
  });

  it.each([
    ['', CPUSET_EXPECTED],
    ['0-', CPUSET_EXPECTED],
    ['1-0', CPUSET_EXPECTED],
    ['a', CPUSET_EXPECTED],
    ['0,,1', CPUSET_EXPECTED],
    [' 0', CPUSET_EXPECTED],
    ['0, 1', CPUSET_EXPECTED],
    ['0-2', '2 is not available (available: 0-1)'],
    ['3', '3 is not available (available: 0-1)'],
    ['0-99999999', '2 is not available (available: 0-1)'],
  ])('rejects %j', (value, reason) => {
    const error = catchError(() => parseCpuset('--cpuset-cpus', value, '0-1\n'));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe(`invalid value "${value}" for --cpuset-cpus: ${reason}`);
    expect(error.option).toBe('--cpuset-cpus');
  });

  it('names the option for memory nodes', () => {
    const error = catchError(() => parseCpuset('--cpuset-mems', '1', '0'));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe('invalid value "1" for --cpuset-mems: 1 is not available (available: 0)');
  });

  it('rejects a malformed available list', () => {
    const error = catchError(() => parseCpuset('--cpuset-cpus', '0', 'zero'));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe('invalid value "0" for --cpuset-cpus: the available list "zero" is not a cpuset list');
  });
});
