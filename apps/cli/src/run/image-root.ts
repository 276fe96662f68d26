import type { ImageRunConfig } from '@m-docker/images';
import type { Logger } from '@m-docker/log';

import { CliError } from '../cli-error.js';
import { containersUsingImage } from '../store/containers.js';

// The bridge from `run --image` to @m-docker/images. The package is loaded
// on demand, so a run on the host's root file system does not pay for
// loading the importer and its tar parser.

/** An image resolved for a run: its layers for overlayfs, top-most first, and its defaults. */
export interface ImageForRun {
  imageId: string;
  name: string;
  lowerDirs: string[];
  config: ImageRunConfig;
}

/** Resolves `reference` in the store at `root`; a missing image is a CliError that tells how to import one. */
export async function openImageForRun(root: string, reference: string, log: Logger): Promise<ImageForRun> {
  const { ImageError, openImageStore } = await import('@m-docker/images');
  const store = openImageStore(root);
  try {
    await store.cleanStale();
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
  const { openImageStore } = await import('@m-docker/images');
  return openImageStore(root).referencesSync();
}

/** The function `image rm` uses to find the containers made from an image. */
export function imageUsers(root: string): (imageId: string) => string[] {
  return (imageId) => containersUsingImage(root, imageId);
}
