import { type ImportOptions, type ImportResult, importArchive } from './store-import.js';
import { DEFAULT_LOCK_TIMING, type LockTiming } from './store-lock.js';
import { type StorePaths, storePaths } from './store-paths.js';
import { findImage, type ImageSummary, layerDirectories, listImages } from './store-query.js';
import { type ImageRecord, readRepositories, readRepositoriesSync, type StoredImage, withRepoTags } from './store-records.js';
import { type RemoveOptions, type RemoveResult, removeImage } from './store-remove.js';
import { cleanStale } from './store-staging.js';

/** Settings of {@link openImageStore} that tests change. */
export interface ImageStoreOptions {
  lock?: Partial<LockTiming>;
}

/**
 * An image store below one root directory (README.md, "Store layout").
 * Methods that change the store take its lock. The methods that only read
 * rely on every file being replaced by an atomic rename.
 */
export class ImageStore {
  readonly paths: StorePaths;
  readonly #timing: LockTiming;

  constructor(root: string, options: ImageStoreOptions = {}) {
    this.paths = storePaths(root);
    this.#timing = { ...DEFAULT_LOCK_TIMING, ...options.lock };
  }

  /** The store's root directory. */
  get root(): string {
    return this.paths.root;
  }

  /**
   * Imports a docker save archive, an OCI layout (tar or directory) or a
   * root file system tarball, plain or gzip-compressed, and points the
   * references at it. A reference that pointed at another image moves, and
   * that image stays, untagged. On failure the store is left as it was.
   */
  importArchive(path: string, options: ImportOptions = {}): Promise<ImportResult> {
    return importArchive(this.paths, this.#timing, path, options);
  }

  /** Lists the images, one line per reference, newest first. */
  async list(): Promise<ImageSummary[]> {
    return listImages(this.paths, await readRepositories(this.paths));
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

  /** Untags `reference` and deletes the image and its unused layers once nothing refers to them. */
  remove(reference: string, options: RemoveOptions): Promise<RemoveResult> {
    return removeImage(this.paths, this.#timing, reference, options);
  }

  /** Returns every `NAME:TAG` of the store, sorted. Synchronous and cheap, for hints on each `run`. */
  referencesSync(): string[] {
    return Object.keys(readRepositoriesSync(this.paths)).sort();
  }

  /** Removes the entries of `<root>/tmp` that killed imports and removals left, and returns their paths. */
  cleanStale(): Promise<string[]> {
    return cleanStale(this.paths);
  }
}

/** Returns the image store below `root`. Nothing is read or created until a method is called. */
export function openImageStore(root: string, options: ImageStoreOptions = {}): ImageStore {
  return new ImageStore(root, options);
}
