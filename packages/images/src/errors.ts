/**
 * Machine-readable reason for an {@link ImageError}. Callers branch on the
 * code, and the message is for people.
 */
export type ImageErrorCode =
  /** The archive is not a format this package reads, or a required file of the format is missing. */
  | 'UNKNOWN_FORMAT'
  /** The archive file or directory cannot be read, such as a missing file. `path` names it. */
  | 'READ_FAILED'
  /** The archive uses a compression that Node cannot decompress, such as zstd. */
  | 'UNSUPPORTED_COMPRESSION'
  /** The archive ends in the middle of a member or a compressed stream. */
  | 'TRUNCATED'
  /** A blob or layer does not match the sha256 digest that the manifest or config gives. */
  | 'DIGEST_MISMATCH'
  /** A member name is absolute, contains `..`, or would be written through a symlink or hard link out of the layer. */
  | 'UNSAFE_PATH'
  /** A manifest, index or config names a media type this package does not know. */
  | 'UNKNOWN_MEDIA_TYPE'
  /** The image is built for another CPU architecture or operating system. */
  | 'WRONG_PLATFORM'
  /** A manifest, index or config is not valid JSON or lacks a required field. */
  | 'INVALID_MANIFEST'
  /** No image has the given name, tag or id. */
  | 'NOT_FOUND'
  /** The image cannot be removed because containers use it. */
  | 'IN_USE'
  /** A reference such as `NAME:TAG` is malformed. */
  | 'INVALID_REFERENCE'
  /** A file system operation on the store failed. `path` names the file. */
  | 'STORE_FAILED'
  /** Another process holds the store's lock for longer than the wait allows. */
  | 'LOCKED'
  /** An image id prefix matches more than one image. */
  | 'AMBIGUOUS'
  /** The archive contains more than one image, and an import takes exactly one. */
  | 'MULTIPLE_IMAGES'
  /** Removal by id of an image that has several tags, without `force`. */
  | 'MULTIPLE_TAGS'
  /** Neither the image nor the command line gives a command to run. */
  | 'NO_COMMAND';

/** Structured details of an {@link ImageError}. Each code sets the fields that apply to it. */
export interface ImageErrorDetails {
  /** The archive member involved, such as `etc/passwd` or `blobs/sha256/ab12...`. */
  entry?: string;
  /** The file or directory on the host involved. */
  path?: string;
  /** The underlying error, such as the errno error from `fs`. */
  cause?: unknown;
}

// Symbol.for gives the same symbol in every copy of this package that one
// process loads, so isInstance works where instanceof fails across copies.
const IMAGE_ERROR_BRAND = Symbol.for('@m-docker/images/ImageError');

/** Error for every failed import, lookup and removal of an image. */
export class ImageError extends Error {
  override readonly name = 'ImageError';
  readonly code: ImageErrorCode;
  declare readonly entry?: string;
  declare readonly path?: string;

  constructor(code: ImageErrorCode, message: string, details: ImageErrorDetails = {}) {
    super(message, 'cause' in details ? { cause: details.cause } : undefined);
    this.code = code;
    Object.defineProperty(this, IMAGE_ERROR_BRAND, { value: true });

    if (details.entry !== undefined) this.entry = details.entry;
    if (details.path !== undefined) this.path = details.path;
  }

  /** Checks the brand, so errors from another copy of this package also match. */
  static isInstance(value: unknown): value is ImageError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[IMAGE_ERROR_BRAND] === true
    );
  }
}
