export { ImageError, type ImageErrorCode, type ImageErrorDetails } from './errors.js';
export { type UnpackedLayer, type UnpackLayerOptions, unpackLayer } from './unpack-layer.js';
