import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildTestImages, DEFAULT_BUSYBOX_PATH, type TestImages } from '../../../scripts/test-images/build-test-images.mjs';
import { openImageLookup, openImageStore } from '../src/index.js';
import { ImageError } from '../src/lookup.js';
import { NOT_ROOT, TempDirs } from './store-helpers.js';

// The lookup entry reads what the store wrote, without the import code.

const temp = new TempDirs();
const NO_BUSYBOX = !existsSync(DEFAULT_BUSYBOX_PATH);

let images: TestImages;
beforeAll(async () => {
  if (NOT_ROOT || NO_BUSYBOX) return;
  images = await buildTestImages(temp.make());
});
afterAll(() => temp.removeAll());

describe.skipIf(NOT_ROOT || NO_BUSYBOX)('image lookup', () => {
  it('lookup agrees with the store', async () => {
    const root = temp.make();
    const store = openImageStore(root);
    await store.importArchive(images.dockerArchive);
    const lookup = openImageLookup(root);

    const found = await lookup.resolve('busybox');

    expect(found).toEqual(await store.resolve('busybox'));
    expect(lookup.layerDirs(found)).toEqual(store.layerDirs(found));
    expect(lookup.referencesSync()).toEqual(['busybox:latest']);
  });

  it('lookup of a missing image throws NOT_FOUND', async () => {
    const error = await openImageLookup(temp.make())
      .resolve('nosuch')
      .catch((caught: unknown) => caught);

    expect(ImageError.isInstance(error)).toBe(true);
    expect((error as ImageError).code).toBe('NOT_FOUND');
  });

  it('staging entries are reported', () => {
    const root = temp.make();
    const lookup = openImageLookup(root);
    const before = lookup.hasStagingEntries();
    mkdirSync(join(root, 'tmp', 'import-1-2-abcd'), { recursive: true });

    expect(before).toBe(false);
    expect(lookup.hasStagingEntries()).toBe(true);
  });
});
