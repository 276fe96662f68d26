import { join } from 'node:path';

/** The files and directories of an image store below its root, described in README.md under "Store layout". */
export interface StorePaths {
  root: string;
  /** `<root>/layers/sha256`: one directory per layer diff id. */
  layers: string;
  /** `<root>/images`: one `<hex>.json` record per image id. */
  images: string;
  /** `<root>/repositories.json`: `NAME:TAG` to image id. */
  repositories: string;
  /** `<root>/tmp`: staging directories and temporary files, each named after its owner process. */
  tmp: string;
  /** `<root>/lock`: the directory that proper-lockfile creates while a process holds the store's lock. */
  lock: string;
}

export function storePaths(root: string): StorePaths {
  return {
    root,
    layers: join(root, 'layers', 'sha256'),
    images: join(root, 'images'),
    repositories: join(root, 'repositories.json'),
    tmp: join(root, 'tmp'),
    lock: join(root, 'lock'),
  };
}

/** Returns the hex part of a `sha256:<hex>` digest. */
export function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

/** `<root>/layers/sha256/<hex>`, the directory of one layer. */
export function layerDir(paths: StorePaths, diffId: string): string {
  return join(paths.layers, hexOf(diffId));
}

/** `<root>/layers/sha256/<hex>/diff`, the unpacked layer: an overlayfs lower directory. */
export function layerDiffDir(paths: StorePaths, diffId: string): string {
  return join(layerDir(paths, diffId), 'diff');
}

/** `<root>/images/<hex>.json`, the record of one image. */
export function imageRecordPath(paths: StorePaths, imageId: string): string {
  return join(paths.images, `${hexOf(imageId)}.json`);
}
