import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { type ArchiveFiles, DirectoryFiles } from './archive-files.js';
import { type Compression, detectCompression } from './archive-input.js';
import { readOuterArchive, type StagedFiles } from './archive-outer.js';
import type { LayerPlan } from './archive-plan.js';
import { readDockerArchive } from './docker-archive.js';
import { ImageError } from './errors.js';
import { checkPlatform, type ParsedImageConfig, parseImageConfig, synthesizeRootfsConfig } from './image-config.js';
import { normalizeReference } from './image-reference.js';
import { readOciLayout } from './oci-layout.js';
import { layerExists, readStoredLayer, type StagedLayer, stageLayer, unpackStream, verifyLayer, writeLayerInfo } from './store-layers.js';
import type { LockTiming } from './store-lock.js';
import { withStoreLock } from './store-lock.js';
import { hexOf, imageRecordPath, layerDir, type StorePaths } from './store-paths.js';
import { type ImageRecord, readImage, readRepositories, type StoredImage, withRepoTags, writeJsonAtomic, writeRepositories } from './store-records.js';
import { removeTree } from './store-remove-tree.js';
import { cleanStale, createStagingDir } from './store-staging.js';

/** Progress of an import. The `read` phase copies and hashes the archive, and `unpack` decompresses and unpacks its layers. */
export interface ImportProgress {
  phase: 'read' | 'unpack';
  bytesDone: number;
  /**
   * The phase's total: the archive's size for `read`, the layer blobs' size
   * for `unpack`. For a directory, `read` counts the blobs it hashes against
   * the size of all files, so it may end below its total.
   */
  bytesTotal: number;
}

export interface ImportOptions {
  /** `NAME[:TAG]` for the image, in place of the names the archive gives. */
  reference?: string;
  onProgress?: (progress: ImportProgress) => void;
}

export interface ImportResult {
  image: ImageRecord;
  /** The `NAME:TAG` references that now point at the image: `reference`, or the archive's own names. */
  references: string[];
}

// An import runs in three steps:
//  1. read: the archive is copied into a staging directory of <root>/tmp,
//     and every blob digest is checked (archive-outer.ts).
//  2. unpack: each layer that the store lacks is unpacked into the staging
//     directory and its diff id checked. Layers that it has are only hashed.
//  3. commit, under the store's lock: staged layers are renamed into
//     <root>/layers, then the image record and repositories.json are
//     written, each atomically.
// Until step 3 nothing outside the staging directory changes, and a failed
// commit renames its layers back, so a failed import leaves the store as it
// was. A parallel `remove` may delete a layer that step 2 found in the
// store. The commit then reports it missing, and the import unpacks it and
// commits again.

/** Commits tried before an import gives up on layers that parallel removals keep deleting. */
const MAX_COMMIT_ATTEMPTS = 3;

/** An image that is read, checked and staged, waiting for its commit. */
interface PreparedImage {
  configBytes: Buffer;
  config: ParsedImageConfig;
  layers: LayerPlan[];
  references: string[];
  staged: Map<string, StagedLayer>;
  /** The archive's files, to unpack layers that vanished before the commit. Absent for a root file system tarball, which is always staged. */
  files?: ArchiveFiles;
}

/** Context of one import, passed to each step. */
interface ImportRun {
  paths: StorePaths;
  source: string;
  staging: string;
  reference: string | undefined;
  onProgress: ((progress: ImportProgress) => void) | undefined;
}

/** Imports a docker save archive, an OCI layout (tar or directory) or a root file system tarball into the store. */
export async function importArchive(paths: StorePaths, timing: LockTiming, source: string, options: ImportOptions = {}): Promise<ImportResult> {
  const reference = options.reference === undefined ? undefined : normalizeReference(options.reference);
  const input = await inspectInput(source);
  await cleanStale(paths);

  const staging = await createStagingDir(paths, 'import');
  const run: ImportRun = { paths, source, staging, reference, onProgress: options.onProgress };
  try {
    const prepared = input.directory ? await prepareDirectory(run) : await prepareFile(run, input.size);
    return await commitWithRetries(run, timing, prepared);
  } finally {
    // A staging directory that cannot be removed now is removed by a
    // later cleanStale, once this process has exited.
    await removeTree(staging).catch(() => {});
  }
}

async function inspectInput(source: string): Promise<{ directory: boolean; size: number }> {
  try {
    const stats = await stat(source);
    if (!stats.isDirectory() && stats.size === 0) {
      throw new ImageError('UNKNOWN_FORMAT', `${source} is empty: expected an image archive or a root file system tarball`, { path: source });
    }
    return { directory: stats.isDirectory(), size: stats.size };
  } catch (error) {
    if (ImageError.isInstance(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file or directory: check the path' : (error as Error).message;
    throw new ImageError('READ_FAILED', `cannot read ${source}: ${reason}`, { path: source, cause: error });
  }
}

async function prepareFile(run: ImportRun, size: number): Promise<PreparedImage> {
  const compression = await detectCompression(run.source);
  const outer = await readOuterArchive(run.source, compression, join(run.staging, 'archive'), reporter(run, 'read', size));

  if (outer.kind === 'image') {
    const format = formatOf(outer.files);
    if (format !== 'rootfs') {
      outer.files.checkLinks();
      return prepareArchive(run, outer.files, format);
    }
    await removeTree(join(run.staging, 'archive'));
  }
  return prepareRootfs(run, compression, size);
}

async function prepareDirectory(run: ImportRun): Promise<PreparedImage> {
  const files = new DirectoryFiles(run.source, reporter(run, 'read', await sumFileSizes(run.source, 3)));
  if (await files.locate('manifest.json')) return prepareArchive(run, files, 'docker');
  if (await files.locate('index.json')) return prepareArchive(run, files, 'oci');
  throw new ImageError(
    'UNKNOWN_FORMAT',
    `directory ${run.source} has neither index.json (an OCI layout) nor manifest.json (an unpacked docker save archive)`,
    { path: run.source },
  );
}

// Whether the outer tar is a docker save archive, an OCI layout or a root
// file system: docker save archives have manifest.json at the top, OCI
// layouts index.json, and a tar with neither is a root file system.
function formatOf(files: StagedFiles): 'docker' | 'oci' | 'rootfs' {
  if (files.has('manifest.json')) return 'docker';
  if (files.has('index.json')) return 'oci';

  const names = [...files.members.keys(), ...files.links.keys()];
  const imageLike = names.find((name) => name.startsWith('blobs/sha256/') || /^[0-9a-f]{64}\/layer\.tar$/.test(name));
  if (imageLike !== undefined) {
    throw new ImageError(
      'UNKNOWN_FORMAT',
      `${files.source} has image layers (${imageLike}) but neither manifest.json nor index.json: the archive is incomplete`,
      { entry: imageLike },
    );
  }
  return 'rootfs';
}

async function prepareArchive(run: ImportRun, files: ArchiveFiles, format: 'docker' | 'oci'): Promise<PreparedImage> {
  const plan = format === 'docker' ? await readDockerArchive(files) : await readOciLayout(files);
  const references = run.reference === undefined ? plan.names : [run.reference];
  checkPlatform(plan.config, references[0] ?? run.source, plan.configMember);

  const staged = await stageLayers(run, files, plan.layers, new Set());
  return { configBytes: plan.configBytes, config: plan.config, layers: plan.layers, references, staged, files };
}

// Each distinct layer is unpacked once, even when the image lists it twice
// (images often repeat an empty layer). `mustUnpack` names layers to unpack
// even though the store had them when this import started.
async function stageLayers(run: ImportRun, files: ArchiveFiles, layers: LayerPlan[], mustUnpack: Set<string>): Promise<Map<string, StagedLayer>> {
  const distinct = [...new Map(layers.map((layer) => [layer.diffId, layer])).values()];
  const onBytes = reporter(run, 'unpack', distinct.reduce((total, layer) => total + layer.size, 0));
  const stagingLayers = join(run.staging, 'layers');

  const staged = new Map<string, StagedLayer>();
  for (const layer of distinct) {
    if (!mustUnpack.has(layer.diffId) && (await layerExists(run.paths, layer.diffId))) {
      await verifyLayer(files, layer, onBytes);
      continue;
    }
    staged.set(layer.diffId, await stageLayer(files, layer, stagingLayers, onBytes));
  }
  return staged;
}

// `docker import` gives the image a new config, so a root file system
// tarball gets this machine's platform, the current time and no command.
async function prepareRootfs(run: ImportRun, compression: Compression, size: number): Promise<PreparedImage> {
  const unpacking = join(run.staging, 'layers', 'rootfs');
  await mkdir(join(unpacking, 'diff'), { recursive: true });
  const info = await unpackStream(run.source, compression, run.source, join(unpacking, 'diff'), reporter(run, 'unpack', size));

  const dir = join(run.staging, 'layers', hexOf(info.diffId));
  await rename(unpacking, dir);
  const staged = new Map([[info.diffId, await writeLayerInfo(dir, info)]]);

  const configBytes = synthesizeRootfsConfig(info.diffId, new Date(), basename(run.source));
  const config = parseImageConfig(configBytes, 'the image config made for the root file system');
  const layers = [{ member: basename(run.source), diffId: info.diffId, size }];
  return { configBytes, config, layers, references: run.reference === undefined ? [] : [run.reference], staged };
}

async function commitWithRetries(run: ImportRun, timing: LockTiming, prepared: PreparedImage): Promise<ImportResult> {
  for (let attempt = 1; ; attempt++) {
    const result = await commit(run.paths, timing, prepared);
    if ('image' in result) return { image: result.image, references: prepared.references };

    if (attempt === MAX_COMMIT_ATTEMPTS || prepared.files === undefined) {
      throw new ImageError(
        'STORE_FAILED',
        `layers ${result.missing.join(', ')} were removed from ${run.paths.root} while the import ran, ${attempt} times: import again when no removal runs`,
      );
    }
    const missing = new Set(result.missing);
    const layers = prepared.layers.filter((layer) => missing.has(layer.diffId));
    for (const [diffId, staged] of await stageLayers(run, prepared.files, layers, missing)) prepared.staged.set(diffId, staged);
  }
}

/**
 * Moves the staged layers into the store and writes the image record and
 * repositories.json, under the store's lock. Returns the diff ids of
 * layers that are neither in the store nor staged, and then changes
 * nothing. Undoes its renames when a step fails.
 */
async function commit(paths: StorePaths, timing: LockTiming, prepared: PreparedImage): Promise<{ image: ImageRecord } | { missing: string[] }> {
  const id = `sha256:${createHash('sha256').update(prepared.configBytes).digest('hex')}`;

  return withStoreLock(paths, timing, async () => {
    const added: StagedLayer[] = [];
    let recordWritten = false;
    try {
      await mkdir(paths.layers, { recursive: true });
      await mkdir(paths.images, { recursive: true });

      const missing: string[] = [];
      let size = 0;
      for (const diffId of new Set(prepared.layers.map((layer) => layer.diffId))) {
        const stored = await readStoredLayer(paths, diffId);
        const staged = prepared.staged.get(diffId);
        if (stored !== undefined) {
          size += stored.size;
        } else if (staged === undefined) {
          missing.push(diffId);
        } else {
          await rename(staged.dir, layerDir(paths, diffId));
          added.push(staged);
          size += staged.info.size;
        }
      }
      if (missing.length > 0) {
        await undoLayerRenames(paths, added);
        return { missing };
      }

      let image = await readImage(paths, id);
      if (image === undefined) {
        image = storedImage(id, prepared, size);
        await writeJsonAtomic(paths, imageRecordPath(paths, id), image);
        recordWritten = true;
      }

      const repositories = await readRepositories(paths);
      for (const reference of prepared.references) repositories[reference] = id;
      if (prepared.references.length > 0) await writeRepositories(paths, repositories);
      return { image: withRepoTags(image, repositories) };
    } catch (error) {
      if (recordWritten) await unlink(imageRecordPath(paths, id)).catch(() => {});
      await undoLayerRenames(paths, added);
      throw error;
    }
  });
}

// Renames layers back into the staging directory, which the import removes.
// A layer that cannot be moved back stays in the store unreferenced, and the
// next `remove` deletes it.
async function undoLayerRenames(paths: StorePaths, added: StagedLayer[]): Promise<void> {
  for (const staged of added.reverse()) {
    await rename(layerDir(paths, staged.info.diffId), staged.dir).catch(() => {});
  }
}

function storedImage(id: string, prepared: PreparedImage, size: number): StoredImage {
  const { platform, created, config } = prepared.config;
  const image: StoredImage = {
    id,
    architecture: platform.architecture,
    os: platform.os,
    layers: prepared.layers.map((layer) => layer.diffId),
    config,
    size,
  };
  if (created !== undefined) image.created = created;
  if (platform.variant !== undefined) image.variant = platform.variant;
  return image;
}

function reporter(run: ImportRun, phase: ImportProgress['phase'], bytesTotal: number): (bytes: number) => void {
  let bytesDone = 0;
  run.onProgress?.({ phase, bytesDone, bytesTotal });
  return (bytes) => {
    bytesDone += bytes;
    run.onProgress?.({ phase, bytesDone, bytesTotal });
  };
}

async function sumFileSizes(directory: string, depth: number): Promise<number> {
  let total = 0;
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) {
      if (depth > 1) total += await sumFileSizes(path, depth - 1);
    } else {
      total += (await stat(path).catch(() => ({ size: 0 }))).size;
    }
  }
  return total;
}
