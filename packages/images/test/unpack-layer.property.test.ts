import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { unpackLayer } from '../src/index.js';
import { type LayerDirs, makeLayerDirs, type PackMember, packTar, removeLayerDirs } from './layer-tars.js';

// Random trees of safe members round-trip: what unpackLayer writes is
// exactly what the tar describes, whatever the member order and however
// the stream is split into chunks.

const isRoot = process.getuid?.() === 0;

interface Metadata {
  /** 1 to 0o7777: tar-stream's pack writes a default mode in place of 0. */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

type Leaf =
  | { kind: 'file'; content: Uint8Array }
  | { kind: 'symlink'; target: string }
  | { kind: 'hardlink'; pick: number }
  | { kind: 'fifo' }
  | { kind: 'directory' };

interface GeneratedEntry {
  path: string[];
  leaf: Leaf;
  metadata: Metadata;
}

/** What one path of the unpacked tree must be. */
type Expected =
  | { kind: 'file'; content: Buffer; metadata: Metadata }
  | { kind: 'symlink'; target: string; metadata: Metadata }
  | { kind: 'hardlink'; to: string }
  | { kind: 'fifo'; metadata: Metadata }
  | { kind: 'directory'; metadata: Metadata }
  | { kind: 'implied-directory' };

const metadataArbitrary = fc.record({
  mode: fc.integer({ min: 1, max: 0o7777 }),
  uid: fc.integer({ min: 0, max: 70_000 }),
  gid: fc.integer({ min: 0, max: 70_000 }),
  mtime: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

const leafArbitrary: fc.Arbitrary<Leaf> = fc.oneof(
  fc.record({ kind: fc.constant('file' as const), content: fc.uint8Array({ maxLength: 3000 }) }),
  fc.record({ kind: fc.constant('symlink' as const), target: fc.string({ minLength: 1, maxLength: 60 }) }),
  fc.record({ kind: fc.constant('hardlink' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('fifo' as const) }),
  fc.record({ kind: fc.constant('directory' as const) }),
);

const entriesArbitrary = fc.uniqueArray(
  fc.record({
    path: fc.array(fc.constantFrom('a', 'b', 'c', '.wh-not', 'd d'), { minLength: 1, maxLength: 3 }),
    leaf: leafArbitrary,
    metadata: metadataArbitrary,
  }),
  { selector: (entry) => entry.path.join('/'), maxLength: 14 },
);

// Turns generated entries into tar members and the tree they must give.
// An entry that is a prefix of another becomes a directory, a hard link
// points to a file earlier in the tar or becomes an empty file, and the
// prefixes that no entry names are implied directories.
function plan(entries: readonly GeneratedEntry[]): { members: PackMember[]; expected: Map<string, Expected> } {
  const names = entries.map((entry) => entry.path.join('/'));
  const isPrefix = (name: string) => names.some((other) => other.startsWith(`${name}/`));

  const members: PackMember[] = [];
  const expected = new Map<string, Expected>();
  const filesSoFar: string[] = [];

  for (const [index, entry] of entries.entries()) {
    const name = names[index] as string;
    const { metadata } = entry;
    const header = { mode: metadata.mode, uid: metadata.uid, gid: metadata.gid, mtime: new Date(metadata.mtime * 1000) };
    let leaf = isPrefix(name) ? ({ kind: 'directory' } as const) : entry.leaf;
    if (leaf.kind === 'hardlink' && filesSoFar.length === 0) leaf = { kind: 'file', content: new Uint8Array() };

    switch (leaf.kind) {
      case 'file':
        members.push({ name, ...header, content: Buffer.from(leaf.content) });
        expected.set(name, { kind: 'file', content: Buffer.from(leaf.content), metadata });
        filesSoFar.push(name);
        break;
      case 'symlink':
        members.push({ name, ...header, type: 'symlink', linkname: leaf.target });
        expected.set(name, { kind: 'symlink', target: leaf.target, metadata });
        break;
      case 'hardlink': {
        const to = filesSoFar[leaf.pick % filesSoFar.length] as string;
        members.push({ name, ...header, type: 'link', linkname: to });
        expected.set(name, { kind: 'hardlink', to });
        break;
      }
      case 'fifo':
        members.push({ name, ...header, type: 'fifo' });
        expected.set(name, { kind: 'fifo', metadata });
        break;
      case 'directory':
        members.push({ name: `${name}/`, ...header, type: 'directory' });
        expected.set(name, { kind: 'directory', metadata });
        break;
    }
  }

  for (const name of names) {
    const parts = name.split('/');
    for (let length = 1; length < parts.length; length++) {
      const prefix = parts.slice(0, length).join('/');
      if (!expected.has(prefix)) expected.set(prefix, { kind: 'implied-directory' });
    }
  }
  return { members, expected };
}

function listTree(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix)).flatMap((name) => {
    const path = prefix === '' ? name : `${prefix}/${name}`;
    return lstatSync(join(root, path)).isDirectory() ? [path, ...listTree(root, path)] : [path];
  });
}

function checkMetadata(path: string, metadata: Metadata, checkMode = true): void {
  const stats = lstatSync(path);
  if (checkMode) expect(stats.mode & 0o7777, `mode of ${path}`).toBe(metadata.mode);
  expect(stats.uid, `uid of ${path}`).toBe(metadata.uid);
  expect(stats.gid, `gid of ${path}`).toBe(metadata.gid);
  expect(stats.mtimeMs, `mtime of ${path}`).toBe(metadata.mtime * 1000);
}

function checkEntry(root: string, name: string, expected: Expected): void {
  const path = join(root, name);
  const stats = lstatSync(path);

  switch (expected.kind) {
    case 'file':
      expect(stats.isFile(), `${name} is a file`).toBe(true);
      expect(readFileSync(path)).toEqual(expected.content);
      checkMetadata(path, expected.metadata);
      break;
    case 'symlink':
      expect(readlinkSync(path)).toBe(expected.target);
      checkMetadata(path, expected.metadata, false);
      break;
    case 'hardlink':
      expect(stats.ino, `${name} shares the inode of ${expected.to}`).toBe(lstatSync(join(root, expected.to)).ino);
      break;
    case 'fifo':
      expect(stats.isFIFO(), `${name} is a FIFO`).toBe(true);
      checkMetadata(path, expected.metadata);
      break;
    case 'directory':
      expect(stats.isDirectory(), `${name} is a directory`).toBe(true);
      checkMetadata(path, expected.metadata);
      break;
    case 'implied-directory':
      expect(stats.isDirectory(), `${name} is a directory`).toBe(true);
      expect(stats.mode & 0o7777, `mode of ${name}`).toBe(0o755);
      break;
  }
}

describe.skipIf(!isRoot)('unpackLayer round trip (root only: it sets owners)', () => {
  let dirs: LayerDirs;

  beforeEach(() => {
    dirs = makeLayerDirs();
  });

  afterEach(() => {
    removeLayerDirs(dirs);
  });

  it('random trees round-trip', async () => {
    await fc.assert(
      fc.asyncProperty(entriesArbitrary, fc.integer({ min: 1, max: 4096 }), async (entries, chunkSize) => {
        rmSync(dirs.target, { recursive: true, force: true });
        mkdirSync(dirs.target);
        const { members, expected } = plan(entries);
        const bytes = await packTar(members);
        const chunks: Buffer[] = [];
        for (let offset = 0; offset < bytes.length; offset += chunkSize) chunks.push(bytes.subarray(offset, offset + chunkSize));

        const result = await unpackLayer(Readable.from(chunks), dirs.target);

        expect(result.diffId).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
        const fileSizes = [...expected.values()].map((entry) => (entry.kind === 'file' ? entry.content.length : 0));
        expect(result.size).toBe(fileSizes.reduce((sum, size) => sum + size, 0));
        expect(listTree(dirs.target).sort()).toEqual([...expected.keys()].sort());
        for (const [name, entry] of expected) checkEntry(dirs.target, name, entry);
      }),
      { numRuns: 40 },
    );
  });
});
