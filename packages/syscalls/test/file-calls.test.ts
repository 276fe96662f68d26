import { readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { makedev, S_IFCHR, S_IFIFO } from '../src/index.js';
import { type CallResult, cleanUp, isRoot, makeTempDir, runCalls } from './helpers.js';

afterEach(cleanUp);

const S_IFMT = 0o170000;

function value(result: CallResult | undefined): unknown {
  if (result === undefined) throw new Error('missing call result');
  if ('error' in result) throw new Error(`${result.call} failed: ${JSON.stringify(result.error)}`);
  return result.value;
}

describe('makedev', () => {
  // Values from glibc's makedev(3) on x86_64 and aarch64.
  it.each([
    [0, 0, 0n],
    [1, 3, 0x103n],
    [5, 2, 0x502n],
    [136, 300, 0x10882cn],
    [4096, 1, 0x100000000001n],
  ])('makedev(%i, %i)', (major, minor, expected) => {
    expect(makedev(major, minor)).toBe(expected);
  });
});

describe('file calls in a fixture process', () => {
  it('mkdir creates a directory with the mode', async () => {
    const dir = join(makeTempDir(), 'made');
    const [made] = await runCalls([], [['createDirectory', dir, 0o700]]);
    value(made);
    expect(statSync(dir).isDirectory()).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('mkdir of an existing path fails with EEXIST', async () => {
    const dir = makeTempDir();
    const [made] = await runCalls([], [['createDirectory', dir]]);
    expect(made).toMatchObject({ error: { isSyscallError: true, syscall: 'mkdir', code: 'EEXIST', path: dir } });
  });

  it('symlink stores the target as given', async () => {
    const link = join(makeTempDir(), 'link');
    const [created, read] = await runCalls([], [
      ['symlink', '/does/not/exist', link],
      ['readlink', link],
    ]);
    value(created);
    expect(readlinkSync(link)).toBe('/does/not/exist');
    expect(value(read)).toBe('/does/not/exist');
  });

  it('readlink of a regular directory returns undefined', async () => {
    const [read] = await runCalls([], [['readlink', makeTempDir()]]);
    expect(value(read)).toBeNull();
  });

  it('readlink of a missing path fails with ENOENT', async () => {
    const missing = join(makeTempDir(), 'missing');
    const [read] = await runCalls([], [['readlink', missing]]);
    expect(read).toMatchObject({ error: { syscall: 'readlink', code: 'ENOENT', path: missing } });
  });

  it('chmod sets bits the umask would clear', async () => {
    const dir = join(makeTempDir(), 'made');
    const [made, changed] = await runCalls([], [
      ['createDirectory', dir, 0o777],
      ['chmod', dir, 0o1777],
    ]);
    value(made);
    value(changed);
    expect(statSync(dir).mode & 0o7777).toBe(0o1777);
  });

  it('chmod of a missing path fails with ENOENT', async () => {
    const missing = join(makeTempDir(), 'missing');
    const [changed] = await runCalls([], [['chmod', missing, 0o644]]);
    expect(changed).toMatchObject({ error: { syscall: 'chmod', code: 'ENOENT', path: missing } });
  });

  it('mknod creates a FIFO', async () => {
    const fifo = join(makeTempDir(), 'fifo');
    const [created, stats] = await runCalls([], [
      ['mknod', fifo, S_IFIFO | 0o600],
      ['lstat', fifo],
    ]);
    value(created);
    expect((value(stats) as { mode: number }).mode & S_IFMT).toBe(S_IFIFO);
  });
});

describe.skipIf(!isRoot)('calls that need root', () => {
  it('mknod creates a character device with its numbers', async () => {
    const device = join(makeTempDir(), 'null');
    const [created, stats] = await runCalls([], [
      ['mknod', device, S_IFCHR | 0o666, 1, 3],
      ['lstat', device],
    ]);
    value(created);
    const { mode, rdev } = value(stats) as { mode: number; rdev: number };
    expect(mode & S_IFMT).toBe(S_IFCHR);
    expect(mode & 0o777 & ~process.umask()).toBe(0o666 & ~process.umask());
    expect(rdev).toBe(Number(makedev(1, 3)));
  });

  it('switchUser sets uid, gid and groups', async () => {
    const [switched, credentials] = await runCalls([], [
      ['switchUser', 1000, 1001, [2000, 2001]],
      ['credentials'],
    ]);
    value(switched);
    expect(value(credentials)).toEqual({ uid: '1000\t1000\t1000\t1000', gid: '1001\t1001\t1001\t1001', groups: '2000 2001' });
  });

  it('switchUser with no groups clears them', async () => {
    const [switched, credentials] = await runCalls([], [['switchUser', 0, 0, []], ['credentials']]);
    value(switched);
    expect((value(credentials) as { groups: string }).groups).toBe('');
  });

  it('switchUser fails once privileges are gone', async () => {
    const [, again] = await runCalls([], [
      ['switchUser', 1000, 1000, []],
      ['switchUser', 0, 0, []],
    ]);
    expect(again).toMatchObject({ error: { isSyscallError: true, syscall: 'setgroups', code: 'EPERM' } });
  });
});
