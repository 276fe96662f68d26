import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { lgetxattr, makedev } from '@m-docker/syscalls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ImageError, type UnpackedLayer, type UnpackLayerOptions, unpackLayer } from '../src/index.js';
import {
  END_OF_ARCHIVE,
  type LayerDirs,
  MTIME,
  makeLayerDirs,
  type PackMember,
  packTar,
  padded,
  paxHeader,
  rawHeader,
  rawMember,
  removeLayerDirs,
} from './layer-tars.js';

const isRoot = process.getuid?.() === 0;
const LABEL = 'test-layer';
const PREFIX = `layer "${LABEL}"`;

// A version 2 security.capability value (linux/capability.h): magic
// 0x02000001 (revision 2, effective), permitted = CAP_SETUID (bit 7, the
// byte 0x80, which is not valid UTF-8), inheritable = 0.
const CAP_SETUID_V2 = Buffer.from('0100000280000000000000000000000000000000', 'hex');

let dirs: LayerDirs;

beforeEach(() => {
  dirs = makeLayerDirs();
});

afterEach(() => {
  removeLayerDirs(dirs);
});

function at(path: string): string {
  return join(dirs.target, path);
}

function unpackBytes(bytes: Buffer | readonly Buffer[], options: UnpackLayerOptions = {}): Promise<UnpackedLayer> {
  const chunks = Buffer.isBuffer(bytes) ? [bytes] : bytes;
  return unpackLayer(Readable.from(chunks), dirs.target, { label: LABEL, ...options });
}

async function unpackMembers(members: readonly PackMember[]): Promise<UnpackedLayer> {
  return unpackBytes(await packTar(members));
}

/** Returns the rejection of `promise`, failing the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected unpackLayer to reject, but it resolved');
}

async function imageErrorOf(promise: Promise<unknown>): Promise<ImageError> {
  const error = await rejectionOf(promise);
  if (!ImageError.isInstance(error)) throw new Error(`expected an ImageError, got ${String(error)}`);
  return error;
}

function xattrOrCode(path: string, name: string): Buffer | string {
  try {
    return lgetxattr(path, name);
  } catch (error) {
    return (error as { code: string }).code;
  }
}

// Yields to the event loop until `path` exists; the test's timeout ends a
// wait for a path that never comes.
async function waitForPath(path: string): Promise<void> {
  while (!existsSync(path)) await new Promise((resolve) => setImmediate(resolve));
}

function expectSentinelUntouched(): void {
  expect(readdirSync(dirs.sentinel)).toEqual(['file']);
  expect(readFileSync(join(dirs.sentinel, 'file'), 'utf8')).toBe('sentinel\n');
  expect(lstatSync(join(dirs.sentinel, 'file')).isFile()).toBe(true);
  expect(xattrOrCode(dirs.sentinel, 'trusted.overlay.opaque')).toBe('ENODATA');
}

describe.skipIf(!isRoot)('unpackLayer metadata (root only: it sets owners and creates devices)', () => {
  it('regular file content, owner and mode', async () => {
    await unpackMembers([{ name: 'etc/passwd', content: 'root\n', uid: 1234, gid: 5678, mode: 0o640 }]);

    const stats = lstatSync(at('etc/passwd'));
    expect(readFileSync(at('etc/passwd'), 'utf8')).toBe('root\n');
    expect(stats.uid).toBe(1234);
    expect(stats.gid).toBe(5678);
    expect(stats.mode & 0o7777).toBe(0o640);
    expect(stats.mtimeMs).toBe(MTIME.getTime());
  });

  // chown(2) clears setuid and setgid even for root, so these pass only
  // when the mode is set after the owner.
  it.each([
    ['setuid file', 'file', 0o4755],
    ['setgid file', 'file', 0o2755],
    ['setuid and setgid file', 'file', 0o6711],
    ['sticky directory', 'directory', 0o1777],
    ['setgid directory', 'directory', 0o2775],
  ] as const)('mode of %s', async (_name, type, mode) => {
    await unpackMembers([{ name: 'entry', type, mode, uid: 1000, gid: 1000, ...(type === 'file' ? { content: '#!/bin/sh\n' } : {}) }]);

    const stats = lstatSync(at('entry'));
    expect(stats.mode & 0o7777).toBe(mode);
    expect(stats.uid).toBe(1000);
  });

  it('pax uid, gid and fractional times', async () => {
    await unpackMembers([
      {
        name: 'big-ids',
        content: 'x',
        pax: { uid: '3000000', gid: '4000000', mtime: '1700000000.25', atime: '1600000000.5' },
      },
    ]);

    const stats = lstatSync(at('big-ids'));
    expect(stats.uid).toBe(3_000_000);
    expect(stats.gid).toBe(4_000_000);
    expect(stats.mtimeMs).toBe(1_700_000_000_250);
    expect(stats.atimeMs).toBe(1_600_000_000_500);
  });

  it('directory metadata set after its content', async () => {
    await unpackMembers([
      { name: 'd/', type: 'directory', mode: 0o555, uid: 42, gid: 43 },
      { name: 'd/a', content: 'a' },
      { name: 'd/sub/b', content: 'b' },
    ]);

    const stats = lstatSync(at('d'));
    expect(stats.mode & 0o7777).toBe(0o555);
    expect(stats.uid).toBe(42);
    expect(stats.gid).toBe(43);
    expect(stats.mtimeMs).toBe(MTIME.getTime());
    expect(readFileSync(at('d/sub/b'), 'utf8')).toBe('b');
  });

  it('implied parent directory gets mode 0755', async () => {
    await unpackMembers([{ name: 'usr/lib/file', content: '' }]);

    expect(lstatSync(at('usr')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(at('usr/lib')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(at('usr/lib')).uid).toBe(0);
  });

  it('symlink keeps its target, owner and mtime', async () => {
    await unpackMembers([
      { name: 'usr/bin/awk', type: 'symlink', linkname: '/etc/alternatives/awk', uid: 7, gid: 8 },
      { name: 'usr/lib/relative', type: 'symlink', linkname: '../../missing/./x' },
    ]);

    const stats = lstatSync(at('usr/bin/awk'));
    expect(stats.isSymbolicLink()).toBe(true);
    expect(readlinkSync(at('usr/bin/awk'))).toBe('/etc/alternatives/awk');
    expect(stats.uid).toBe(7);
    expect(stats.gid).toBe(8);
    expect(stats.mtimeMs).toBe(MTIME.getTime());
    expect(readlinkSync(at('usr/lib/relative'))).toBe('../../missing/./x');
  });

  it('hard links share the inode', async () => {
    await unpackMembers([
      { name: 'bin/a', content: 'program', mode: 0o755 },
      { name: 'bin/b', type: 'link', linkname: 'bin/a' },
      { name: './bin/c', type: 'link', linkname: './bin/a' },
    ]);

    const original = lstatSync(at('bin/a'));
    expect(lstatSync(at('bin/b')).ino).toBe(original.ino);
    expect(lstatSync(at('bin/c')).ino).toBe(original.ino);
    expect(original.nlink).toBe(3);
  });

  it('hard link to a symlink links the symlink itself', async () => {
    await unpackMembers([
      { name: 'link', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'second', type: 'link', linkname: 'link' },
    ]);

    expect(lstatSync(at('second')).isSymbolicLink()).toBe(true);
    expect(lstatSync(at('second')).ino).toBe(lstatSync(at('link')).ino);
  });

  it('character device, block device and FIFO', async () => {
    await unpackMembers([
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop0', type: 'block-device', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
      { name: 'run/fifo', type: 'fifo', mode: 0o620, uid: 5 },
    ]);

    const nullDevice = lstatSync(at('dev/null'));
    expect(nullDevice.isCharacterDevice()).toBe(true);
    expect(nullDevice.rdev).toBe(Number(makedev(1, 3)));
    expect(nullDevice.mode & 0o7777).toBe(0o666);

    const loop = lstatSync(at('dev/loop0'));
    expect(loop.isBlockDevice()).toBe(true);
    expect(loop.rdev).toBe(Number(makedev(7, 0)));
    expect(loop.gid).toBe(6);

    const fifo = lstatSync(at('run/fifo'));
    expect(fifo.isFIFO()).toBe(true);
    expect(fifo.mode & 0o7777).toBe(0o620);
    expect(fifo.uid).toBe(5);
    expect(fifo.mtimeMs).toBe(MTIME.getTime());
  });

  it('xattrs from pax headers on a file, directory and symlink', async () => {
    await unpackMembers([
      { name: 'dir/', type: 'directory', pax: { 'SCHILY.xattr.trusted.example': 'on-dir' } },
      { name: 'dir/file', content: 'x', pax: { 'SCHILY.xattr.user.comment': 'hello', 'SCHILY.xattr.user.empty': '' } },
      { name: 'dir/link', type: 'symlink', linkname: 'file', pax: { 'SCHILY.xattr.trusted.link': 'on-link' } },
    ]);

    expect(xattrOrCode(at('dir'), 'trusted.example')).toEqual(Buffer.from('on-dir'));
    expect(xattrOrCode(at('dir/file'), 'user.comment')).toEqual(Buffer.from('hello'));
    expect(xattrOrCode(at('dir/file'), 'user.empty')).toEqual(Buffer.alloc(0));
    expect(xattrOrCode(at('dir/link'), 'trusted.link')).toEqual(Buffer.from('on-link'));
    expect(xattrOrCode(at('dir/file'), 'trusted.link')).toBe('ENODATA');
  });

  it('overlay xattrs of a layer are dropped', async () => {
    await unpackMembers([
      {
        name: 'redirected/',
        type: 'directory',
        pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc', 'SCHILY.xattr.user.kept': 'yes' },
      },
    ]);

    expect(xattrOrCode(at('redirected'), 'trusted.overlay.redirect')).toBe('ENODATA');
    expect(xattrOrCode(at('redirected'), 'user.kept')).toEqual(Buffer.from('yes'));
  });

  it('binary security.capability survives the owner change', async () => {
    const bytes = Buffer.concat([
      paxHeader([
        ['SCHILY.xattr.security.capability', CAP_SETUID_V2],
        ['SCHILY.xattr.user.raw', Buffer.from([0xff, 0x00, 0xfe])],
      ]),
      rawMember({ name: 'bin/newuidmap', type: '0', mode: 0o755, uid: 0, gid: 0 }, Buffer.from('ELF')),
      END_OF_ARCHIVE,
    ]);

    await unpackBytes(bytes);

    expect(xattrOrCode(at('bin/newuidmap'), 'security.capability')).toEqual(CAP_SETUID_V2);
    expect(xattrOrCode(at('bin/newuidmap'), 'user.raw')).toEqual(Buffer.from([0xff, 0x00, 0xfe]));
  });

  it('root directory member sets the target metadata', async () => {
    await unpackMembers([
      { name: './', type: 'directory', mode: 0o750, uid: 3 },
      { name: './etc/hosts', content: 'localhost\n' },
    ]);

    const stats = lstatSync(dirs.target);
    expect(stats.mode & 0o7777).toBe(0o750);
    expect(stats.uid).toBe(3);
    expect(stats.mtimeMs).toBe(MTIME.getTime());
    expect(readFileSync(at('etc/hosts'), 'utf8')).toBe('localhost\n');
  });

  it('contiguous file is a regular file', async () => {
    await unpackMembers([{ name: 'contiguous', type: 'contiguous-file', content: 'data' }]);

    expect(lstatSync(at('contiguous')).isFile()).toBe(true);
    expect(readFileSync(at('contiguous'), 'utf8')).toBe('data');
  });
});

describe.skipIf(!isRoot)('unpackLayer long names (root only)', () => {
  const longPath = `${'a'.repeat(120)}/${'b'.repeat(120)}/${'c'.repeat(100)}`;
  const longTarget = `/opt/${'t'.repeat(200)}`;

  it('pax path longer than ustar allows', async () => {
    await unpackMembers([{ name: longPath, content: 'deep' }]);

    expect(readFileSync(at(longPath), 'utf8')).toBe('deep');
  });

  it('pax linkpath of a long symlink target', async () => {
    await unpackMembers([{ name: 'link', type: 'symlink', linkname: longTarget }]);

    expect(readlinkSync(at('link'))).toBe(longTarget);
  });

  it('GNU long name and long link name', async () => {
    const bytes = Buffer.concat([
      rawMember({ name: '././@LongLink', type: 'L' }, Buffer.from(`${longPath}\0`)),
      rawMember({ name: longPath.slice(0, 100), type: '0' }, Buffer.from('gnu')),
      rawMember({ name: '././@LongLink', type: 'K' }, Buffer.from(`${longTarget}\0`)),
      rawMember({ name: 'gnu-link', type: '2', linkname: longTarget.slice(0, 100) }),
      END_OF_ARCHIVE,
    ]);

    await unpackBytes(bytes);

    expect(readFileSync(at(longPath), 'utf8')).toBe('gnu');
    expect(readlinkSync(at('gnu-link'))).toBe(longTarget);
  });

  it('pax size replaces the header size', async () => {
    const bytes = Buffer.concat([
      paxHeader([['size', '5']]),
      rawHeader({ name: 'sized', type: '0', size: 0 }),
      padded(Buffer.from('hello')),
      END_OF_ARCHIVE,
    ]);

    const result = await unpackBytes(bytes);

    expect(readFileSync(at('sized'), 'utf8')).toBe('hello');
    expect(result.size).toBe(5);
  });
});

describe.skipIf(!isRoot)('unpackLayer whiteouts (root only: trusted.* xattrs and devices)', () => {
  it('.wh.NAME becomes a character device 0:0', async () => {
    await unpackMembers([{ name: 'etc/.wh.motd', content: '' }]);

    const stats = lstatSync(at('etc/motd'));
    expect(stats.isCharacterDevice()).toBe(true);
    expect(stats.rdev).toBe(0);
    expect(readdirSync(at('etc'))).toEqual(['motd']);
  });

  it('opaque marker sets trusted.overlay.opaque', async () => {
    await unpackMembers([{ name: 'usr/share/.wh..wh..opq', content: '' }]);

    expect(lstatSync(at('usr/share')).isDirectory()).toBe(true);
    expect(xattrOrCode(at('usr/share'), 'trusted.overlay.opaque')).toEqual(Buffer.from('y'));
    expect(readdirSync(at('usr/share'))).toEqual([]);
  });

  it('opaque marker at the layer root', async () => {
    await unpackMembers([{ name: './.wh..wh..opq', content: '' }]);

    expect(xattrOrCode(dirs.target, 'trusted.overlay.opaque')).toEqual(Buffer.from('y'));
    expect(readdirSync(dirs.target)).toEqual([]);
  });

  it('aufs metadata is skipped with its data', async () => {
    await unpackMembers([
      { name: '.wh..wh.plnk/', type: 'directory' },
      { name: '.wh..wh.plnk/123.456', content: 'hard link data' },
      { name: '.wh..wh.aufs', content: 'aufs' },
      { name: 'after', content: 'after' },
    ]);

    expect(readdirSync(dirs.target)).toEqual(['after']);
    expect(readFileSync(at('after'), 'utf8')).toBe('after');
  });

  it('whiteout replaces an earlier member', async () => {
    await unpackMembers([
      { name: 'gone', content: 'x' },
      { name: '.wh.gone', content: '' },
    ]);

    expect(lstatSync(at('gone')).isCharacterDevice()).toBe(true);
  });
});

describe.skipIf(!isRoot)('unpackLayer replacing members (root only)', () => {
  it('later file replaces an earlier one', async () => {
    const result = await unpackMembers([
      { name: 'f', content: 'one' },
      { name: 'f', content: 'two' },
    ]);

    expect(readFileSync(at('f'), 'utf8')).toBe('two');
    expect(result.size).toBe(6);
  });

  it('directory member merges with an existing one', async () => {
    await unpackMembers([
      { name: 'd/', type: 'directory', mode: 0o755 },
      { name: 'd/a', content: 'a' },
      { name: 'd/', type: 'directory', mode: 0o700 },
      { name: 'd/b', content: 'b' },
    ]);

    expect(readdirSync(at('d')).sort()).toEqual(['a', 'b']);
    expect(lstatSync(at('d')).mode & 0o7777).toBe(0o700);
  });

  it('file replaces a directory tree', async () => {
    await unpackMembers([
      { name: 'd/', type: 'directory' },
      { name: 'd/sub/a', content: 'a' },
      { name: 'd', content: 'file now' },
    ]);

    expect(readFileSync(at('d'), 'utf8')).toBe('file now');
  });

  it('directory replaces a symlink instead of following it', async () => {
    await unpackMembers([
      { name: 'link', type: 'symlink', linkname: dirs.sentinel },
      { name: 'link/', type: 'directory' },
      { name: 'link/new', content: 'inside' },
    ]);

    expect(lstatSync(at('link')).isDirectory()).toBe(true);
    expect(readFileSync(at('link/new'), 'utf8')).toBe('inside');
    expectSentinelUntouched();
  });

  it('file replacing a hard link keeps the original', async () => {
    await unpackMembers([
      { name: 'a', content: 'x' },
      { name: 'b', type: 'link', linkname: 'a' },
      { name: 'b', content: 'y' },
    ]);

    expect(readFileSync(at('a'), 'utf8')).toBe('x');
    expect(readFileSync(at('b'), 'utf8')).toBe('y');
  });
});

interface RejectionCase {
  name: string;
  members: () => PackMember[];
  entry: string;
  reason: string;
}

// Each case ends with the member that must be rejected; `reason` is the
// message after `member "ENTRY" `.
const REJECTIONS: RejectionCase[] = [
  {
    name: 'absolute name',
    members: () => [{ name: '/etc/passwd', content: 'x' }],
    entry: '/etc/passwd',
    reason: 'leaves the layer: the name is absolute',
  },
  {
    name: 'leading .. components',
    members: () => [{ name: '../../etc/passwd', content: 'x' }],
    entry: '../../etc/passwd',
    reason: 'leaves the layer: the name contains a ".." component',
  },
  {
    name: '.. in the middle',
    members: () => [{ name: 'a/../../sentinel/file', content: 'x' }],
    entry: 'a/../../sentinel/file',
    reason: 'leaves the layer: the name contains a ".." component',
  },
  {
    name: '.. after ./',
    members: () => [{ name: './../sentinel/new', content: 'x' }],
    entry: './../sentinel/new',
    reason: 'leaves the layer: the name contains a ".." component',
  },
  {
    name: 'file through a relative symlink',
    members: () => [
      { name: 'evil', type: 'symlink', linkname: '../sentinel' },
      { name: 'evil/file', content: 'overwritten' },
    ],
    entry: 'evil/file',
    reason: 'leaves the layer: its parent "evil" is a symlink',
  },
  {
    name: 'file through an absolute symlink',
    members: () => [
      { name: 'abs', type: 'symlink', linkname: dirs.sentinel },
      { name: 'abs/new', content: 'x' },
    ],
    entry: 'abs/new',
    reason: 'leaves the layer: its parent "abs" is a symlink',
  },
  {
    name: 'directory through a symlink',
    members: () => [
      { name: 'dir/', type: 'directory' },
      { name: 'dir/evil', type: 'symlink', linkname: '../../sentinel' },
      { name: 'dir/evil/sub/', type: 'directory' },
    ],
    entry: 'dir/evil/sub/',
    reason: 'leaves the layer: its parent "dir/evil" is a symlink',
  },
  {
    name: 'whiteout through a symlink',
    members: () => [
      { name: 'evil', type: 'symlink', linkname: dirs.sentinel },
      { name: 'evil/.wh.file', content: '' },
    ],
    entry: 'evil/.wh.file',
    reason: 'leaves the layer: its parent "evil" is a symlink',
  },
  {
    name: 'opaque marker through a symlink',
    members: () => [
      { name: 'evil', type: 'symlink', linkname: dirs.sentinel },
      { name: 'evil/.wh..wh..opq', content: '' },
    ],
    entry: 'evil/.wh..wh..opq',
    reason: 'leaves the layer: its parent "evil" is a symlink',
  },
  {
    name: 'hard link to an absolute name',
    members: () => [{ name: 'h', type: 'link', linkname: '/etc/passwd' }],
    entry: 'h',
    reason: 'links to "/etc/passwd", which leaves the layer: the name is absolute',
  },
  {
    name: 'hard link with ..',
    members: () => [{ name: 'h', type: 'link', linkname: '../sentinel/file' }],
    entry: 'h',
    reason: 'links to "../sentinel/file", which leaves the layer: the name contains a ".." component',
  },
  {
    name: 'hard link through a symlink',
    members: () => [
      { name: 'evil', type: 'symlink', linkname: '../sentinel' },
      { name: 'h', type: 'link', linkname: 'evil/file' },
    ],
    entry: 'h',
    reason: 'links to "evil/file", which leaves the layer: its parent "evil" is a symlink',
  },
  {
    name: 'hard link to a missing member',
    members: () => [{ name: 'h', type: 'link', linkname: 'missing' }],
    entry: 'h',
    reason: 'links to "missing", which is not in this layer',
  },
  {
    name: 'hard link below a file',
    members: () => [
      { name: 'file', content: 'x' },
      { name: 'h', type: 'link', linkname: 'file/below' },
    ],
    entry: 'h',
    reason: 'links to "file/below", which is not in this layer',
  },
  {
    name: 'hard link to a directory',
    members: () => [
      { name: 'd/', type: 'directory' },
      { name: 'h', type: 'link', linkname: 'd' },
    ],
    entry: 'h',
    reason: 'links to "d", which is a directory',
  },
  {
    name: 'symlink in place of the root',
    members: () => [{ name: '.', type: 'symlink', linkname: dirs.sentinel }],
    entry: '.',
    reason: "is a symlink in place of the layer's root directory",
  },
  {
    name: 'whiteout of .',
    members: () => [{ name: 'etc/.wh..', content: '' }],
    entry: 'etc/.wh..',
    reason: 'is a whiteout of ".", which is not a file name',
  },
  {
    name: 'whiteout of ..',
    members: () => [{ name: 'etc/.wh...', content: '' }],
    entry: 'etc/.wh...',
    reason: 'is a whiteout of "..", which is not a file name',
  },
];

describe.skipIf(!isRoot)('unpackLayer rejections (root only)', () => {
  it.each(REJECTIONS)('rejects $name', async (rejection) => {
    const error = await imageErrorOf(unpackMembers(rejection.members()));

    expect(error.code).toBe('UNSAFE_PATH');
    expect(error.entry).toBe(rejection.entry);
    expect(error.message).toBe(`${PREFIX}: member ${JSON.stringify(rejection.entry)} ${rejection.reason}`);
    expectSentinelUntouched();
  });

  it('stops at the rejected member', async () => {
    const error = await imageErrorOf(
      unpackMembers([
        { name: 'before', content: 'b' },
        { name: '../outside', content: 'x' },
        { name: 'after', content: 'a' },
      ]),
    );

    expect(error.code).toBe('UNSAFE_PATH');
    expect(readdirSync(dirs.target)).toEqual(['before']);
    expect(readdirSync(dirs.base).sort()).toEqual(['layer', 'sentinel']);
  });
});

describe.skipIf(!isRoot)('unpackLayer unsupported members (root only)', () => {
  it.each([
    ['S', 'GNU sparse file'],
    ['V', 'GNU volume header'],
    ['Z', 'an unknown member type'],
  ])('type flag %s', async (flag, kind) => {
    const bytes = Buffer.concat([rawMember({ name: 'odd', type: flag }, Buffer.from('data')), END_OF_ARCHIVE]);

    const error = await imageErrorOf(unpackBytes(bytes));

    expect(error.code).toBe('UNKNOWN_FORMAT');
    expect(error.entry).toBe('odd');
    expect(error.message).toBe(`${PREFIX}: member "odd" has type flag "${flag}" (${kind}), which unpackLayer does not support`);
    expect(readdirSync(dirs.target)).toEqual([]);
  });

  it('GNU sparse file in pax format', async () => {
    const error = await imageErrorOf(
      unpackMembers([{ name: 'sparse', content: 'map', pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' } }]),
    );

    expect(error.code).toBe('UNKNOWN_FORMAT');
    expect(error.message).toBe(`${PREFIX}: member "sparse" is a GNU sparse file, which unpackLayer does not support`);
  });

  it('name that is not valid UTF-8', async () => {
    const name = Buffer.from('caf\xe9', 'latin1');
    const bytes = Buffer.concat([rawMember({ name, type: '0' }, Buffer.from('x')), END_OF_ARCHIVE]);

    const error = await imageErrorOf(unpackBytes(bytes));

    expect(error.code).toBe('UNKNOWN_FORMAT');
    expect(error.message).toBe(`${PREFIX}: member "caf\uFFFD" has a name that is not valid UTF-8, which unpackLayer does not support`);
  });
});

describe.skipIf(!isRoot)('unpackLayer stream failures (root only)', () => {
  const bigContent = Buffer.alloc(64 * 1024, 0x61);

  it('stream ending inside member data', async () => {
    const bytes = await packTar([{ name: 'big', content: bigContent }]);

    const error = await imageErrorOf(unpackBytes(bytes.subarray(0, 512 + 1000)));

    expect(error.code).toBe('TRUNCATED');
    expect(error.entry).toBe('big');
    expect(error.message).toBe(`${PREFIX}: the tar stream ends in the middle of member "big"`);
    expect((error.cause as Error).message).toBe('Unexpected end of data');
  });

  it('stream ending inside a header', async () => {
    const bytes = await packTar([
      { name: 'a', content: 'a' },
      { name: 'b', content: 'b' },
    ]);

    const error = await imageErrorOf(unpackBytes(bytes.subarray(0, 1024 + 100)));

    expect(error.code).toBe('TRUNCATED');
    expect(error.entry).toBe('a');
    expect(error.message).toBe(`${PREFIX}: the tar stream ends in the header after member "a"`);
    expect(readFileSync(at('a'), 'utf8')).toBe('a');
  });

  it('stream ending inside the first header', async () => {
    const bytes = await packTar([{ name: 'a', content: 'a' }]);

    const error = await imageErrorOf(unpackBytes(bytes.subarray(0, 100)));

    expect(error.code).toBe('TRUNCATED');
    expect(error.message).toBe(`${PREFIX}: the tar stream ends in the first header`);
  });

  // The input is destroyed once the file "big" exists, so the member loop
  // is waiting for more of its data.
  it.each([
    ['without an error', undefined, 'Premature close'],
    ['with an error', new Error('disk read failed'), 'disk read failed'],
  ])('input destroyed halfway %s', async (_name, destroyError, causeMessage) => {
    const bytes = await packTar([{ name: 'big', content: bigContent }]);
    const input = new PassThrough();
    input.write(bytes.subarray(0, 512 + 4096));

    const unpacking = imageErrorOf(unpackLayer(input, dirs.target, { label: LABEL }));
    await waitForPath(at('big'));
    input.destroy(destroyError);
    const error = await unpacking;

    expect(error.code).toBe('TRUNCATED');
    expect(error.entry).toBe('big');
    expect(error.message).toBe(`${PREFIX}: reading the layer failed in the middle of member "big": ${causeMessage}`);
    if (destroyError) expect(error.cause).toBe(destroyError);
    else expect((error.cause as { code?: string }).code).toBe('ERR_STREAM_PREMATURE_CLOSE');
  });

  it('async iterable that throws', async () => {
    const bytes = await packTar([{ name: 'big', content: bigContent }]);
    const failure = new Error('registry connection reset');
    async function* chunks() {
      yield bytes.subarray(0, 2048);
      throw failure;
    }

    const error = await imageErrorOf(unpackLayer(chunks(), dirs.target, { label: LABEL }));

    expect(error.code).toBe('TRUNCATED');
    expect(error.cause).toBe(failure);
  });

  it('rejection destroys an input that never ends', async () => {
    const input = new PassThrough();
    input.write(await packTar([{ name: '/absolute', content: 'x' }]));

    const error = await imageErrorOf(unpackLayer(input, dirs.target, { label: LABEL }));

    expect(error.code).toBe('UNSAFE_PATH');
    expect(input.destroyed).toBe(true);
  });

  it('bytes that are no tar', async () => {
    const error = await imageErrorOf(unpackBytes(Buffer.alloc(1024, 0x41)));

    expect(error.code).toBe('UNKNOWN_FORMAT');
    expect(error.message).toMatch(new RegExp(`^${PREFIX}: invalid tar data in the first header: Invalid tar header`));
  });

  it('onBytes error rejects unchanged', async () => {
    const failure = new Error('progress bar closed');
    const bytes = await packTar([{ name: 'a', content: 'a' }]);

    const error = await rejectionOf(
      unpackBytes(bytes, {
        onBytes: () => {
          throw failure;
        },
      }),
    );

    expect(error).toBe(failure);
  });

  it('string chunks are rejected', async () => {
    const error = await rejectionOf(unpackLayer(Readable.from(['not bytes']), dirs.target, { label: LABEL }));

    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/stream of Buffers/);
  });

  it('no writes after the rejection', async () => {
    const bytes = await packTar([{ name: 'big', content: Buffer.alloc(1024 * 1024, 0x62) }]);
    const input = new PassThrough();
    let destroyed = false;
    const onBytes = (count: number) => {
      if (destroyed || count < 256 * 1024) return;
      destroyed = true;
      input.destroy(new Error('stop'));
    };
    for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
      input.write(bytes.subarray(offset, offset + 64 * 1024));
    }

    await imageErrorOf(unpackLayer(input, dirs.target, { label: LABEL, onBytes }));
    const sizeAtRejection = statSync(at('big')).size;
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));

    expect(sizeAtRejection).toBeLessThan(1024 * 1024);
    expect(statSync(at('big')).size).toBe(sizeAtRejection);
  });
});

describe.skipIf(!isRoot)('unpackLayer diffId, size and progress (root only)', () => {
  it('diffId covers every byte, padding included', async () => {
    const tarBytes = await packTar([{ name: 'a', content: 'a' }]);
    // GNU tar pads an archive to whole 10240-byte records.
    const bytes = Buffer.concat([tarBytes, Buffer.alloc(10240 - tarBytes.length)]);
    const progress: number[] = [];

    const result = await unpackBytes(bytes, { onBytes: (count) => progress.push(count) });

    expect(result.diffId).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    expect(progress.at(-1)).toBe(10240);
  });

  it('one-byte chunks give the same result', async () => {
    const bytes = await packTar([
      { name: 'dir/', type: 'directory' },
      { name: 'dir/file', content: 'content', pax: { 'SCHILY.xattr.user.k': 'v' } },
      { name: 'dir/link', type: 'symlink', linkname: 'file' },
    ]);
    const chunks = [...bytes].map((byte) => Buffer.from([byte]));

    const result = await unpackBytes(chunks);

    expect(result.diffId).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    expect(readFileSync(at('dir/file'), 'utf8')).toBe('content');
    expect(xattrOrCode(at('dir/file'), 'user.k')).toEqual(Buffer.from('v'));
    expect(readlinkSync(at('dir/link'))).toBe('file');
  });

  it('size counts regular files only', async () => {
    const result = await unpackMembers([
      { name: 'dir/', type: 'directory' },
      { name: 'dir/ten', content: '0123456789' },
      { name: 'dir/link', type: 'symlink', linkname: '/a/long/target' },
      { name: 'dir/hard', type: 'link', linkname: 'dir/ten' },
      { name: 'dir/null', type: 'character-device', devmajor: 1, devminor: 3 },
    ]);

    expect(result.size).toBe(10);
  });

  it('async iterable input', async () => {
    const bytes = await packTar([{ name: 'from-generator', content: 'g' }]);
    async function* chunks() {
      yield bytes.subarray(0, 700);
      yield bytes.subarray(700);
    }

    const result = await unpackLayer(chunks(), dirs.target);

    expect(readFileSync(at('from-generator'), 'utf8')).toBe('g');
    expect(result.diffId).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  });
});

describe('unpackLayer target checks', () => {
  it('non-empty target', async () => {
    writeFileSync(at('leftover'), '');

    const error = await imageErrorOf(unpackBytes(END_OF_ARCHIVE));

    expect(error.code).toBe('STORE_FAILED');
    expect(error.path).toBe(dirs.target);
    expect(error.message).toBe(`${PREFIX}: cannot unpack into ${JSON.stringify(dirs.target)}: the directory is not empty`);
  });

  it('missing target', async () => {
    const missing = join(dirs.base, 'missing');
    const input = Readable.from([END_OF_ARCHIVE]);

    const error = await imageErrorOf(unpackLayer(input, missing, { label: LABEL }));

    expect(input.destroyed).toBe(true);
    expect(error.code).toBe('STORE_FAILED');
    expect(error.message).toMatch(/^layer "test-layer": cannot unpack into ".*missing": ENOENT/);
  });

  it('target that is a symlink', async () => {
    const link = join(dirs.base, 'link');
    symlinkSync(dirs.target, link);

    const error = await imageErrorOf(unpackLayer(Readable.from([END_OF_ARCHIVE]), link));

    expect(error.code).toBe('STORE_FAILED');
    expect(error.message).toBe(`layer ${JSON.stringify(link)}: cannot unpack into ${JSON.stringify(link)}: it is not a directory`);
  });
});
