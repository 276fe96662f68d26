import { availableParallelism } from 'node:os';
import { CgroupError } from './errors.js';

// Parsers for the values of docker's resource options, as a user types them.
// They are pure: the caller passes in what they need from the machine (the
// CPU count, the available cpuset), so tests need no particular host.

/** docker's minimum for `--memory` and `--memory-reservation`: 6 MiB. */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

/** The CFS period in microseconds that docker uses for `--cpus`. */
export const DEFAULT_CPU_PERIOD_US = 100_000;

/** The smallest CFS quota in microseconds that docker accepts (1 ms), which makes 0.01 the smallest `--cpus`. */
export const MIN_CPU_QUOTA_US = 1000;

// docker's units are powers of 1024 whatever their spelling, so 1k, 1kb and
// 1kib all mean 1024 bytes. A bare number or a `b` suffix means bytes.
const UNIT_MULTIPLIERS: Readonly<Record<string, number>> = (() => {
  const multipliers: Record<string, number> = { '': 1, b: 1 };
  const prefixes = ['k', 'm', 'g', 't', 'p'];
  prefixes.forEach((prefix, index) => {
    const multiplier = 1024 ** (index + 1);
    multipliers[prefix] = multiplier;
    multipliers[`${prefix}b`] = multiplier;
    multipliers[`${prefix}ib`] = multiplier;
  });
  return multipliers;
})();

const SIZE_PATTERN = /^(\d+(?:\.\d+)?)(?: ?([a-z]+))?$/i;
const SIZE_EXPECTED = 'expected a number of bytes with an optional unit b, k, m, g, t or p (multiples of 1024), such as 512m or 1.5g';
const SWAP_EXPECTED = `${SIZE_EXPECTED}, or -1 for unlimited swap`;

/**
 * Parses a size such as `32m`, `1.5g`, `512kb` or `1048576` into bytes, as
 * docker does for `--memory`. Units are powers of 1024 and may be followed
 * by `b` or `ib`, in any case. A fraction is truncated to whole bytes.
 * `0` is returned as 0, which docker reads as "no limit".
 */
export function parseMemoryBytes(option: string, value: string): number {
  return parseSize(option, value, SIZE_EXPECTED);
}

/** Parses `--memory-swap`: a size like {@link parseMemoryBytes}, or `-1` for unlimited swap (returned as -1). */
export function parseMemorySwap(option: string, value: string): number {
  if (value === '-1') return -1;
  return parseSize(option, value, SWAP_EXPECTED);
}

function parseSize(option: string, value: string, expected: string): number {
  const match = SIZE_PATTERN.exec(value);
  const multiplier = match ? UNIT_MULTIPLIERS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || multiplier === undefined) throw invalidValue(option, value, expected);

  const bytes = Math.floor(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes)) {
    throw invalidValue(option, value, `expected at most ${Number.MAX_SAFE_INTEGER} bytes`);
  }
  return bytes;
}

/**
 * Converts `--cpus` into a CFS quota over docker's period of 100000 µs:
 * `0.5` gives `{ quota: 50000, period: 100000 }`. Digits past the fifth
 * decimal place are dropped, because the quota is a whole number of µs.
 * Accepts 0.01 up to `cpuCount`, the CPUs this process may run on.
 */
export function parseCpus(value: string, cpuCount: number = availableParallelism()): { quota: number; period: number } {
  const expected = `expected a number of CPUs from 0.01 to ${cpuCount}, such as 0.5 or 1.5`;
  if (!/^(\d+(\.\d+)?|\.\d+)$/.test(value)) throw invalidValue('--cpus', value, expected);
  if (Number(value) > cpuCount) throw invalidValue('--cpus', value, `expected at most ${cpuCount}, the number of CPUs this process can use`);

  // Decimal arithmetic on the digits, because 0.29 * 100000 in floating
  // point is 28999.999999999996.
  const [whole = '0', fraction = ''] = value.split('.');
  const quota = Number(whole) * DEFAULT_CPU_PERIOD_US + Number(fraction.padEnd(5, '0').slice(0, 5));
  if (quota < MIN_CPU_QUOTA_US) throw invalidValue('--cpus', value, expected);

  return { quota, period: DEFAULT_CPU_PERIOD_US };
}

/**
 * Checks a cpuset list such as `0-1,3` for `--cpuset-cpus` or
 * `--cpuset-mems` against `available`, the list that the parent cgroup
 * allows (its `cpuset.cpus` or `cpuset.mems`, or
 * /sys/devices/system/cpu/online). Returns the value unchanged, ready to be
 * written to the cgroup. The error names the first number that is missing.
 */
export function parseCpuset(option: string, value: string, available: string): string {
  const requested = parseIdList(value);
  if (!requested) throw invalidValue(option, value, CPUSET_EXPECTED);

  const allowed = parseIdList(available.trim());
  if (!allowed) throw invalidValue(option, value, `the available list "${available.trim()}" is not a cpuset list`);

  for (const [first, last] of requested) {
    // Stops at the first missing number, so a huge range costs at most
    // one step per available number.
    for (let id = first; id <= last; id++) {
      if (!allowed.some(([low, high]) => id >= low && id <= high)) {
        throw invalidValue(option, value, `${id} is not available (available: ${available.trim()})`);
      }
    }
  }
  return value;
}

export const CPUSET_EXPECTED = 'expected a list of numbers and ranges such as 0-2,4';

/** Parses a kernel list such as `0-2,4` into inclusive ranges; returns undefined when the text is not such a list. */
export function parseIdList(text: string): Array<[number, number]> | undefined {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(text)) return undefined;

  const ranges: Array<[number, number]> = [];
  for (const part of text.split(',')) {
    const [first, last = first] = part.split('-').map(Number) as [number, number?];
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first > last) return undefined;
    ranges.push([first, last]);
  }
  return ranges;
}

/** Builds the INVALID_VALUE error: `invalid value "32x" for --memory: expected ...`. */
export function invalidValue(option: string, value: string, reason: string): CgroupError {
  return new CgroupError('INVALID_VALUE', `invalid value "${value}" for ${option}: ${reason}`, { option, value });
}
