import { ImageError } from './errors.js';

/**
 * Every media type the importer accepts, with what it is. OCI's names come
 * from media-types.md of the OCI image spec, and Docker's from its Image
 * Manifest V2, Schema 2. A layer's compression is read from its magic bytes,
 * so `compression` here only marks zstd, which m-docker cannot decompress (Node 20 has no zstd).
 */
export const MEDIA_TYPES = {
  'application/vnd.oci.image.index.v1+json': { kind: 'index' },
  'application/vnd.docker.distribution.manifest.list.v2+json': { kind: 'index' },
  'application/vnd.oci.image.manifest.v1+json': { kind: 'manifest' },
  'application/vnd.docker.distribution.manifest.v2+json': { kind: 'manifest' },
  'application/vnd.oci.image.config.v1+json': { kind: 'config' },
  'application/vnd.docker.container.image.v1+json': { kind: 'config' },
  'application/vnd.oci.image.layer.v1.tar': { kind: 'layer' },
  'application/vnd.oci.image.layer.v1.tar+gzip': { kind: 'layer' },
  'application/vnd.oci.image.layer.v1.tar+zstd': { kind: 'layer', compression: 'zstd' },
  'application/vnd.oci.image.layer.nondistributable.v1.tar': { kind: 'layer' },
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': { kind: 'layer' },
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': { kind: 'layer', compression: 'zstd' },
  'application/vnd.docker.image.rootfs.diff.tar.gzip': { kind: 'layer' },
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': { kind: 'layer' },
} as const satisfies Record<string, { kind: MediaKind; compression?: 'zstd' }>;

export type MediaKind = 'index' | 'manifest' | 'config' | 'layer';

/**
 * Returns the kind of `mediaType` and checks that it is one of `expected`.
 * Throws UNKNOWN_MEDIA_TYPE naming the type and the blob, and
 * UNSUPPORTED_COMPRESSION for zstd layers.
 */
export function checkMediaType(mediaType: unknown, expected: readonly MediaKind[], label: string): MediaKind {
  const known = typeof mediaType === 'string' ? MEDIA_TYPES[mediaType as keyof typeof MEDIA_TYPES] : undefined;
  if (known === undefined || !expected.includes(known.kind)) {
    const expectedKinds = expected.join(' or ');
    throw new ImageError(
      'UNKNOWN_MEDIA_TYPE',
      `${label} has media type ${JSON.stringify(mediaType)}, which is not a known OCI or Docker ${expectedKinds} type`,
      { entry: label },
    );
  }
  if ('compression' in known) {
    throw new ImageError(
      'UNSUPPORTED_COMPRESSION',
      `${label} is a zstd-compressed layer (${mediaType}), which m-docker cannot decompress (Node 20 has no zstd): export the image with gzip or uncompressed layers`,
      { entry: label },
    );
  }
  return known.kind;
}
