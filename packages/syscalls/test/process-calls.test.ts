import { spawn } from 'node:child_process';
import { mkdirSync, readlinkSync, realpathSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import {
  clearCloseOnExec,
  close,
  FD_CLOEXEC,
  getcwd,
  getDescriptorFlags,
  getDumpable,
  O_RDONLY,
  openFile,
  pidfdOpen,
  SyscallError,
  setCloseOnExecFrom,
  setDumpable,
} from '../src/index.js';
import { cleanUp, makeTempDir, track, waitForExit } from './helpers.js';

// These calls need no privileges, and run in this test process, so they
// test the koffi backend. spawn-in-container.test.ts runs them in fixtures
// under both runtimes.

const originalCwd = process.cwd();

function catchSyscallError(call: () => unknown): SyscallError {
  try {
    call();
  } catch (error) {
    if (SyscallError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a SyscallError');
}

describe('pidfdOpen', () => {
  afterEach(cleanUp);

  it('pidfdOpen gives a close-on-exec descriptor', () => {
    const fd = pidfdOpen(process.pid);

    try {
      expect(fd).toBeGreaterThan(2);
      expect(getDescriptorFlags(fd) & FD_CLOEXEC).toBe(FD_CLOEXEC);
      expect(readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/^anon_inode:\[pidfd\]$|^pidfd:/);
    } finally {
      close(fd);
    }
  });

  it('pidfdOpen of a reaped child throws ESRCH', async () => {
    const child = track(spawn('/bin/true', [], { stdio: 'ignore' }));
    const pid = child.pid ?? -1;
    await waitForExit(child);

    const error = catchSyscallError(() => pidfdOpen(pid));

    expect(error.syscall).toBe('pidfd_open');
    expect(error.code).toBe('ESRCH');
    expect(error.errno).toBe(3);
    expect(error.message).toBe(`pidfd_open pid=${pid}: ESRCH (no such process)`);
  });

  it('pidfdOpen of a negative pid throws EINVAL', () => {
    const error = catchSyscallError(() => pidfdOpen(-1));

    expect(error.code).toBe('EINVAL');
    expect(error.message).toBe('pidfd_open pid=-1: EINVAL (invalid argument)');
  });
});

describe('dumpable flag', () => {
  it('setDumpable switches the flag off and on', () => {
    expect(getDumpable()).toBe(1);

    try {
      setDumpable(false);
      expect(getDumpable()).toBe(0);
    } finally {
      setDumpable(true);
    }
    expect(getDumpable()).toBe(1);
  });
});

describe('getcwd', () => {
  afterEach(async () => {
    process.chdir(originalCwd);
    await cleanUp();
  });

  it('getcwd returns the thread working directory', () => {
    const dir = realpathSync(makeTempDir());
    process.chdir(dir);

    expect(getcwd()).toBe(dir);
    expect(getcwd()).toBe(readlinkSync('/proc/thread-self/cwd'));
  });

  it('getcwd of a removed directory throws ENOENT', () => {
    const dir = join(realpathSync(makeTempDir()), 'removed');
    mkdirSync(dir);
    process.chdir(dir);
    rmdirSync(dir);

    const error = catchSyscallError(() => getcwd());

    expect(error.syscall).toBe('getcwd');
    expect(error.code).toBe('ENOENT');
    expect(error.message).toBe('getcwd: ENOENT (no such file or directory)');
  });
});

describe('setCloseOnExecFrom', () => {
  it('setCloseOnExecFrom marks descriptors from first up', () => {
    const below = openFile('/dev/null', O_RDONLY);
    const from = openFile('/dev/null', O_RDONLY);
    clearCloseOnExec(below);
    clearCloseOnExec(from);

    try {
      setCloseOnExecFrom(from);

      expect(getDescriptorFlags(below) & FD_CLOEXEC).toBe(0);
      expect(getDescriptorFlags(from) & FD_CLOEXEC).toBe(FD_CLOEXEC);
    } finally {
      close(below);
      close(from);
    }
  });
});
