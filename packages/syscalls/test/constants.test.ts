import { describe, expect, it } from 'vitest';

import { CLONE_NEWNS, CLONE_NEWPID, NAMESPACES, syscallNumber } from '../src/index.js';

describe('syscallNumber', () => {
  // Numbers from the kernel's syscall tables: arch/x86/entry/syscalls/syscall_64.tbl
  // and include/uapi/asm-generic/unistd.h, which arm64 uses.
  it.each([
    { name: 'pivot_root', arch: 'x64', number: 155 },
    { name: 'close_range', arch: 'x64', number: 436 },
    { name: 'pivot_root', arch: 'arm64', number: 41 },
    { name: 'close_range', arch: 'arm64', number: 436 },
    { name: 'pidfd_open', arch: 'x64', number: 434 },
    { name: 'pidfd_open', arch: 'arm64', number: 434 },
  ] as const)('syscallNumber of $name on $arch is $number', ({ name, arch, number }) => {
    expect(syscallNumber(name, arch)).toBe(number);
  });

  it.each(['ia32', 'riscv64', 's390x'])('syscallNumber on %s is undefined', (arch) => {
    expect(syscallNumber('pivot_root', arch)).toBeUndefined();
  });
});

describe('NAMESPACES', () => {
  it('NAMESPACES pid restores through pid_for_children', () => {
    expect(NAMESPACES.pid).toEqual({ flag: CLONE_NEWPID, procName: 'pid_for_children' });
    expect(NAMESPACES.mnt).toEqual({ flag: CLONE_NEWNS, procName: 'mnt' });
  });
});
