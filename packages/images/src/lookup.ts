// The `@m-docker/images/lookup` entry: what running an image needs, without
// the import code. See image-lookup.ts.
export { ImageError, type ImageErrorCode } from './errors.js';
export type { ImageRunConfig } from './image-config.js';
export { ImageLookup, openImageLookup } from './image-lookup.js';
export { type RunCommandOptions, resolveRunCommand } from './run-command.js';
export type { ImageRecord, StoredImage } from './store-records.js';
