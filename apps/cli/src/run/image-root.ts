import type { ImageRunConfig } from '@m-docker/images/lookup';
import type { Logger } from '@m-docker/log';

import { CliError } from '../cli-error.js';
import { containersUsingImage } from '../store/containers.js';

// The bridge from `run --image` to @m-docker/images. Its lookup entry is
// loaded on demand, so a run on the host's root file system loads none of
// it, and a run of an image loads no import code (tar parser, zlib, lock).

/** An image resolved for a run: its layers for overlayfs, top-most first, and its defaults. */
export interface ImageForRun {
  imageId: string;
  name: string;
  lowerDirs: string[];
  config: ImageRunConfig;
}

/** Resolves `reference` in the store at `root`; a missing image is a CliError whose message names the import command. */
export async function openImageForRun(root: string, reference: string, log: Logger): Promise<ImageForRun> {
  const { ImageError, openImageLookup } = await import('@m-docker/images/lookup');
  const store = openImageLookup(root);
  try {
    // Staging entries mean an import or removal is running or was killed;
    // only then is the whole package loaded to remove the stale ones.
    if (store.hasStagingEntries()) {
      const { openImageStore } = await import('@m-docker/images');
      await openImageStore(root).cleanStale();
    }
    const image = await store.resolve(reference);
    log.debug('image resolved', { reference, id: image.id, layers: image.layers.length });
    return { imageId: image.id, name: reference, lowerDirs: store.layerDirs(image), config: image.config ?? {} };
  } catch (error) {
    if (ImageError.isInstance(error)) throw new CliError(error.message, undefined, { cause: error });
    throw error;
  }
}

/** Returns the names of the store's images, such as `busybox:latest`, or none when the store has no image. */
export async function imageReferences(root: string): Promise<string[]> {
  const { openImageLookup } = await import('@m-docker/images/lookup');
  return openImageLookup(root).referencesSync();
}

/** The function `image rm` uses to find the containers made from an image. */
export function imageUsers(root: string): (imageId: string) => string[] {
  return (imageId) => containersUsingImage(root, imageId);
}
