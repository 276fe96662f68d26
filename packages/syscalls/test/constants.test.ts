import { constants as fsConstants } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { CLONE_NEWNS, CLONE_NEWPID, NAMESPACES, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, syscallNumber } from '../src/index.js';

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
    { name: 'setresuid', arch: 'x64', number: 117 },
    { name: 'setresgid', arch: 'x64', number: 119 },
    { name: 'setgroups', arch: 'x64', number: 116 },
    { name: 'setresuid', arch: 'arm64', number: 147 },
    { name: 'setresgid', arch: 'arm64', number: 149 },
    { name: 'setgroups', arch: 'arm64', number: 159 },
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

// Node's fs.constants come from the C headers of the machine it was built
// for, so they hold the right values for this CPU.
describe('open flags', () => {
  it('open flags match the platform headers', () => {
    expect(O_DIRECTORY).toBe(fsConstants.O_DIRECTORY);
    expect(O_NOFOLLOW).toBe(fsConstants.O_NOFOLLOW);
    expect(O_CREAT).toBe(fsConstants.O_CREAT);
    expect(O_EXCL).toBe(fsConstants.O_EXCL);
  });
});
