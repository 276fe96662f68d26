import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { ENODATA, lgetxattr, lsetxattr, SyscallError, XATTR_CREATE } from '../src/index.js';
import { type CallResult, cleanUp, isRoot, makeTempDir, runCalls } from './helpers.js';

afterEach(cleanUp);

// Bytes that are not valid UTF-8 (0x80, 0xff) and a NUL, as in a binary
// security.capability value.
const BINARY_HEX = '0100000280ff0000000000000000000000000000';

function value(result: CallResult | undefined): unknown {
  if (result === undefined) throw new Error('missing call result');
  if ('error' in result) throw new Error(`${result.call} failed: ${JSON.stringify(result.error)}`);
  return result.value;
}

function newFile(): string {
  const file = join(makeTempDir(), 'file');
  writeFileSync(file, '');
  return file;
}

describe('xattr calls in a fixture process', () => {
  it('lsetxattr then lgetxattr returns binary bytes', async () => {
    const file = newFile();
    const [set, read] = await runCalls([], [
      ['lsetxattr', file, 'user.binary', BINARY_HEX],
      ['lgetxattr', file, 'user.binary'],
    ]);
    value(set);
    expect(value(read)).toBe(BINARY_HEX);
  });

  it('lgetxattr reads a value the test process set', async () => {
    const file = newFile();
    lsetxattr(file, 'user.comment', 'from vitest');
    const [read] = await runCalls([], [['lgetxattr', file, 'user.comment']]);
    expect(Buffer.from(value(read) as string, 'hex').toString('utf8')).toBe('from vitest');
  });

  it('lsetxattr with an empty value', async () => {
    const file = newFile();
    const [set, read] = await runCalls([], [
      ['lsetxattr', file, 'user.empty', ''],
      ['lgetxattr', file, 'user.empty'],
    ]);
    value(set);
    expect(value(read)).toBe('');
  });

  it('lgetxattr of an unset name fails with ENODATA', async () => {
    const file = newFile();
    const [read] = await runCalls([], [['lgetxattr', file, 'user.unset']]);
    expect(read).toMatchObject({
      error: { isSyscallError: true, syscall: 'lgetxattr', code: 'ENODATA', errno: ENODATA, path: file },
    });
  });

  it('lsetxattr with XATTR_CREATE on a set name fails with EEXIST', async () => {
    const file = newFile();
    const [first, second] = await runCalls([], [
      ['lsetxattr', file, 'user.once', '01', XATTR_CREATE],
      ['lsetxattr', file, 'user.once', '02', XATTR_CREATE],
    ]);
    value(first);
    expect(second).toMatchObject({ error: { syscall: 'lsetxattr', code: 'EEXIST', path: file } });
  });

  it('lsetxattr of a missing path fails with ENOENT', async () => {
    const missing = join(makeTempDir(), 'missing');
    const [set] = await runCalls([], [['lsetxattr', missing, 'user.x', '01']]);
    expect(set).toMatchObject({ error: { syscall: 'lsetxattr', code: 'ENOENT', path: missing } });
  });
});

describe('xattr calls in this process', () => {
  it('lgetxattr reads a 4000-byte value whole', () => {
    const file = newFile();
    const long = Buffer.alloc(4000, 0xab);
    lsetxattr(file, 'user.long', long);
    expect(lgetxattr(file, 'user.long').equals(long)).toBe(true);
  });

  it('lgetxattr error names the call, path and attribute', () => {
    const file = newFile();
    let caught: unknown;
    try {
      lgetxattr(file, 'user.unset');
    } catch (error) {
      caught = error;
    }
    expect(SyscallError.isInstance(caught)).toBe(true);
    expect((caught as SyscallError).message).toBe(`lgetxattr ${file} name=user.unset: ENODATA (no data available)`);
  });
});

describe.skipIf(!isRoot)('xattr calls on symbolic links (root only: trusted.* needs CAP_SYS_ADMIN)', () => {
  it('lsetxattr on a symlink sets the link, not its target', async () => {
    const dir = makeTempDir();
    const target = join(dir, 'target');
    const link = join(dir, 'link');
    writeFileSync(target, '');
    symlinkSync(target, link);

    const [set, onLink, onTarget] = await runCalls([], [
      ['lsetxattr', link, 'trusted.overlay.opaque', '79'],
      ['lgetxattr', link, 'trusted.overlay.opaque'],
      ['lgetxattr', target, 'trusted.overlay.opaque'],
    ]);

    value(set);
    expect(value(onLink)).toBe('79');
    expect(onTarget).toMatchObject({ error: { code: 'ENODATA', path: target } });
  });

  it('lsetxattr of user.* on a symlink fails with EPERM', async () => {
    const link = join(makeTempDir(), 'link');
    symlinkSync('/nowhere', link);
    const [set] = await runCalls([], [['lsetxattr', link, 'user.x', '01']]);
    expect(set).toMatchObject({ error: { syscall: 'lsetxattr', code: 'EPERM', path: link } });
  });
});
