export { ImageError, type ImageErrorCode, type ImageErrorDetails } from './errors.js';
