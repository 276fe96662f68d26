import { scriptCommand } from '@m-docker/runtime';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  chdir,
  chroot,
  clearCloseOnExec,
  clearNonBlocking,
  execve,
  FD_CLOEXEC,
  fchdir,
  getDescriptorFlags,
  getpid,
  getStatusFlags,
  O_NONBLOCK,
  SyscallError,
  setCloseOnExec,
  setns,
  setParentDeathSignal,
  unshare,
} from '../src/index.js';
import {
  type Call,
  type CallResult,
  cleanUp,
  isRoot,
  makeTempDir,
  runCalls,
  runFixture,
  startCalls,
  startFixture,
} from './helpers.js';

const MISSING = '/nonexistent-m-docker-syscalls-test';
// The access mode bits of the file status flags (<fcntl.h>), which node:fs does not export.
const O_ACCMODE = 0o3;
const LONG_HOSTNAME = 'h'.repeat(65);

interface ErrorCase {
  name: string;
  syscall: string;
  code: string;
  /** The message up to the colon, such as `chdir /missing`. */
  subject: string;
  path?: string;
}

/** The fields every SyscallError must have, as run-calls.mjs prints them. */
type ErrorFields = NonNullable<CallResult['error']>;

function fieldsOf(error: unknown): ErrorFields {
  if (!(error instanceof SyscallError)) throw new Error(`expected a SyscallError, got ${String(error)}`);
  return {
    name: error.name,
    isSyscallError: SyscallError.isInstance(error),
    syscall: error.syscall,
    code: error.code,
    errno: error.errno,
    path: error.path,
    message: error.message,
  };
}

function catchFields(call: () => unknown): ErrorFields {
  try {
    call();
  } catch (error) {
    return fieldsOf(error);
  }
  throw new Error('the call did not throw');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function expectSyscallError(actual: ErrorFields | undefined, expected: ErrorCase): void {
  expect(actual).toBeDefined();
  if (actual === undefined) return;
  expect(actual.name).toBe('SyscallError');
  expect(actual.isSyscallError).toBe(true);
  expect(actual.syscall).toBe(expected.syscall);
  expect(actual.code).toBe(expected.code);
  expect(actual.errno).toBe(osConstants.errno[expected.code as keyof typeof osConstants.errno]);
  expect(actual.path).toBe(expected.path);
  // The description in brackets is libuv's text for the code, such as
  // "no such file or directory", or glibc's where libuv has none.
  expect(actual.message).toMatch(new RegExp(`^${escapeRegExp(expected.subject)}: ${expected.code} \\([a-z][^()]+\\)$`));
}

describe('calls that fail in this process', () => {
  let dir = '';
  let file = '';
  let textProgram = '';
  let devNull = -1;

  beforeAll(() => {
    dir = makeTempDir();
    file = join(dir, 'regular-file');
    writeFileSync(file, '#!/bin/sh\necho should not run\n', { mode: 0o644 });
    textProgram = join(dir, 'text-program');
    writeFileSync(textProgram, 'neither ELF nor #! script\n', { mode: 0o755 });
    devNull = openSync('/dev/null', 'r');
  });

  afterAll(async () => {
    closeSync(devNull);
    await cleanUp();
  });

  // Cases read the paths and descriptor from beforeAll through closures and
  // getters, because the table is built before beforeAll runs.
  const cases: (ErrorCase & { call: () => unknown })[] = [
    {
      name: 'setns -1 gives EBADF',
      call: () => setns(-1),
      syscall: 'setns',
      code: 'EBADF',
      subject: 'setns fd=-1 nstype=0x0',
    },
    {
      name: 'setns on /dev/null gives EINVAL',
      call: () => setns(devNull),
      syscall: 'setns',
      code: 'EINVAL',
      get subject() {
        return `setns fd=${devNull} nstype=0x0`;
      },
    },
    {
      name: 'chdir to a missing path gives ENOENT',
      call: () => chdir(MISSING),
      syscall: 'chdir',
      code: 'ENOENT',
      path: MISSING,
      subject: `chdir ${MISSING}`,
    },
    {
      name: 'chdir to a file gives ENOTDIR',
      call: () => chdir(file),
      syscall: 'chdir',
      code: 'ENOTDIR',
      get path() {
        return file;
      },
      get subject() {
        return `chdir ${file}`;
      },
    },
    {
      name: 'fchdir -1 gives EBADF',
      call: () => fchdir(-1),
      syscall: 'fchdir',
      code: 'EBADF',
      subject: 'fchdir fd=-1',
    },
    {
      name: 'chroot to a missing path gives ENOENT',
      call: () => chroot(MISSING),
      syscall: 'chroot',
      code: 'ENOENT',
      path: MISSING,
      subject: `chroot ${MISSING}`,
    },
    // 0x1 is a CSIGNAL bit, which unshare(2) does not accept.
    {
      name: 'unshare 0x1 gives EINVAL',
      call: () => unshare(0x1),
      syscall: 'unshare',
      code: 'EINVAL',
      subject: 'unshare flags=0x1',
    },
    {
      name: 'execve of a missing file gives ENOENT',
      call: () => execve(MISSING, ['missing'], []),
      syscall: 'execve',
      code: 'ENOENT',
      path: MISSING,
      subject: `execve ${MISSING}`,
    },
    {
      name: 'execve of a directory gives EACCES',
      call: () => execve(dir, ['dir'], []),
      syscall: 'execve',
      code: 'EACCES',
      get path() {
        return dir;
      },
      get subject() {
        return `execve ${dir}`;
      },
    },
    // Even root needs an execute bit to run a file.
    {
      name: 'execve of a non-executable file gives EACCES',
      call: () => execve(file, ['file'], []),
      syscall: 'execve',
      code: 'EACCES',
      get path() {
        return file;
      },
      get subject() {
        return `execve ${file}`;
      },
    },
    // libuv has no description for ENOEXEC, so this one comes from strerror(3).
    {
      name: 'execve of an unknown format gives ENOEXEC',
      call: () => execve(textProgram, ['text-program'], []),
      syscall: 'execve',
      code: 'ENOEXEC',
      get path() {
        return textProgram;
      },
      get subject() {
        return `execve ${textProgram}`;
      },
    },
    {
      name: 'fcntl on -1 gives EBADF',
      call: () => getDescriptorFlags(-1),
      syscall: 'fcntl',
      code: 'EBADF',
      subject: 'fcntl fd=-1 cmd=1',
    },
    {
      name: 'prctl with signal 999 gives EINVAL',
      call: () => setParentDeathSignal(999),
      syscall: 'prctl',
      code: 'EINVAL',
      subject: 'prctl PR_SET_PDEATHSIG 999',
    },
  ];

  it.each(cases)('$name', (errorCase) => {
    expectSyscallError(catchFields(errorCase.call), errorCase);
  });
});

describe.skipIf(!isRoot)('calls that fail in a fixture namespace (root only: they unshare)', () => {
  afterEach(cleanUp);

  const missingTarget = `${MISSING}/target`;

  // Each case runs in a fresh fixture process. With 'mnt' the fixture makes
  // / private before the call, so nothing it does reaches the host. '<dir>'
  // in a case stands for a new empty temporary directory.
  const cases: (ErrorCase & { namespaces: string[]; call: Call })[] = [
    {
      name: 'mount onto a missing target gives ENOENT',
      namespaces: ['mnt'],
      call: ['mount', 'tmpfs', missingTarget, 'tmpfs', 0],
      syscall: 'mount',
      code: 'ENOENT',
      path: missingTarget,
      subject: `mount tmpfs on ${missingTarget}`,
    },
    {
      name: 'umount2 of a plain directory gives EINVAL',
      namespaces: ['mnt'],
      call: ['umount2', '<dir>'],
      syscall: 'umount2',
      code: 'EINVAL',
      path: '<dir>',
      subject: 'umount2 <dir> flags=0x0',
    },
    {
      name: 'sethostname of 65 bytes gives EINVAL',
      namespaces: ['uts'],
      call: ['sethostname', LONG_HOSTNAME],
      syscall: 'sethostname',
      code: 'EINVAL',
      subject: `sethostname "${LONG_HOSTNAME}"`,
    },
    {
      name: 'pivotRoot with missing paths gives ENOENT',
      namespaces: ['mnt'],
      call: ['pivotRoot', MISSING, `${MISSING}/old`],
      syscall: 'pivot_root',
      code: 'ENOENT',
      path: MISSING,
      subject: `pivot_root ${MISSING} put_old=${MISSING}/old`,
    },
    // pivot_root(2) rejects a new_root on the current root mount, so / itself gives EBUSY.
    {
      name: 'pivotRoot onto / gives EBUSY',
      namespaces: ['mnt'],
      call: ['pivotRoot', '/', '/'],
      syscall: 'pivot_root',
      code: 'EBUSY',
      path: '/',
      subject: 'pivot_root / put_old=/',
    },
  ];

  it.each(cases)('$name', async (errorCase) => {
    const dir = makeTempDir();
    const withDir = (text: string | undefined) => text?.replaceAll('<dir>', dir);
    const call = errorCase.call.map((arg) => (typeof arg === 'string' ? withDir(arg) : arg)) as Call;

    const [result] = await runCalls(errorCase.namespaces, [call]);

    expectSyscallError(result?.error, {
      ...errorCase,
      subject: withDir(errorCase.subject) ?? '',
      path: withDir(errorCase.path),
    });
  });
});

describe.skipIf(!isRoot)('sethostname (root only: unshares CLONE_NEWUTS)', () => {
  afterEach(cleanUp);

  it('sethostname changes only its UTS namespace', async () => {
    const hostBefore = hostname();
    const fixture = startCalls(['uts'], [['sethostname', 'm-docker-test'], ['hostname'], ['waitForInput']]);

    expect(await fixture.nextResult()).toEqual({ call: 'sethostname', value: null });
    expect(await fixture.nextResult()).toEqual({ call: 'hostname', value: 'm-docker-test' });
    expect(await fixture.nextResult()).toEqual({ call: 'waitForInput', value: 'waiting' });
    expect(hostname()).toBe(hostBefore);
    expect(readFileSync('/proc/sys/kernel/hostname', 'utf8')).toBe(`${hostBefore}\n`);

    fixture.resume();
    expect(await fixture.exited).toBe(0);
  });
});

describe('descriptor flags', () => {
  let fd = -1;

  // A FIFO opened read-write does not wait for a peer, and gives a pipe
  // descriptor. Node opens it with O_CLOEXEC, as it does every file.
  beforeAll(() => {
    const fifo = join(makeTempDir(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    fd = openSync(fifo, fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
  });

  afterAll(async () => {
    closeSync(fd);
    await cleanUp();
  });

  it('clearCloseOnExec clears FD_CLOEXEC', () => {
    expect(getDescriptorFlags(fd) & FD_CLOEXEC).toBe(FD_CLOEXEC);

    clearCloseOnExec(fd);

    expect(getDescriptorFlags(fd) & FD_CLOEXEC).toBe(0);
  });

  it('setCloseOnExec sets FD_CLOEXEC', () => {
    clearCloseOnExec(fd);

    setCloseOnExec(fd);

    expect(getDescriptorFlags(fd) & FD_CLOEXEC).toBe(FD_CLOEXEC);
  });

  it('clearNonBlocking clears only O_NONBLOCK', () => {
    const before = getStatusFlags(fd);
    expect(before & O_NONBLOCK).toBe(O_NONBLOCK);
    expect(before & O_ACCMODE).toBe(fsConstants.O_RDWR);

    clearNonBlocking(fd);

    expect(getStatusFlags(fd)).toBe(before & ~O_NONBLOCK);
  });

  it('clearNonBlocking twice changes nothing', () => {
    clearNonBlocking(fd);
    const before = getStatusFlags(fd);

    clearNonBlocking(fd);

    expect(getStatusFlags(fd)).toBe(before);
  });
});

describe('resetSignals', () => {
  afterEach(cleanUp);

  // Node ignores SIGPIPE (13) and SIGXFSZ (25): bits 12 and 24 of SigIgn.
  it('resetSignals clears the ignored signals', async () => {
    const result = await runFixture('reset-signals.mjs');
    const { before, after } = JSON.parse(result.stdout);

    expect(result.stderr).toBe('');
    expect(BigInt(`0x${before.ignored}`) & 0x1001000n).toBe(0x1001000n);
    expect(BigInt(`0x${after.ignored}`)).toBe(0n);
    expect(BigInt(`0x${after.blocked}`)).toBe(0n);
  });

  // yes exits with 141 (128 + SIGPIPE) when the signal kills it, and with 1
  // after a failed write when the signal is ignored.
  it.each([
    { signals: 'reset', stderr: /^yes exited with 141\n$/ },
    { signals: 'keep', stderr: /^yes: .*Broken pipe\nyes exited with 1\n$/ },
  ])('resetSignals lets SIGPIPE end a pipeline ($signals)', async ({ signals, stderr }) => {
    const result = await runFixture('exec-pipeline.mjs', [signals]);

    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(stderr);
    expect(result.status).toBe(0);
  });
});

describe('getpid', () => {
  it('getpid equals process.pid', () => {
    expect(getpid()).toBe(process.pid);
  });
});

describe('execve', () => {
  afterEach(cleanUp);

  // Node marks fds 0-2 close-on-exec, so without clearCloseOnExec echo finds
  // stdout and stderr closed, prints nothing and fails. Bun leaves them open.
  const fixtureRuntime = scriptCommand('exec-echo.mjs').runtime;
  it.each([
    { flags: 'clear', stdout: 'hello\n', status: 0 },
    fixtureRuntime === 'node' ? { flags: 'keep', stdout: '', status: 1 } : { flags: 'keep', stdout: 'hello\n', status: 0 },
  ])('execve of echo with $flags fd 1 flags', async ({ flags, stdout, status }) => {
    const result = await runFixture('exec-echo.mjs', [flags]);

    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(stdout);
    expect(result.status).toBe(status);
  });
});

describe('closeFrom', () => {
  afterEach(cleanUp);

  it('closeFrom 3 leaves only stdio open', async () => {
    const result = await runFixture('close-from.mjs', ['three']);
    const report = JSON.parse(result.stdout);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    // 3 is the descriptor readdirSync listed /proc/self/fd through.
    expect(report.listed).toEqual(['0', '1', '2', '3']);
  });

  it('closeFrom keeps descriptors below the first', async () => {
    const result = await runFixture('close-from.mjs', ['second']);
    const report = JSON.parse(result.stdout);
    const listed = report.listed.map(Number);
    const [kept, first, third] = report.opened;

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(report.first).toBe(first);
    expect(listed).toContain(kept);
    expect(listed).not.toContain(third);
    // Above the first closed one, at most readdirSync's own descriptor remains.
    expect(listed.filter((fd: number) => fd >= first).length).toBeLessThanOrEqual(1);
  });
});

describe('setParentDeathSignal', () => {
  // The grandchild is not a child of this process, so cleanUp does not know it.
  let grandchild: { pid: number; command: string } | undefined;

  afterEach(async () => {
    if (grandchild && isRunning(grandchild.pid, grandchild.command)) {
      process.kill(grandchild.pid, 'SIGKILL');
    }
    grandchild = undefined;
    await cleanUp();
  });

  it('setParentDeathSignal stores the signal', async () => {
    const results = await runCalls([], [['setParentDeathSignal', osConstants.signals.SIGTERM], ['parentDeathSignal']]);

    expect(results).toEqual([
      { call: 'setParentDeathSignal', value: null },
      { call: 'parentDeathSignal', value: osConstants.signals.SIGTERM },
    ]);
  });

  it('setParentDeathSignal kills the orphaned child', async () => {
    const parent = startFixture('parent-death-parent.mjs');
    const { childPid, childLine } = await readFirstJsonLine(parent);
    expect(childLine).toBe('ready');
    grandchild = { pid: childPid, command: readCommandLine(childPid) };
    expect(grandchild.command).toContain('parent-death-child.mjs');

    parent.kill('SIGKILL');

    const childExited = await waitUntil(() => !isRunning(childPid, grandchild?.command ?? ''), 20_000);
    expect(childExited).toBe(true);
  });
});

// A process counts as running while /proc/PID/cmdline still shows the
// command it was started with. A zombie has an empty cmdline.
function isRunning(pid: number, command: string): boolean {
  return readCommandLine(pid) === command;
}

function readCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

// Polls `condition` until it holds or `limitMs` has passed. The limit only
// ends a test that would otherwise hang, and no assertion depends on speed.
async function waitUntil(condition: () => boolean, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}

async function readFirstJsonLine(child: ReturnType<typeof startFixture>) {
  const stdout = child.stdout;
  if (!stdout) throw new Error('fixture has no stdout pipe');
  let buffered = '';
  for await (const chunk of stdout.setEncoding('utf8')) {
    buffered += chunk;
    const end = buffered.indexOf('\n');
    if (end >= 0) return JSON.parse(buffered.slice(0, end));
  }
  throw new Error('fixture ended before printing a line');
}
