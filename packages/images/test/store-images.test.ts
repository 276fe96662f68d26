import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { type ImageStore, openImageStore } from '../src/index.js';
import { dockerArchiveMembers, imageOf, layerOf, snapshotTree, type TestImage } from './image-archives.js';
import { NOT_ROOT, TempDirs, writeTar } from './store-helpers.js';

const temp = new TempDirs();
afterEach(() => temp.removeAll());

const base = await layerOf({ 'etc/os-release': 'ID=test\n' });
const first: TestImage = imageOf([base, await layerOf({ first: '1' })], { label: 'first' });
const second: TestImage = imageOf([base, await layerOf({ second: '22' })], { label: 'second' });

const hexOf = (digest: string): string => digest.slice('sha256:'.length);
const noContainers = (): string[] => [];

async function importImage(store: ImageStore, image: TestImage, repoTags: string[] | null): Promise<void> {
  await store.importArchive(await writeTar(temp.make(), 'image.tar', dockerArchiveMembers(image, { repoTags })));
}

function storedLayers(root: string): string[] {
  return readdirSync(join(root, 'layers', 'sha256')).sort();
}

describe.skipIf(NOT_ROOT)('image store', () => {
  it('shares a layer between two images', async () => {
    const root = temp.make();
    const store = openImageStore(root);

    await importImage(store, first, ['first:1']);
    await importImage(store, second, ['second:1']);

    expect(storedLayers(root)).toEqual([...new Set([...first.diffIds, ...second.diffIds])].map(hexOf).sort());
    expect(storedLayers(root)).toHaveLength(3);
    const [, firstBase] = store.layerDirs(await store.resolve('first:1'));
    const [, secondBase] = store.layerDirs(await store.resolve('second:1'));
    expect(firstBase).toBe(secondBase);
  });

  it('tag move keeps old image untagged', async () => {
    const store = openImageStore(temp.make());
    await importImage(store, first, ['busybox:latest']);

    await importImage(store, second, ['busybox:latest']);

    expect((await store.resolve('busybox')).id).toBe(second.id);
    expect((await store.resolve(first.id)).repoTags).toEqual([]);
    const rows = await store.list();
    expect(rows.map((row) => [row.repository, row.tag, row.id])).toEqual(
      expect.arrayContaining([
        ['busybox', 'latest', second.id],
        ['<none>', '<none>', first.id],
      ]),
    );
    expect(rows).toHaveLength(2);
  });

  it('imports the same archive twice without change', async () => {
    const root = temp.make();
    const store = openImageStore(root);
    await importImage(store, first, ['first:1']);
    const before = snapshotTree(root);

    await importImage(store, first, ['first:1']);

    expect(snapshotTree(root)).toEqual(before);
  });

  it('list gives one row per reference', async () => {
    const store = openImageStore(temp.make());
    await importImage(store, first, ['first:1', 'first:latest']);

    expect(await store.list()).toEqual([
      { repository: 'first', tag: '1', id: first.id, size: 'ID=test\n'.length + 1, created: '2024-01-02T03:04:05Z' },
      { repository: 'first', tag: 'latest', id: first.id, size: 'ID=test\n'.length + 1, created: '2024-01-02T03:04:05Z' },
    ]);
    expect(store.referencesSync()).toEqual(['first:1', 'first:latest']);
  });

  it('list of missing root is empty', async () => {
    const store = openImageStore(join(temp.make(), 'missing'));

    expect(await store.list()).toEqual([]);
    expect(store.referencesSync()).toEqual([]);
  });

  describe('resolve', () => {
    it.each([
      ['name', 'first'],
      ['name:tag', 'first:latest'],
      ['docker.io form', 'docker.io/library/first:latest'],
      ['full id', first.id],
      ['hex id', hexOf(first.id)],
      ['12-digit prefix', hexOf(first.id).slice(0, 12)],
      ['4-digit prefix with sha256:', `sha256:${hexOf(first.id).slice(0, 4)}`],
    ])('finds by %s', async (_kind, reference) => {
      const store = openImageStore(temp.make());
      await importImage(store, first, ['first:latest']);

      expect((await store.resolve(reference)).id).toBe(first.id);
    });

    it('unknown name is NOT_FOUND', async () => {
      const store = openImageStore(temp.make());

      await expect(store.resolve('nothing')).rejects.toMatchObject({
        code: 'NOT_FOUND',
        message: `image "nothing" not found: import it with 'm-docker image import FILE nothing' or see 'm-docker image ls'`,
      });
    });

    it('rejects a prefix shorter than 4 digits', async () => {
      const store = openImageStore(temp.make());
      await importImage(store, first, null);

      await expect(store.resolve(hexOf(first.id).slice(0, 3))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('rejects a prefix of two images with AMBIGUOUS', async () => {
      const root = temp.make();
      const store = openImageStore(root);
      await importImage(store, first, null);
      // A second record whose id shares the first 4 digits.
      const twin = `${hexOf(first.id).slice(0, 4)}${'0'.repeat(60)}`;
      writeFileSync(join(root, 'images', `${twin}.json`), JSON.stringify({ id: `sha256:${twin}`, layers: [], config: {}, size: 0 }));

      await expect(store.resolve(hexOf(first.id).slice(0, 4))).rejects.toMatchObject({ code: 'AMBIGUOUS' });
      expect((await store.resolve(hexOf(first.id).slice(0, 5))).id).toBe(first.id);
    });

    it('rejects an invalid name with INVALID_REFERENCE', async () => {
      const store = openImageStore(temp.make());

      await expect(store.resolve('Not/Valid')).rejects.toMatchObject({ code: 'INVALID_REFERENCE' });
    });
  });

  describe('remove', () => {
    it('last reference deletes the image', async () => {
      const root = temp.make();
      const store = openImageStore(root);
      await importImage(store, first, ['first:1', 'first:2']);

      const untag = await store.remove('first:1', { usedBy: noContainers });
      const last = await store.remove('first:2', { usedBy: noContainers });

      expect(untag).toEqual({ untagged: ['first:1'], deletedLayers: [] });
      expect(last.untagged).toEqual(['first:2']);
      expect(last.deleted).toBe(first.id);
      expect([...last.deletedLayers].sort()).toEqual([...first.diffIds].sort());
      expect(readdirSync(join(root, 'images'))).toEqual([]);
      expect(readdirSync(join(root, 'layers', 'sha256'))).toEqual([]);
      expect(readdirSync(join(root, 'tmp'))).toEqual([]);
      expect(existsSync(join(root, 'lock'))).toBe(false);
    });

    it('keeps a layer that another image uses', async () => {
      const root = temp.make();
      const store = openImageStore(root);
      await importImage(store, first, ['first:1']);
      await importImage(store, second, ['second:1']);

      const result = await store.remove('first:1', { usedBy: noContainers });

      expect(result.deletedLayers).toEqual([first.diffIds[1]]);
      expect(storedLayers(root)).toEqual(second.diffIds.map(hexOf).sort());
      expect(readFileSync(join(store.layerDirs(await store.resolve('second:1'))[1] as string, 'etc/os-release'), 'utf8')).toBe('ID=test\n');
    });

    it('image in use is IN_USE', async () => {
      const root = temp.make();
      const store = openImageStore(root);
      await importImage(store, first, ['first:1']);
      const before = snapshotTree(root);
      const asked: string[] = [];

      const removing = store.remove('first:1', {
        usedBy: (id) => {
          asked.push(id);
          return ['web', 'db'];
        },
      });

      await expect(removing).rejects.toMatchObject({
        code: 'IN_USE',
        message: `image first:1 (${hexOf(first.id).slice(0, 12)}) is used by containers web, db: remove them first, or use --force to remove only the reference`,
      });
      expect(asked).toEqual([first.id]);
      expect(snapshotTree(root)).toEqual(before);
    });

    it('force untags image in use', async () => {
      const store = openImageStore(temp.make());
      await importImage(store, first, ['first:1']);

      const result = await store.remove('first:1', { force: true, usedBy: () => ['web'] });

      expect(result).toEqual({ untagged: ['first:1'], deletedLayers: [] });
      expect((await store.resolve(first.id)).repoTags).toEqual([]);
    });

    it('does not ask usedBy when other references remain', async () => {
      const store = openImageStore(temp.make());
      await importImage(store, first, ['first:1', 'first:2']);

      const result = await store.remove('first:1', {
        usedBy: () => {
          throw new Error('usedBy must not be called');
        },
      });

      expect(result.untagged).toEqual(['first:1']);
    });

    it('by id with several references needs force', async () => {
      const store = openImageStore(temp.make());
      await importImage(store, first, ['first:1', 'first:2']);

      await expect(store.remove(hexOf(first.id).slice(0, 12), { usedBy: noContainers })).rejects.toMatchObject({ code: 'MULTIPLE_TAGS' });
      const result = await store.remove(hexOf(first.id).slice(0, 12), { force: true, usedBy: noContainers });

      expect(result.untagged.sort()).toEqual(['first:1', 'first:2']);
      expect(result.deleted).toBe(first.id);
      expect(store.referencesSync()).toEqual([]);
    });

    it('deletes an untagged image by id', async () => {
      const store = openImageStore(temp.make());
      await importImage(store, first, ['busybox:latest']);
      await importImage(store, second, ['busybox:latest']);

      const result = await store.remove(first.id, { usedBy: noContainers });

      expect(result).toEqual({ untagged: [], deleted: first.id, deletedLayers: [first.diffIds[1]] });
      expect((await store.resolve('busybox')).id).toBe(second.id);
    });

    it('also deletes layers that no image lists', async () => {
      const root = temp.make();
      const store = openImageStore(root);
      await importImage(store, first, ['first:1']);
      await importImage(store, second, ['second:1']);
      // A layer left behind by an interrupted removal.
      const orphan = 'f'.repeat(64);
      mkdirSync(join(root, 'layers', 'sha256', orphan, 'diff'), { recursive: true });

      const result = await store.remove('second:1', { usedBy: noContainers });

      expect([...result.deletedLayers].sort()).toEqual([second.diffIds[1], `sha256:${orphan}`].sort());
      expect(storedLayers(root)).toEqual(first.diffIds.map(hexOf).sort());
    });

    it('rejects an unknown reference with NOT_FOUND', async () => {
      const store = openImageStore(temp.make());

      await expect(store.remove('nothing', { usedBy: noContainers })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });
  });
});
