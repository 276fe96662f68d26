import { readdirSync } from 'node:fs';

import { type StorePaths, storePaths } from './store-paths.js';
import { findImage, layerDirectories } from './store-query.js';
import { type ImageRecord, readRepositories, readRepositoriesSync, type StoredImage, withRepoTags } from './store-records.js';

/**
 * The read-only part of an image store that `run --image` needs: find an
 * image and its layer directories. It loads none of the import code (tar
 * parser, decompression, lock), which would add tens of milliseconds to
 * every run under Bun. Reading needs no lock, because the store replaces
 * every file by an atomic rename.
 */
export class ImageLookup {
  readonly paths: StorePaths;

  constructor(root: string) {
    this.paths = storePaths(root);
  }

  /** Finds an image by `NAME[:TAG]`, full id or id prefix of at least 4 hex digits. Throws NOT_FOUND. */
  async resolve(reference: string): Promise<ImageRecord> {
    const repositories = await readRepositories(this.paths);
    const { image } = await findImage(this.paths, repositories, reference);
    return withRepoTags(image, repositories);
  }

  /** Returns the image's layer directories, top-most first, for overlayfs's `lowerdir=`. */
  layerDirs(image: Pick<StoredImage, 'layers'>): string[] {
    return layerDirectories(this.paths, image);
  }

  /** Returns every `NAME:TAG` of the store, sorted. */
  referencesSync(): string[] {
    return Object.keys(readRepositoriesSync(this.paths)).sort();
  }

  /** Returns whether `<root>/tmp` has entries, which ImageStore.cleanStale may have to remove. */
  hasStagingEntries(): boolean {
    try {
      return readdirSync(this.paths.tmp).length > 0;
    } catch {
      return false;
    }
  }
}

/** Returns the lookup for the store below `root`. Nothing is read until a method is called. */
export function openImageLookup(root: string): ImageLookup {
  return new ImageLookup(root);
}
