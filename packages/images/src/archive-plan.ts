import type { ParsedImageConfig } from './image-config.js';

/** One layer blob of an archive, in the order of the config's diff ids. */
export interface LayerPlan {
  /** The member name in the archive, such as `<id>/layer.tar` or `blobs/sha256/<hex>`. */
  member: string;
  /** The diff id the config gives for this layer: `sha256:<hex>` of its uncompressed tar. */
  diffId: string;
  /** The blob's size in bytes as stored in the archive (compressed or not). */
  size: number;
}

/**
 * An image read from an archive, with the config's and every blob's digest
 * checked. Only the diff ids are left to check, while the layers are
 * decompressed.
 */
export interface ImagePlan {
  /** The config JSON exactly as stored, whose sha256 is the image id. */
  configBytes: Buffer;
  /** The config's member name in the archive. */
  configMember: string;
  config: ParsedImageConfig;
  /** Bottom layer first. */
  layers: LayerPlan[];
  /** `NAME:TAG` references that the archive gives the image, in familiar form. */
  names: string[];
}
