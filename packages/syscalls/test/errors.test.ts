import { describe, expect, it } from 'vitest';

import { errnoName, loadLibc, SyscallError } from '../src/index.js';

describe('errnoName', () => {
  it.each([
    { errno: 1, name: 'EPERM' },
    { errno: 2, name: 'ENOENT' },
    { errno: 9, name: 'EBADF' },
    { errno: 22, name: 'EINVAL' },
    { errno: 38, name: 'ENOSYS' },
    { errno: 8, name: 'ENOEXEC' },
    // EAGAIN and EWOULDBLOCK share 11 on Linux, and errnoName returns the first.
    { errno: 11, name: 'EAGAIN' },
  ])('errnoName $errno is $name', ({ errno, name }) => {
    expect(errnoName(errno)).toBe(name);
  });

  it('errnoName names unknown numbers', () => {
    expect(errnoName(99999)).toBe('errno 99999');
  });
});

describe('SyscallError', () => {
  it('SyscallError message joins syscall, path and args', () => {
    const error = new SyscallError({ syscall: 'umount2', errno: 22, code: 'EINVAL', path: '/mnt', args: 'flags=0x2' });

    expect(error.message).toBe('umount2 /mnt flags=0x2: EINVAL (invalid argument)');
    expect(error.name).toBe('SyscallError');
    expect(error.syscall).toBe('umount2');
    expect(error.errno).toBe(22);
    expect(error.code).toBe('EINVAL');
    expect(error.path).toBe('/mnt');
    expect(error.args).toBe('flags=0x2');
  });

  it('SyscallError message starts with the given subject', () => {
    const error = new SyscallError({ syscall: 'mount', errno: 1, code: 'EPERM', path: '/proc' }, 'mount proc on /proc');

    expect(error.message).toBe('mount proc on /proc: EPERM (operation not permitted)');
    expect(error.path).toBe('/proc');
  });

  // libuv's table has no ECHILD, so the text comes from glibc's strerror(3)
  // once loadLibc has run, lowercased like libuv's.
  it('SyscallError describes errno values libuv lacks', () => {
    loadLibc('linux');

    const error = new SyscallError({ syscall: 'waitpid', errno: 10, code: 'ECHILD' });

    expect(error.message).toBe('waitpid: ECHILD (no child processes)');
  });

  it('SyscallError keeps the cause', () => {
    const cause = new Error('open failed');

    const error = new SyscallError({ syscall: 'open', errno: 2, code: 'ENOENT' }, undefined, { cause });

    expect(error.cause).toBe(cause);
    expect(error.path).toBeUndefined();
    expect(error.args).toBeUndefined();
    expect(error.message).toBe('open: ENOENT (no such file or directory)');
  });

  it('SyscallError isInstance checks the brand', () => {
    const error = new SyscallError({ syscall: 'chdir', errno: 2, code: 'ENOENT' });
    const lookalike = Object.assign(new Error('chdir: ENOENT'), { syscall: 'chdir', errno: 2, code: 'ENOENT' });

    expect(SyscallError.isInstance(error)).toBe(true);
    expect(SyscallError.isInstance(lookalike)).toBe(false);
    expect(SyscallError.isInstance(null)).toBe(false);
    expect(SyscallError.isInstance('SyscallError')).toBe(false);
  });
});

describe('loadLibc', () => {
  it.each(['darwin', 'win32', 'freebsd'] as const)('loadLibc on %s throws ENOSYS', (platform) => {
    let thrown: unknown;
    try {
      loadLibc(platform);
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(SyscallError);
    const error = thrown as SyscallError;
    expect(error.code).toBe('ENOSYS');
    expect(error.errno).toBe(0);
    expect(error.syscall).toBe('dlopen');
    expect(error.message).toBe(
      `m-docker needs Linux namespaces, but this platform is ${platform}: ENOSYS (not supported on this platform)`,
    );
  });

  it('loadLibc caches the bindings', () => {
    const first = loadLibc('linux');

    expect(loadLibc('linux')).toBe(first);
    expect(first.getpid()).toBe(process.pid);
  });
});
