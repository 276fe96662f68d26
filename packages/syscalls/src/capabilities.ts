// Linux capabilities by name and number, from <linux/capability.h> of
// Linux 6.18 (CAP_LAST_CAP is CAP_CHECKPOINT_RESTORE, 40). The numbers are
// the same on every architecture. A capability set is a bigint whose bit N
// stands for capability N, as in the CapEff, CapPrm, CapInh, CapBnd and
// CapAmb fields of /proc/PID/status.

/** Every capability of Linux 6.18, by its name in capabilities(7). */
export const CAPABILITIES = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
} as const;

export type CapabilityName = keyof typeof CAPABILITIES;

const NAMES_BY_NUMBER = new Map<number, CapabilityName>(
  Object.entries(CAPABILITIES).map(([name, number]) => [number, name as CapabilityName]),
);

/** Returns whether `name` is a capability of CAPABILITIES, such as `CAP_NET_ADMIN`. */
export function isCapabilityName(name: string): name is CapabilityName {
  return Object.hasOwn(CAPABILITIES, name);
}

/** Returns the set with the bits of `names` set. */
export function capabilityMask(names: Iterable<CapabilityName>): bigint {
  let mask = 0n;
  for (const name of names) mask |= 1n << BigInt(CAPABILITIES[name]);
  return mask;
}

/** Returns the names of the capabilities in `mask`, in the order of their numbers. Bits without a name are left out. */
export function capabilityNames(mask: bigint): CapabilityName[] {
  const names: CapabilityName[] = [];
  for (let number = 0; 1n << BigInt(number) <= mask; number++) {
    const name = NAMES_BY_NUMBER.get(number);
    if (name !== undefined && (mask >> BigInt(number)) & 1n) names.push(name);
  }
  return names;
}
