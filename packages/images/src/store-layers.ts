import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import type { ArchiveFiles } from './archive-files.js';
import { type Compression, compressionOf, MAGIC_LENGTH, readDecompressed, readHead } from './archive-input.js';
import type { LayerPlan } from './archive-plan.js';
import { ImageError } from './errors.js';
import { hexOf, layerDir, type StorePaths } from './store-paths.js';
import type { LayerInfo } from './store-records.js';
import { unpackLayer } from './unpack-layer.js';

/** A layer unpacked into the staging directory: `<dir>/diff` and `<dir>/layer.json`, ready to be renamed into the store. */
export interface StagedLayer {
  dir: string;
  info: LayerInfo;
}

/** Returns layer.json of a stored layer, or undefined when the store has no such layer. */
export async function readStoredLayer(paths: StorePaths, diffId: string): Promise<LayerInfo | undefined> {
  try {
    return JSON.parse(await readFile(join(layerDir(paths, diffId), 'layer.json'), 'utf8')) as LayerInfo;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ImageError('STORE_FAILED', `cannot read layer ${diffId}: ${(error as Error).message}`, {
      path: layerDir(paths, diffId),
      cause: error,
    });
  }
}

/** Returns whether the store has a directory for this layer. */
export async function layerExists(paths: StorePaths, diffId: string): Promise<boolean> {
  try {
    await stat(layerDir(paths, diffId));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ImageError('STORE_FAILED', `cannot read layer ${diffId}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Unpacks one layer of an archive into `<stagingLayers>/<hex>` and checks
 * its diff id. Throws DIGEST_MISMATCH naming the member when the
 * uncompressed tar does not hash to the diff id of the config.
 */
export async function stageLayer(
  files: ArchiveFiles,
  layer: LayerPlan,
  stagingLayers: string,
  onBytes: (bytes: number) => void,
): Promise<StagedLayer> {
  const dir = join(stagingLayers, hexOf(layer.diffId));
  await mkdir(join(dir, 'diff'), { recursive: true });

  const { diffId, size } = await unpackFromArchive(files, layer, join(dir, 'diff'), onBytes);
  checkDiffId(files, layer, diffId);
  return writeLayerInfo(dir, { diffId, size });
}

/** Writes `<dir>/layer.json` of a staged layer. */
export async function writeLayerInfo(dir: string, info: LayerInfo): Promise<StagedLayer> {
  await writeFile(join(dir, 'layer.json'), `${JSON.stringify(info)}\n`);
  return { dir, info };
}

/**
 * Hashes a layer of an archive without unpacking it, for a layer that the
 * store has already: the archive must still match the diff id of its config.
 */
export async function verifyLayer(files: ArchiveFiles, layer: LayerPlan, onBytes: (bytes: number) => void): Promise<void> {
  const { path, compression, label } = await openLayer(files, layer);
  const hash = createHash('sha256');
  for await (const chunk of readDecompressed(path, compression, label, onBytes)) hash.update(chunk);
  checkDiffId(files, layer, `sha256:${hash.digest('hex')}`);
}

/**
 * Unpacks a decompressed stream into `target` with unpackLayer. An error
 * of the stream itself (a truncated gzip stream) is thrown as the stream
 * threw it, not as unpackLayer's wrapper.
 */
export async function unpackStream(
  path: string,
  compression: Compression,
  label: string,
  target: string,
  onBytes: (bytes: number) => void,
): Promise<LayerInfo> {
  let inputError: unknown;
  async function* tracked(): AsyncGenerator<Buffer> {
    try {
      yield* readDecompressed(path, compression, label, onBytes);
    } catch (error) {
      inputError = error;
      throw error;
    }
  }

  try {
    return await unpackLayer(Readable.from(tracked()), target, { label });
  } catch (error) {
    throw inputError ?? error;
  }
}

async function unpackFromArchive(files: ArchiveFiles, layer: LayerPlan, target: string, onBytes: (bytes: number) => void): Promise<LayerInfo> {
  const { path, compression, label } = await openLayer(files, layer);
  return unpackStream(path, compression, label, target, onBytes);
}

async function openLayer(files: ArchiveFiles, layer: LayerPlan): Promise<{ path: string; compression: Compression; label: string }> {
  const member = await files.locate(layer.member);
  if (member === undefined) {
    throw new ImageError('UNKNOWN_FORMAT', `${files.source} has no layer ${JSON.stringify(layer.member)}`, { entry: layer.member });
  }
  const label = `${layer.member} in ${files.source}`;
  const head = await readHead(member.path, MAGIC_LENGTH);
  const compression = compressionOf(head, label, () => 'export the image with gzip-compressed or uncompressed layers');
  return { path: member.path, compression, label };
}

function checkDiffId(files: ArchiveFiles, layer: LayerPlan, actual: string): void {
  if (actual === layer.diffId) return;
  throw new ImageError(
    'DIGEST_MISMATCH',
    `layer ${layer.member} in ${files.source} has diff id ${actual}, but the image config says ${layer.diffId}: the archive is corrupt`,
    { entry: layer.member },
  );
}
