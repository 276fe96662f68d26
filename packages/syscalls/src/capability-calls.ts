import { capabilityNames } from './capabilities.js';
import { errnoName, SyscallError } from './errors.js';
import { lastErrno, loadLibc } from './libc.js';

// Capabilities belong to a thread, not to a process (capabilities(7)):
// every call here reads or changes the calling thread only, and a child
// starts with the sets of the thread that forked it. glibc's capget and
// capset are plain system calls, unlike its setuid, which makes every
// thread of the process do the same change.
//
// execve(2) by root (without file capabilities) gives the new program the
// permitted set P' = inheritable | bounding, and the same effective set.
// A program run by another user gets none, except through set-user-ID-root
// or file capabilities, which are capped by the bounding set too. So the
// bounding set is the limit for everything a thread starts, and a thread
// that limits its bounding set and empties its inheritable set gives its
// children at most that set.

/** The calling thread's capability sets; bit N stands for capability N (see CAPABILITIES). */
export interface CapabilitySets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

// prctl(2) options (<linux/prctl.h>).
const PR_CAPBSET_READ = 23;
const PR_CAPBSET_DROP = 24;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;

// capget(2) and capset(2) header version 3 (Linux 2.6.26): each set is two
// 32-bit words, the low word first.
const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

const EINVAL = 22;

// The highest capability number tried: capability sets have 64 bits, and the
// kernel's own last one (CAP_LAST_CAP, 40 on Linux 6.18) is below it.
const PROBE_LIMIT = 63;

function fail(syscall: string, errno: number, args: string): SyscallError {
  return new SyscallError({ syscall, errno, code: errnoName(errno), args });
}

function describeCapability(number: number): string {
  return capabilityNames(1n << BigInt(number))[0] ?? `capability ${number}`;
}

/** Returns the calling thread's effective, permitted and inheritable sets (capget(2)). */
export function getCapabilities(): CapabilitySets {
  const header = Uint32Array.of(LINUX_CAPABILITY_VERSION_3, 0);
  const data = new Uint32Array(6);
  if (loadLibc().capget(header, data) === -1) {
    const errno = lastErrno();
    throw fail('capget', errno, 'pid=0');
  }
  const word = (index: number) => BigInt(data[index] as number);
  return {
    effective: word(0) | (word(3) << 32n),
    permitted: word(1) | (word(4) << 32n),
    inheritable: word(2) | (word(5) << 32n),
  };
}

/**
 * Sets the calling thread's effective, permitted and inheritable sets
 * (capset(2)). Lowering is always allowed. Raising fails with EPERM: the
 * permitted set can only shrink, the effective set must stay within the
 * permitted one, and the inheritable set may grow only within the bounding
 * set and, without CAP_SETPCAP in the effective set, the permitted set. The
 * kernel keeps the parent-death signal when the permitted set only shrinks.
 */
export function setCapabilities(sets: CapabilitySets): void {
  const header = Uint32Array.of(LINUX_CAPABILITY_VERSION_3, 0);
  const low = (value: bigint) => Number(value & 0xffffffffn);
  const high = (value: bigint) => Number((value >> 32n) & 0xffffffffn);
  const data = Uint32Array.of(
    low(sets.effective),
    low(sets.permitted),
    low(sets.inheritable),
    high(sets.effective),
    high(sets.permitted),
    high(sets.inheritable),
  );
  if (loadLibc().capset(header, data) === -1) {
    const errno = lastErrno();
    const hex = (value: bigint) => `0x${value.toString(16)}`;
    throw fail('capset', errno, `effective=${hex(sets.effective)} permitted=${hex(sets.permitted)} inheritable=${hex(sets.inheritable)}`);
  }
}

/**
 * Returns the calling thread's bounding set (prctl(PR_CAPBSET_READ) for
 * each capability up to the kernel's last, where the call fails with
 * EINVAL). It matches CapBnd in /proc/thread-self/status.
 */
export function readBoundingSet(): bigint {
  const libc = loadLibc();
  let bounding = 0n;
  for (let number = 0; number <= PROBE_LIMIT; number++) {
    const result = libc.prctl(PR_CAPBSET_READ, number);
    if (result === -1) {
      const errno = lastErrno();
      if (errno === EINVAL) return bounding;
      throw fail('prctl', errno, `PR_CAPBSET_READ ${describeCapability(number)}`);
    }
    if (result === 1) bounding |= 1n << BigInt(number);
  }
  return bounding;
}

/**
 * Removes every capability that `keep` lacks from the calling thread's
 * bounding set (prctl(PR_CAPBSET_DROP)), which no call can add back: the
 * thread and every process it starts keep the smaller set. Needs
 * CAP_SETPCAP in the effective set and throws EPERM without it. The
 * effective and permitted sets stay as they are.
 */
export function limitBoundingSet(keep: bigint): void {
  const libc = loadLibc();
  const drop = readBoundingSet() & ~keep;
  for (let number = 0; 1n << BigInt(number) <= drop; number++) {
    if (((drop >> BigInt(number)) & 1n) === 0n) continue;
    if (libc.prctl(PR_CAPBSET_DROP, number) === -1) {
      const errno = lastErrno();
      throw fail('prctl', errno, `PR_CAPBSET_DROP ${describeCapability(number)}`);
    }
  }
}

/** Empties the calling thread's ambient set (prctl(PR_CAP_AMBIENT_CLEAR_ALL), Linux 4.3). */
export function clearAmbientCapabilities(): void {
  if (loadLibc().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL) === -1) {
    const errno = lastErrno();
    throw fail('prctl', errno, 'PR_CAP_AMBIENT_CLEAR_ALL');
  }
}

/**
 * Limits the calling thread's effective and permitted sets to `keep` and
 * empties its inheritable and ambient sets, as docker 20.10.14 and later
 * do for a container's process. Capabilities the thread does not have
 * stay out: this never raises a set.
 */
export function limitCapabilities(keep: bigint): void {
  const current = getCapabilities();
  setCapabilities({ effective: current.effective & keep, permitted: current.permitted & keep, inheritable: 0n });
  clearAmbientCapabilities();
}
