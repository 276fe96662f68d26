import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { ImageError } from './errors.js';
import type { ImageRunConfig } from './image-config.js';
import { imageRecordPath, type StorePaths } from './store-paths.js';
import { ownedName } from './store-staging.js';

/** The record of one image, as stored in `<root>/images/<hex>.json`. */
export interface StoredImage {
  /** `sha256:<hex>` of the image config JSON, as docker computes image ids. */
  id: string;
  /** RFC 3339 creation time from the image config, absent when the config has none. */
  created?: string;
  architecture: string;
  os: string;
  variant?: string;
  /** Diff ids, bottom layer first. */
  layers: string[];
  config: ImageRunConfig;
  /** Sum of the sizes of the layers' regular files, in bytes. */
  size: number;
}

/** An image with the `NAME:TAG` references that point at it, from repositories.json. */
export interface ImageRecord extends StoredImage {
  repoTags: string[];
}

/** The contents of `<root>/layers/sha256/<hex>/layer.json`. */
export interface LayerInfo {
  diffId: string;
  /** Sum of the sizes of the layer's regular files, in bytes. */
  size: number;
}

/** `NAME:TAG` to image id. */
export type Repositories = Record<string, string>;

/**
 * Writes `value` as JSON to `target` atomically: to a file in <root>/tmp
 * first, flushed with fsync, then renamed over `target`, so that readers
 * see the old or the new file and never a part.
 */
export async function writeJsonAtomic(paths: StorePaths, target: string, value: unknown): Promise<void> {
  await mkdir(paths.tmp, { recursive: true, mode: 0o700 });
  const temporary = join(paths.tmp, `${ownedName('write')}.json`);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(value, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw new ImageError('STORE_FAILED', `cannot write ${target}: ${(error as Error).message}`, { path: target, cause: error });
  }
}

/** Reads repositories.json. A store without one has no references. */
export async function readRepositories(paths: StorePaths): Promise<Repositories> {
  const text = await readOptional(paths.repositories);
  return text === undefined ? {} : parseRepositories(text, paths.repositories);
}

/** Reads repositories.json synchronously, for {@link ImageStore.referencesSync}. */
export function readRepositoriesSync(paths: StorePaths): Repositories {
  let text: string;
  try {
    text = readFileSync(paths.repositories, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw storeReadError(paths.repositories, error);
  }
  return parseRepositories(text, paths.repositories);
}

export async function writeRepositories(paths: StorePaths, repositories: Repositories): Promise<void> {
  const sorted = Object.fromEntries(Object.entries(repositories).sort(([a], [b]) => a.localeCompare(b)));
  await writeJsonAtomic(paths, paths.repositories, { references: sorted });
}

/** Reads an image record, or returns undefined when the store has no image of that id. */
export async function readImage(paths: StorePaths, imageId: string): Promise<StoredImage | undefined> {
  const path = imageRecordPath(paths, imageId);
  const text = await readOptional(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as StoredImage;
  } catch (error) {
    throw new ImageError('STORE_FAILED', `${path} is not valid JSON: ${(error as Error).message}: remove the image and import it again`, {
      path,
      cause: error,
    });
  }
}

/** Returns the ids (`sha256:<hex>`) of every image record. */
export async function listImageIds(paths: StorePaths): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(paths.images);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storeReadError(paths.images, error);
  }
  return names.filter((name) => /^[0-9a-f]{64}\.json$/.test(name)).map((name) => `sha256:${name.slice(0, 64)}`);
}

/** Adds the references that point at `image` from `repositories`. */
export function withRepoTags(image: StoredImage, repositories: Repositories): ImageRecord {
  const repoTags = Object.entries(repositories)
    .filter(([, id]) => id === image.id)
    .map(([reference]) => reference)
    .sort();
  return { ...image, repoTags };
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storeReadError(path, error);
  }
}

function parseRepositories(text: string, path: string): Repositories {
  try {
    const json = JSON.parse(text) as { references?: unknown };
    if (typeof json.references === 'object' && json.references !== null) return json.references as Repositories;
  } catch (error) {
    throw new ImageError('STORE_FAILED', `${path} is not valid JSON: ${(error as Error).message}`, { path, cause: error });
  }
  throw new ImageError('STORE_FAILED', `${path} has no "references" object`, { path });
}

function storeReadError(path: string, error: unknown): ImageError {
  return new ImageError('STORE_FAILED', `cannot read ${path}: ${(error as Error).message}`, { path, cause: error });
}
