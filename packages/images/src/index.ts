export { ImageError, type ImageErrorCode, type ImageErrorDetails } from './errors.js';
export { type UnpackedLayer, type UnpackLayerOptions, unpackLayer } from './unpack-layer.js';
export type { ImageRunConfig } from './image-config.js';
export { machinePlatform, type Platform } from './image-platform.js';
export { type ImageReference, normalizeReference, parseReference } from './image-reference.js';
export { type RunCommandOptions, resolveRunCommand } from './run-command.js';
