import { mkdir, readdir, realpath, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { ImageError } from './errors.js';
import type { LockTiming } from './store-lock.js';
import { withStoreLock } from './store-lock.js';
import { imageRecordPath, type StorePaths } from './store-paths.js';
import { findImage } from './store-query.js';
import { listImageIds, type Repositories, readImage, readRepositories, writeRepositories } from './store-records.js';
import { mountsBelow, removeTree } from './store-remove-tree.js';
import { cleanStale, ownedName } from './store-staging.js';

export interface RemoveOptions {
  /**
   * Removes an image by id although several references point at it, and
   * untags an image that containers use (the image itself stays), as
   * `docker rmi --force` does.
   */
  force?: boolean;
  /** Returns the names or ids of the containers that use the image, which is kept while there are any. */
  usedBy: (imageId: string) => string[];
}

export interface RemoveResult {
  /** The `NAME:TAG` references removed. */
  untagged: string[];
  /** The id of the deleted image, when no reference was left and no container used it. */
  deleted?: string;
  /** The diff ids of the layers deleted because no image uses them any more. */
  deletedLayers: string[];
}

// A removal is decided and applied under the store's lock, in an order that
// leaves a consistent store after a crash at any step: repositories.json
// first, then the image record, then the layers, which are renamed into a
// directory of <root>/tmp and deleted after the lock is released. A crash
// leaves at worst an untagged image or unreferenced layers, which the next
// removal deletes, and a directory in <root>/tmp for cleanStale.

/**
 * Removes `reference` as `docker rmi` does. A `NAME:TAG` is untagged, and
 * the image is deleted once no reference points at it. An id deletes the
 * image with all its references. Layers that no other image uses are
 * deleted with it. Throws IN_USE naming the containers, MULTIPLE_TAGS, and
 * the errors of {@link findImage}.
 */
export async function removeImage(paths: StorePaths, timing: LockTiming, reference: string, options: RemoveOptions): Promise<RemoveResult> {
  await cleanStale(paths);
  const trash = join(paths.tmp, ownedName('remove'));

  const result = await withStoreLock(paths, timing, async () => {
    const repositories = await readRepositories(paths);
    const { image, byName } = await findImage(paths, repositories, reference);
    const tags = Object.keys(repositories).filter((key) => repositories[key] === image.id);

    if (byName === undefined && tags.length > 1 && options.force !== true) {
      throw new ImageError(
        'MULTIPLE_TAGS',
        `image ${reference} has several references (${tags.sort().join(', ')}): remove them one by one, or use --force to remove the image with all of them`,
      );
    }
    const untagged = byName === undefined ? tags : [byName];
    const deleteImage = untagged.length === tags.length && !isKeptForContainers(image.id, reference, options);

    const deletedLayers = deleteImage ? await unusedLayers(paths, image.id) : [];
    await checkNoMounts(paths, deletedLayers);

    await untag(paths, repositories, untagged);
    if (deleteImage) await unlink(imageRecordPath(paths, image.id)).catch(storeError(imageRecordPath(paths, image.id)));
    await moveLayers(paths, deletedLayers, trash);

    const removal: RemoveResult = { untagged, deletedLayers };
    if (deleteImage) removal.deleted = image.id;
    return removal;
  });

  await removeTree(trash);
  return result;
}

// An image that containers use is not deleted. Without force the removal
// fails, and with force only its references go, as docker does.
function isKeptForContainers(imageId: string, reference: string, options: RemoveOptions): boolean {
  const containers = options.usedBy(imageId);
  if (containers.length === 0) return false;
  if (options.force === true) return true;
  throw new ImageError(
    'IN_USE',
    `image ${reference} (${imageId.slice('sha256:'.length, 'sha256:'.length + 12)}) is used by container${containers.length > 1 ? 's' : ''} ${containers.join(', ')}: remove ${containers.length > 1 ? 'them' : 'it'} first, or use --force to remove only the reference`,
  );
}

// Every stored layer that no other image lists, which includes layers that
// an interrupted removal left unreferenced.
async function unusedLayers(paths: StorePaths, removedId: string): Promise<string[]> {
  const used = new Set<string>();
  for (const id of await listImageIds(paths)) {
    if (id === removedId) continue;
    const other = await readImage(paths, id);
    for (const diffId of other?.layers ?? []) used.add(diffId);
  }

  let names: string[];
  try {
    names = await readdir(paths.layers);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storeError(paths.layers)(error);
  }
  return names
    .filter((hex) => /^[0-9a-f]{64}$/.test(hex))
    .map((hex) => `sha256:${hex}`)
    .filter((diffId) => !used.has(diffId));
}

async function checkNoMounts(paths: StorePaths, diffIds: string[]): Promise<void> {
  if (diffIds.length === 0) return;
  const layers = await realpath(paths.layers);
  for (const diffId of diffIds) {
    const mounts = mountsBelow(join(layers, diffId.slice('sha256:'.length)));
    if (mounts.length === 0) continue;
    throw new ImageError(
      'STORE_FAILED',
      `cannot remove layer ${diffId}: ${mounts.join(', ')} is mounted inside it, and removing would delete the mounted files: unmount it first`,
      { path: mounts[0] as string },
    );
  }
}

async function untag(paths: StorePaths, repositories: Repositories, references: string[]): Promise<void> {
  if (references.length === 0) return;
  for (const reference of references) delete repositories[reference];
  await writeRepositories(paths, repositories);
}

async function moveLayers(paths: StorePaths, diffIds: string[], trash: string): Promise<void> {
  if (diffIds.length === 0) return;
  await mkdir(trash, { recursive: true, mode: 0o700 });
  for (const diffId of diffIds) {
    const hex = diffId.slice('sha256:'.length);
    const from = join(paths.layers, hex);
    await rename(from, join(trash, hex)).catch(storeError(from));
  }
}

function storeError(path: string): (error: unknown) => never {
  return (error) => {
    throw new ImageError('STORE_FAILED', `cannot remove ${path}: ${(error as Error).message}`, { path, cause: error });
  };
}
