// The image rows of `pnpm bench`: `m-docker image import` of an image of
// about 100 MiB, and `m-docker run --rm --image busybox /bin/true` beside
// `runc run` of a bundle with the same root filesystem.
//
// Both images come from scripts/test-images/build-test-images.mjs, built in
// the scratch directory without network. Every store and extracted tree
// lives there too, so the caller's removal of the scratch directory removes
// them, also after a failure.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { buildLargeImage, buildTestImages } from '../test-images/build-test-images.mjs';
import { readTicksPerSecond } from './background-load.mjs';
import { findOnPath } from './machine.mjs';
import { timeRun, yieldToEventLoop } from './measure.mjs';
import { prepareRuncWithRootfs } from './runc-bundle.mjs';

/** The name under which the busybox test image is imported for the run rows. */
export const IMAGE_NAME = 'busybox';

/** Returns the label of an image run row: `m-docker run --rm --image busybox /bin/true [CLI bun, init bun]`. */
export function imageRunLabel(tag) {
  return `m-docker run --rm --image ${IMAGE_NAME} /bin/true [${tag}]`;
}

/** Returns the label of the debug runs behind an image run's timeline. */
export function imageDebugLabel(tag) {
  return `./m-docker --debug run --rm --image ${IMAGE_NAME} /bin/true [${tag}]`;
}

/** Returns the key of an image run's timeline, apart from the keys of section 2. */
export function imageTimelineKey(tag) {
  return `--image ${tag}`;
}

export const RUNC_IMAGE_LABEL = 'runc run /bin/true (busybox image rootfs)';

/** Returns the combinations whose CLI and init share a runtime: the ones the image rows measure. */
export function imageCombinations(combinations) {
  return combinations.filter((combination) => combination.cli === combination.init);
}

/**
 * Builds both images into `scratchDir/images`, imports the busybox image
 * into the store `scratchDir/run-store` with the first combination's
 * environment, and prepares runc with the busybox image's flattened root
 * filesystem. Returns `{ available: true, busybox, large, runStore, runc }`,
 * where `busybox` and `large` are the results of buildTestImages() and
 * buildLargeImage(), and `runc` that of prepareRuncWithRootfs(). Returns
 * `{ available: false, reason }` when the images cannot be built, for
 * example without a static busybox. A failed import throws.
 */
export async function prepareImages({ root, launcher, scratchDir, combinations }) {
  const dir = join(scratchDir, 'images');
  let busybox;
  let large;
  try {
    busybox = await buildTestImages(dir);
    large = await buildLargeImage(dir);
  } catch (error) {
    return { available: false, reason: `cannot build the test images: ${error.message}` };
  }

  const runStore = join(scratchDir, 'run-store');
  const argv = [launcher, '--root', runStore, 'image', 'import', busybox.dockerArchive, IMAGE_NAME];
  timeRun(argv, root, combinations[0].env);

  const runc = prepareRuncWithRootfs(scratchDir, busybox.rootfsTar);
  return { available: true, busybox, large, runStore, runc };
}

/**
 * Builds the image run rows, measured in the same interleaved rounds as
 * section 1: `latency` are the rows of the table, `debug` the `--debug`
 * runs whose stderr goes to `onDebugRun(key, run)`.
 */
export function buildImageBenchmarks({ root, launcher, combinations, images, onDebugRun }) {
  const runArgs = ['run', '--rm', '--image', IMAGE_NAME, '/bin/true'];
  const latency = [];
  const debug = [];

  for (const combination of imageCombinations(combinations)) {
    const argv = [launcher, '--root', images.runStore, ...runArgs];
    latency.push({ label: imageRunLabel(combination.tag), argv: () => argv, cwd: root, env: combination.env });

    const key = imageTimelineKey(combination.tag);
    const debugArgv = [launcher, '--root', images.runStore, '--debug', ...runArgs];
    debug.push({ label: imageDebugLabel(combination.tag), argv: () => debugArgv, cwd: root, env: combination.env, onRun: (run) => onDebugRun(key, run) });
  }
  if (images.runc.available) latency.push({ label: RUNC_IMAGE_LABEL, argv: images.runc.argv });
  return { latency, debug };
}

/** Returns the names of the container directories left in the run store, which `--rm` should have removed. */
export function leftoverContainers(runStore) {
  try {
    return readdirSync(join(runStore, 'containers'));
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
}

/** Returns the number of mounts in this process's mount namespace, the lines that findmnt(8) lists. */
export function countMounts() {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).length;
}

// ---------------------------------------------------------------------------
// Import times

/** Returns the label of an import row: `m-docker image import large-docker.tar.gz [CLI bun]`. */
function importLabel(file, cli) {
  return `m-docker image import ${file} [CLI ${cli}]`;
}

export const TAR_FLOOR_LABEL = 'tar --extract of the three layer tars (floor)';

// Extracts every layer.tar of the docker save archive into `dir` and returns
// their paths, lowest layer first, as manifest.json lists them.
function extractLayerTars(tar, archive, dir) {
  mkdirSync(dir, { recursive: true });
  const extract = spawnSync(tar, ['--extract', '--file', archive, '--directory', dir], { encoding: 'utf8' });
  if (extract.status !== 0) throw new Error(`tar --extract of ${archive} failed: ${(extract.stderr || extract.error?.message || '').trim()}`);
  const [manifest] = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  return manifest.Layers.map((layer) => join(dir, layer));
}

// One sh runs tar once per layer, lowest first, into the same directory:
// the file writes of an unpack, without digests, whiteout rules or a store.
const TAR_LOOP = 'target=$1; shift; for layer; do tar --extract --file "$layer" --directory "$target" || exit 1; done';

/**
 * Builds the import rows: one per CLI runtime and archive (plain and gzip),
 * and the tar floor when tar is installed. `prepare()` runs before and
 * `reset()` after each timed run, so every run writes into a directory that
 * did not exist before. `rateBytes` is what MiB/s divides: the uncompressed
 * docker save archive for imports, the three layer tars for the floor.
 * Returns `{ rows, floorSkipped }`, the reason when tar is missing.
 */
function buildImportRows({ root, launcher, combinations, large, scratchDir }) {
  const store = join(scratchDir, 'import-store');
  const reset = () => rmSync(store, { recursive: true, force: true });
  const rows = [];

  for (const combination of imageCombinations(combinations)) {
    for (const path of [large.dockerArchive, large.dockerArchiveGz]) {
      const file = path.slice(path.lastIndexOf('/') + 1);
      const argv = [launcher, '--root', store, 'image', 'import', path];
      rows.push({ label: importLabel(file, combination.cli), argv, cwd: root, env: combination.env, rateBytes: large.dockerArchiveBytes, prepare: reset, reset });
    }
  }

  const tar = findOnPath('tar');
  if (tar === undefined) return { rows, floorSkipped: 'tar is not installed' };
  const layers = extractLayerTars(tar, large.dockerArchive, join(scratchDir, 'large-layers'));
  const target = join(scratchDir, 'tar-floor');
  const prepare = () => {
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target);
  };
  const removeTarget = () => rmSync(target, { recursive: true, force: true });
  const rateBytes = large.layerBytes.reduce((sum, size) => sum + size, 0);
  rows.push({ label: TAR_FLOOR_LABEL, argv: ['sh', '-c', TAR_LOOP, 'sh', target, ...layers], rateBytes, prepare, reset: removeTarget });
  return { rows, floorSkipped: undefined };
}

// The user and system CPU time, in clock ticks, of every child that this
// process has waited for: cutime and cstime of /proc/self/stat (proc(5)),
// which include the children's own waited-for children.
function readChildTicks() {
  const afterName = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const [user, system] = afterName.slice(13, 15).map(Number);
  return { user, system };
}

/**
 * Times `m-docker image import` of the large image `runs` times per row,
 * interleaved like the latencies: every round runs every row once, each
 * into a new store. There is no warm-up run, because one import takes
 * seconds and the latency rounds before it have loaded the CLI's files.
 * Resolves to `{ rows, times, cpu, storeFilesystem, floorSkipped }`:
 * `times` maps each row's label to its wall-clock times in milliseconds,
 * and `cpu` to `{ userMs, systemMs }` per run, the CPU time of the command
 * and its children.
 */
export async function measureImports({ root, launcher, combinations, large, scratchDir, runs }) {
  const { rows, floorSkipped } = buildImportRows({ root, launcher, combinations, large, scratchDir });
  const times = new Map(rows.map((row) => [row.label, []]));
  const cpu = new Map(rows.map((row) => [row.label, []]));
  const msPerTick = 1000 / readTicksPerSecond();

  for (let round = 0; round < runs; round++) {
    for (const row of rows) {
      row.prepare();
      const before = readChildTicks();
      const run = timeRun(row.argv, row.cwd, row.env);
      const after = readChildTicks();
      times.get(row.label).push(run.elapsedMs);
      cpu.get(row.label).push({ userMs: (after.user - before.user) * msPerTick, systemMs: (after.system - before.system) * msPerTick });
      row.reset();
      await yieldToEventLoop();
    }
  }
  return { rows, times, cpu, storeFilesystem: describeFilesystem(scratchDir), floorSkipped };
}

// `ext4 (/dev/vda, mounted on /)`, from findmnt(8), or why it is unknown.
function describeFilesystem(path) {
  const result = spawnSync('findmnt', ['--noheadings', '--output', 'FSTYPE,SOURCE,TARGET', '--target', path], { encoding: 'utf8' });
  const fields = result.status === 0 ? result.stdout.trim().split(/\s+/) : [];
  if (fields.length !== 3) return 'unknown file system (findmnt failed)';
  return `${fields[0]} (${fields[1]}, mounted on ${fields[2]})`;
}
