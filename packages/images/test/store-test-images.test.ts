import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type BuiltBadArchive,
  buildBadArchives,
  buildTestImages,
  DEFAULT_BUSYBOX_PATH,
  type TestImages,
} from '../../../scripts/test-images/build-test-images.mjs';
import { ImageError, openImageStore } from '../src/index.js';
import { snapshotTree } from './image-archives.js';
import { NOT_ROOT, TempDirs } from './store-helpers.js';

// Imports the busybox test image of scripts/test-images in every format,
// and every archive that the script builds to be rejected.

const temp = new TempDirs();
const NO_BUSYBOX = !existsSync(DEFAULT_BUSYBOX_PATH);

let images: TestImages;
let bad: BuiltBadArchive[];
beforeAll(async () => {
  if (NOT_ROOT || NO_BUSYBOX) return;
  const out = temp.make();
  images = await buildTestImages(out);
  bad = await buildBadArchives(out);
});
afterAll(() => temp.removeAll());

describe.skipIf(NOT_ROOT || NO_BUSYBOX)('busybox test image', () => {
  it.each(['dockerArchive', 'ociLayout', 'ociArchive'] as const)('%s imports with two layers and overlay whiteouts', async (format) => {
    const store = openImageStore(temp.make());

    const { image, references } = await store.importArchive(images[format]);

    expect(references).toEqual(['busybox:latest']);
    expect(image.id).toBe(images.configDigest);
    expect(image.layers).toEqual(images.diffIds);
    expect(image.config.Cmd).toEqual(['sh']);
    const [upper, lower] = store.layerDirs(image) as [string, string];
    expect(readlinkSync(join(lower, 'bin/sh'))).toBe('busybox');
    expect(readFileSync(join(upper, 'etc/motd'), 'utf8')).toContain('upper');
    const whiteout = lstatSync(join(upper, 'lower-only'));
    expect(whiteout.isCharacterDevice()).toBe(true);
    expect(whiteout.rdev).toBe(0);
  });

  it.each(['rootfsTar', 'rootfsTarGz'] as const)('%s imports as one layer', async (format) => {
    const store = openImageStore(temp.make());

    const { image } = await store.importArchive(images[format], { reference: 'busybox:rootfs' });

    expect(image.layers).toHaveLength(1);
    expect(image.config).toEqual({});
    const [diff] = store.layerDirs(image) as [string];
    expect(lstatSync(join(diff, 'bin/busybox')).isFile()).toBe(true);
    expect(existsSync(join(diff, 'lower-only'))).toBe(false);
  });

  it('rejects every bad archive without change', async () => {
    const root = temp.make();
    const store = openImageStore(root);
    await store.importArchive(images.dockerArchive);
    const before = snapshotTree(root);

    for (const archive of bad) {
      const error = await store.importArchive(archive.path).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(ImageError.isInstance(error), `${archive.file}: ${error}`).toBe(true);
      expect((error as ImageError).code, `${archive.file}: ${(error as Error).message}`).toBe(archive.expectedCode);
      // The member is named in the message, or for WRONG_PLATFORM, whose message docker's form fixes, in `entry`.
      if (archive.entry !== null) expect(`${(error as Error).message} ${(error as ImageError).entry}`, archive.file).toContain(archive.entry);
      expect(snapshotTree(root), archive.file).toEqual(before);
    }
  });
});
