import { ImageError } from './errors.js';
import { normalizeReference, splitReference } from './image-reference.js';
import { hexOf, layerDiffDir, type StorePaths } from './store-paths.js';
import { listImageIds, type Repositories, readImage, type StoredImage, withRepoTags } from './store-records.js';

/** One line of `m-docker image ls`: an image under one of its references, or once as `<none>` when it has none. */
export interface ImageSummary {
  /** The name part of the reference, or `<none>`. */
  repository: string;
  /** The tag part of the reference, or `<none>`. */
  tag: string;
  /** `sha256:<hex>`. */
  id: string;
  /** Sum of the sizes of the layers' regular files, in bytes. */
  size: number;
  /** RFC 3339 creation time from the image config, absent when it has none. */
  created?: string;
}

/** An image found by {@link findImage}, and the `NAME:TAG` that found it when it was found by name. */
export interface FoundImage {
  image: StoredImage;
  byName?: string;
}

/** Shortest id prefix that finds an image, in hex digits. */
export const MIN_ID_PREFIX = 4;

const ID_PREFIX = new RegExp(`^(?:sha256:)?([0-9a-f]{${MIN_ID_PREFIX},64})$`);

/**
 * Finds an image by `NAME[:TAG]` first, as docker does, then by full id
 * (`sha256:<hex>` or `<hex>`) or an id prefix of at least 4 hex digits.
 * Throws NOT_FOUND, AMBIGUOUS for a prefix of several images, and
 * INVALID_REFERENCE for text that is neither a valid name nor an id.
 */
export async function findImage(paths: StorePaths, repositories: Repositories, reference: string): Promise<FoundImage> {
  let name: string | undefined;
  let nameError: unknown;
  try {
    name = normalizeReference(reference);
  } catch (error) {
    nameError = error;
  }

  const namedId = name === undefined ? undefined : repositories[name];
  if (name !== undefined && namedId !== undefined) {
    return { image: await readExistingImage(paths, namedId, name), byName: name };
  }

  const prefix = ID_PREFIX.exec(reference)?.[1];
  if (prefix !== undefined) {
    const ids = (await listImageIds(paths)).filter((id) => hexOf(id).startsWith(prefix));
    if (ids.length > 1) {
      throw new ImageError('AMBIGUOUS', `image id prefix "${reference}" matches ${ids.length} images: give more digits of the id`);
    }
    if (ids.length === 1) return { image: await readExistingImage(paths, ids[0] as string, reference) };
  }

  if (name === undefined && prefix === undefined) throw nameError;
  throw notFound(reference);
}

/** Lists every image under each of its references, newest first. */
export async function listImages(paths: StorePaths, repositories: Repositories): Promise<ImageSummary[]> {
  const summaries: ImageSummary[] = [];
  for (const id of await listImageIds(paths)) {
    const image = await readImage(paths, id);
    // A record removed between the listing and the read is skipped.
    if (image === undefined) continue;

    const { repoTags } = withRepoTags(image, repositories);
    const references = repoTags.length === 0 ? [undefined] : repoTags;
    for (const reference of references) {
      const { name, tag } = reference === undefined ? { name: '<none>', tag: '<none>' } : splitReference(reference);
      const summary: ImageSummary = { repository: name, tag, id: image.id, size: image.size };
      if (image.created !== undefined) summary.created = image.created;
      summaries.push(summary);
    }
  }
  return summaries.sort(
    (a, b) => (b.created ?? '').localeCompare(a.created ?? '') || a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag),
  );
}

/**
 * Returns the absolute `diff` directories of an image's layers, top-most
 * first, the order of overlayfs's `lowerdir=`. A layer that the image lists
 * twice appears once, at its upper position: every path of the lower copy
 * is also in the upper one, so the merged tree is the same, and overlayfs
 * rejects a directory given twice.
 */
export function layerDirectories(paths: StorePaths, image: Pick<StoredImage, 'layers'>): string[] {
  const seen = new Set<string>();
  const directories: string[] = [];
  for (const diffId of [...image.layers].reverse()) {
    if (seen.has(diffId)) continue;
    seen.add(diffId);
    directories.push(layerDiffDir(paths, diffId));
  }
  return directories;
}

/** Returns the NOT_FOUND error for `reference`, with the commands that help. */
export function notFound(reference: string): ImageError {
  return new ImageError(
    'NOT_FOUND',
    `image "${reference}" not found: import it with 'm-docker image import FILE ${reference}' or see 'm-docker image ls'`,
  );
}

async function readExistingImage(paths: StorePaths, id: string, reference: string): Promise<StoredImage> {
  const image = await readImage(paths, id);
  if (image === undefined) {
    throw new ImageError('STORE_FAILED', `${reference} points at image ${id}, but the store has no record of it: import the image again`, {
      path: paths.repositories,
    });
  }
  return image;
}
