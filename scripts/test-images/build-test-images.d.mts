// Types of build-test-images.mjs for the TypeScript tests that import it.

import type { ImageErrorCode } from '../../packages/images/src/errors.js';

export interface BuildOptions {
  /** The statically linked busybox to put into the image. Default `/bin/busybox` (Debian's busybox-static). */
  busyboxPath?: string;
}

/** Paths and digests of the busybox test image. Every path is inside the `outDir` given to {@link buildTestImages}. */
export interface TestImages {
  /** `busybox-docker.tar`: a classic `docker save` archive tagged `busybox:latest`. */
  dockerArchive: string;
  /** `busybox-oci/`: an OCI image layout directory with gzip-compressed layers. */
  ociLayout: string;
  /** `busybox-oci.tar`: the same OCI image layout as a tar. */
  ociArchive: string;
  /** `busybox-rootfs.tar`: the merged root filesystem without whiteouts, as `docker export` writes it. */
  rootfsTar: string;
  /** `busybox-rootfs.tar.gz`: the same tar, gzip-compressed. */
  rootfsTarGz: string;
  /** `sha256:<hex>` of the config, which is the image id in both archive formats. */
  configDigest: string;
  /** `sha256:<hex>` of the OCI manifest. */
  manifestDigest: string;
  /** `sha256:<hex>` of each uncompressed layer tar, lowest first. */
  diffIds: string[];
  /** The config's architecture, `amd64` or `arm64`. */
  architecture: string;
}

/** One archive that a correct importer rejects. */
export interface BadArchive {
  /** The file name inside the output directory, such as `traversal.tar`. */
  file: string;
  /** The archive's one defect. */
  defect: string;
  /** The code of the ImageError that importing the archive must throw. */
  expectedCode: ImageErrorCode;
}

/** A {@link BadArchive} after {@link buildBadArchives} has written it. */
export interface BuiltBadArchive extends BadArchive {
  /** The archive's path. */
  path: string;
  /** The archive member that the error message should name, or null where the defect is in the whole file. */
  entry: string | null;
}

export const DEFAULT_BUSYBOX_PATH: string;
export const BAD_ARCHIVES: readonly BadArchive[];

/** Returns the image config architecture for a Node `process.arch` value; throws for any but x64 and arm64. */
export function ociArchitecture(nodeArch?: string): string;

/** Writes the busybox test image into `outDir` in every format the importer reads. */
export function buildTestImages(outDir: string, options?: BuildOptions): Promise<TestImages>;

/** Writes every archive of {@link BAD_ARCHIVES} into `outDir`. */
export function buildBadArchives(outDir: string, options?: BuildOptions): Promise<BuiltBadArchive[]>;
