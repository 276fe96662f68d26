#!/usr/bin/env node
// Builds the container images that the tests of `m-docker image import` and
// `m-docker run --image` use, without network access and without docker:
// a two-layer busybox image in every format the importer reads, and small
// archives that a correct importer must reject. buildLargeImage() writes an
// image of about 100 MiB for `pnpm bench`; the command line does not.
//
//   node scripts/test-images/build-test-images.mjs OUTDIR
//
// The busybox binary comes from Debian's busybox-static package. Output is
// deterministic (fixed mtimes, sorted members), so digests change only when
// that binary, this script or the zlib and zstd builds change.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  blobPath,
  dockerSaveArchive,
  imageConfig,
  MEDIA_TYPES,
  ociArchive,
  ociLayoutFiles,
  sha256Hex,
  writeOciLayout,
} from './image-formats.mjs';
import { PAYLOAD_PARTS, payloadBytes, payloadLayerMembers } from './payload-layer.mjs';
import { directory, file, findMember, flattenLayers, hardLink, packTar, symlink } from './tar-build.mjs';

export const DEFAULT_BUSYBOX_PATH = '/bin/busybox';

const BUSYBOX_REPO_TAG = 'busybox:latest';
const SMALL_REPO_TAG = 'small:latest';
const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

// Node's process.arch names and the GOARCH names that image configs use.
const OCI_ARCHITECTURES = { x64: 'amd64', arm64: 'arm64' };

/** Returns the image config architecture of this machine, such as `amd64`. */
export function ociArchitecture(nodeArch = process.arch) {
  const architecture = OCI_ARCHITECTURES[nodeArch];
  if (architecture === undefined) {
    throw new Error(`no image architecture known for process.arch ${nodeArch}: expected x64 or arm64`);
  }
  return architecture;
}

// ---------------------------------------------------------------------------
// The busybox image

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'app:x:1000:1000:app:/home/app:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');

const GROUP = ['root:x:0:', 'app:x:1000:', 'extra:x:2000:app', 'more:x:2001:app', 'nogroup:x:65534:', ''].join('\n');

const PT_INTERP = 3;

/**
 * Reads the busybox binary, checks that it is statically linked, and lists
 * its applets and version. The errors name the Debian package to install.
 */
function readBusybox(path) {
  let binary;
  try {
    binary = readFileSync(path);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
    throw new Error(`${path} not found: install the Debian package busybox-static`, { cause: error });
  }

  if (hasProgramInterpreter(binary, path)) {
    throw new Error(
      `${path} is dynamically linked, so it cannot run in an image without libc: install the Debian package busybox-static`,
    );
  }

  const applets = execFileSync(path, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((applet) => applet !== '' && applet !== 'busybox' && !applet.includes('/'))
    .sort();
  const help = execFileSync(path, ['--help'], { encoding: 'utf8' });
  const version = /^BusyBox v(\d+(?:\.\d+)*)/m.exec(help)?.[1];
  if (version === undefined) throw new Error(`${path} --help printed no "BusyBox vX.Y.Z" line`);

  return { binary, applets, version };
}

/** Reports whether an ELF file has a PT_INTERP program header, which only dynamically linked programs have. */
function hasProgramInterpreter(binary, path) {
  if (binary.length < 64 || binary.readUInt32BE(0) !== 0x7f454c46) {
    throw new Error(`${path} is not an ELF executable: install the Debian package busybox-static`);
  }

  const is64Bit = binary[4] === 2;
  const littleEndian = binary[5] === 1;
  const u16 = (offset) => (littleEndian ? binary.readUInt16LE(offset) : binary.readUInt16BE(offset));
  const u32 = (offset) => (littleEndian ? binary.readUInt32LE(offset) : binary.readUInt32BE(offset));
  const u64 = (offset) => Number(littleEndian ? binary.readBigUInt64LE(offset) : binary.readBigUInt64BE(offset));

  const tableOffset = is64Bit ? u64(32) : u32(28);
  const entrySize = u16(is64Bit ? 54 : 42);
  const entryCount = u16(is64Bit ? 56 : 44);
  for (let index = 0; index < entryCount; index++) {
    if (u32(tableOffset + index * entrySize) === PT_INTERP) return true;
  }
  return false;
}

/** Lists the members of the lower layer: busybox, its applet links, users and groups, and the cases that layer 2 changes. */
function busyboxLowerLayer({ binary, applets, version }) {
  const osRelease = [
    'NAME="m-docker test busybox"',
    'ID=busybox',
    `VERSION_ID=${version}`,
    `PRETTY_NAME="m-docker test busybox ${version}"`,
    '',
  ].join('\n');

  return [
    directory('bin'),
    file('bin/busybox', binary, { mode: 0o755 }),
    hardLink('bin/busybox-hardlink', 'bin/busybox', { mode: 0o755 }),
    ...applets.map((applet) => symlink(`bin/${applet}`, 'busybox')),
    directory('data'),
    file('data/old.txt', 'old\n'),
    directory('dev'),
    directory('etc'),
    file('etc/group', GROUP),
    file('etc/motd', 'lower\n'),
    file('etc/os-release', osRelease),
    file('etc/passwd', PASSWD),
    directory('home'),
    directory('home/app', { uid: 1000, gid: 1000 }),
    file('lower-only', 'lower-only\n'),
    directory('proc'),
    directory('root', { mode: 0o700 }),
    directory('sys'),
    directory('tmp', { mode: 0o1777 }),
    file('xattr.txt', 'carries the xattr user.m-docker.test=lower\n', {
      pax: { 'SCHILY.xattr.user.m-docker.test': 'lower' },
    }),
  ];
}

/** Lists the members of the upper layer: a whiteout, an opaque directory, a replaced file and a new one. */
function busyboxUpperLayer() {
  return [
    file('.wh.lower-only', ''),
    directory('data'),
    file('data/.wh..wh..opq', ''),
    file('data/new.txt', 'new\n'),
    directory('etc'),
    file('etc/motd', 'upper\n'),
    file('upper-only', 'upper-only\n'),
  ];
}

/**
 * Builds the busybox image's layers and config. `extraLayers` lists
 * `{ members, createdBy }` for layers above the two busybox layers.
 */
async function buildBusyboxImage(busyboxPath, extraLayers = []) {
  const busybox = readBusybox(busyboxPath);
  const layerMembers = [busyboxLowerLayer(busybox), busyboxUpperLayer(), ...extraLayers.map((layer) => layer.members)];
  const layers = [];
  for (const members of layerMembers) layers.push(await packTar(members));

  const diffIds = layers.map((layer) => `sha256:${sha256Hex(layer)}`);
  const architecture = ociArchitecture();
  const config = imageConfig({
    architecture,
    diffIds,
    env: DEFAULT_ENV,
    cmd: ['sh'],
    history: [
      `build-test-images.mjs: busybox ${busybox.version}, its applet links and base files`,
      'build-test-images.mjs: a whiteout, an opaque directory and a replaced file',
      ...extraLayers.map((layer) => layer.createdBy),
    ],
  });

  return { layerMembers, layers, diffIds, config, architecture };
}

/**
 * Writes the busybox test image into `outDir` in every format the importer
 * reads and returns the paths, with the digests a test can compare with:
 *
 * - `dockerArchive`: `busybox-docker.tar`, a classic `docker save` archive
 * - `ociLayout`: `busybox-oci/`, an OCI image layout with gzip layers
 * - `ociArchive`: `busybox-oci.tar`, the same layout as a tar
 * - `rootfsTar`, `rootfsTarGz`: the merged root filesystem without
 *   whiteouts, as `docker export` writes it, plain and gzip-compressed
 * - `configDigest` (the image id), `manifestDigest` (OCI only), `diffIds`
 *   and `architecture`
 */
export async function buildTestImages(outDir, { busyboxPath = DEFAULT_BUSYBOX_PATH } = {}) {
  mkdirSync(outDir, { recursive: true });
  const image = await buildBusyboxImage(busyboxPath);
  const paths = {
    dockerArchive: join(outDir, 'busybox-docker.tar'),
    ociLayout: join(outDir, 'busybox-oci'),
    ociArchive: join(outDir, 'busybox-oci.tar'),
    rootfsTar: join(outDir, 'busybox-rootfs.tar'),
    rootfsTarGz: join(outDir, 'busybox-rootfs.tar.gz'),
  };

  const docker = await dockerSaveArchive({ config: image.config, layers: image.layers, repoTag: BUSYBOX_REPO_TAG });
  writeFileSync(paths.dockerArchive, docker.archive);

  const oci = ociLayoutFiles({
    config: image.config,
    layers: image.layers.map((layer) => ({ mediaType: MEDIA_TYPES.layerGzip, data: gzipSync(layer) })),
    repoTag: BUSYBOX_REPO_TAG,
    architecture: image.architecture,
  });
  writeOciLayout(paths.ociLayout, oci.files);
  writeFileSync(paths.ociArchive, await ociArchive(oci.files));

  const rootfs = await packTar(flattenLayers(image.layerMembers));
  writeFileSync(paths.rootfsTar, rootfs);
  writeFileSync(paths.rootfsTarGz, gzipSync(rootfs));

  return {
    ...paths,
    configDigest: `sha256:${sha256Hex(image.config)}`,
    manifestDigest: oci.manifestDigest,
    diffIds: image.diffIds,
    architecture: image.architecture,
  };
}

// ---------------------------------------------------------------------------
// The large image of the import benchmark

const LARGE_REPO_TAG = 'large:latest';

/**
 * Writes the import benchmark's image into `outDir`: the busybox image with
 * the payload layer of payload-layer.mjs on top, about 100 MiB in all.
 * Returns the paths and sizes in bytes of
 *
 * - `dockerArchive`: `large-docker.tar`, a classic `docker save` archive
 *   tagged `large:latest`
 * - `dockerArchiveGz`: `large-docker.tar.gz`, the same archive compressed
 *   with gzip at zlib's default level, as `docker save | gzip` writes it
 *
 * with `configDigest` (the image id), `layerBytes` (each uncompressed
 * layer tar, lowest first), `payloadFiles` and `payloadBytes` (the payload
 * layer's file count and file data).
 */
export async function buildLargeImage(outDir, { busyboxPath = DEFAULT_BUSYBOX_PATH } = {}) {
  mkdirSync(outDir, { recursive: true });
  const members = payloadLayerMembers();
  const createdBy = `build-test-images.mjs: ${PAYLOAD_PARTS.map((part) => `${part.count} ${part.content} files of ${part.size} bytes in ${part.dir}`).join(', ')}`;
  const image = await buildBusyboxImage(busyboxPath, [{ members, createdBy }]);

  const docker = await dockerSaveArchive({ config: image.config, layers: image.layers, repoTag: LARGE_REPO_TAG });
  const compressed = gzipSync(docker.archive);
  const paths = { dockerArchive: join(outDir, 'large-docker.tar'), dockerArchiveGz: join(outDir, 'large-docker.tar.gz') };
  writeFileSync(paths.dockerArchive, docker.archive);
  writeFileSync(paths.dockerArchiveGz, compressed);

  return {
    ...paths,
    dockerArchiveBytes: docker.archive.length,
    dockerArchiveGzBytes: compressed.length,
    configDigest: `sha256:${sha256Hex(image.config)}`,
    layerBytes: image.layers.map((layer) => layer.length),
    payloadFiles: members.filter((member) => member.type === 'file').length,
    payloadBytes: payloadBytes(),
  };
}

// ---------------------------------------------------------------------------
// Archives that a correct importer rejects

/**
 * One row per archive of {@link buildBadArchives}: its file name, its one
 * defect, and the ImageError code (packages/images/src/errors.ts) that an
 * import of it must fail with.
 */
export const BAD_ARCHIVES = Object.freeze([
  {
    file: 'truncated.tar',
    expectedCode: 'TRUNCATED',
    defect: 'docker save archive cut in the middle of its layer.tar member',
  },
  {
    file: 'wrong-digest.tar',
    expectedCode: 'DIGEST_MISMATCH',
    defect: "docker save archive whose layer.tar differs from the config's diff_ids (same size, one word changed)",
  },
  {
    file: 'wrong-blob-digest-oci.tar',
    expectedCode: 'DIGEST_MISMATCH',
    defect: 'OCI archive whose uncompressed layer blob does not match its name and descriptor digest (same size)',
  },
  {
    file: 'traversal.tar',
    expectedCode: 'UNSAFE_PATH',
    defect: 'docker save archive whose layer has the member ../../escape-traversal',
  },
  {
    file: 'absolute.tar',
    expectedCode: 'UNSAFE_PATH',
    defect: 'docker save archive whose layer has the member /escape-absolute',
  },
  {
    file: 'symlink-escape.tar',
    expectedCode: 'UNSAFE_PATH',
    defect: 'docker save archive whose layer has the symlink link -> /tmp and then the file link/escape-symlink',
  },
  {
    file: 'hardlink-escape.tar',
    expectedCode: 'UNSAFE_PATH',
    defect: 'docker save archive whose layer has the hard link escape-hardlink -> ../../../etc/passwd',
  },
  {
    file: 'unknown-media-type-oci.tar',
    expectedCode: 'UNKNOWN_MEDIA_TYPE',
    defect: 'OCI archive whose manifest gives its layer the media type application/x-unknown',
  },
  {
    file: 'wrong-arch.tar',
    expectedCode: 'WRONG_PLATFORM',
    defect: 'docker save archive whose config sets architecture s390x',
  },
  {
    file: 'zstd.tar.zst',
    expectedCode: 'UNSUPPORTED_COMPRESSION',
    defect: 'the busybox docker save archive compressed with zstd',
  },
  {
    file: 'not-an-archive.tar',
    expectedCode: 'UNKNOWN_FORMAT',
    defect: 'about 2 KiB of plain text, longer than one tar header block',
  },
]);

// The small images below have one layer with this file. The tampered text
// has the same length, so a changed layer keeps its size and stays a valid
// tar (the tar header checksum does not cover member data).
const SMALL_FILE_TEXT = 'original layer content\n';
const TAMPERED_FILE_TEXT = 'tampered layer content\n';

function smallLayerMembers(extraMembers) {
  return [directory('etc'), file('etc/hello.txt', SMALL_FILE_TEXT), ...extraMembers];
}

function smallConfig(layer, architecture) {
  return imageConfig({
    architecture,
    diffIds: [`sha256:${sha256Hex(layer)}`],
    env: DEFAULT_ENV,
    cmd: ['sh'],
    history: ['build-test-images.mjs: one small layer'],
  });
}

/** Returns a copy of a small layer with its file text replaced by text of the same length. */
function tamperLayer(layer) {
  const at = layer.indexOf(SMALL_FILE_TEXT);
  if (at === -1) throw new Error('the small layer does not contain its file text');
  const tampered = Buffer.from(layer);
  tampered.write(TAMPERED_FILE_TEXT, at);
  return tampered;
}

/**
 * Builds a one-layer docker save archive. `replaceLayer` changes the stored
 * layer after the config has taken its digest.
 */
async function smallDockerArchive({ extraMembers = [], architecture = ociArchitecture(), replaceLayer } = {}) {
  const layer = await packTar(smallLayerMembers(extraMembers));
  const config = smallConfig(layer, architecture);
  const stored = replaceLayer ? replaceLayer(layer) : layer;
  return dockerSaveArchive({ config, layers: [stored], repoTag: SMALL_REPO_TAG });
}

/** Builds the files of a one-layer OCI layout whose layer blob is stored uncompressed. */
async function smallOciFiles({ layerMediaType = MEDIA_TYPES.layer } = {}) {
  const layer = await packTar(smallLayerMembers([]));
  const architecture = ociArchitecture();
  const layout = ociLayoutFiles({
    config: smallConfig(layer, architecture),
    layers: [{ mediaType: layerMediaType, data: layer }],
    repoTag: SMALL_REPO_TAG,
    architecture,
  });
  return { ...layout, layerBlob: blobPath(`sha256:${sha256Hex(layer)}`) };
}

function plainText() {
  const lines = [];
  for (let line = 1; line <= 40; line++) lines.push(`line ${line}: this file is plain text and not an archive`);
  return `${lines.join('\n')}\n`;
}

/** Compresses with the zstd command at level 3 with one worker thread (-T1), so the output does not depend on the machine's CPU count. */
function compressZstd(data) {
  try {
    return execFileSync('zstd', ['-q', '-3', '-T1', '-c'], { input: data, maxBuffer: 256 * 1024 * 1024 });
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
    throw new Error('zstd not found: install the Debian package zstd', { cause: error });
  }
}

// Each builder returns the archive's bytes and the member name that the
// importer's error message should contain, or null where the defect is in
// the whole file and not in one member.
const BAD_ARCHIVE_BUILDERS = {
  'truncated.tar': async () => {
    const { archive, layerPaths } = await smallDockerArchive();
    const layer = findMember(archive, layerPaths[0]);
    return { data: archive.subarray(0, layer.dataOffset + Math.floor(layer.size / 2)), entry: layerPaths[0] };
  },

  'wrong-digest.tar': async () => {
    const { archive, layerPaths } = await smallDockerArchive({ replaceLayer: tamperLayer });
    return { data: archive, entry: layerPaths[0] };
  },

  'wrong-blob-digest-oci.tar': async () => {
    const { files, layerBlob } = await smallOciFiles();
    files.set(layerBlob, tamperLayer(files.get(layerBlob)));
    return { data: await ociArchive(files), entry: layerBlob };
  },

  'traversal.tar': async () => {
    const { archive } = await smallDockerArchive({ extraMembers: [file('../../escape-traversal', 'escaped\n')] });
    return { data: archive, entry: '../../escape-traversal' };
  },

  'absolute.tar': async () => {
    const { archive } = await smallDockerArchive({ extraMembers: [file('/escape-absolute', 'escaped\n')] });
    return { data: archive, entry: '/escape-absolute' };
  },

  'symlink-escape.tar': async () => {
    const extraMembers = [symlink('link', '/tmp'), file('link/escape-symlink', 'escaped\n')];
    const { archive } = await smallDockerArchive({ extraMembers });
    return { data: archive, entry: 'link/escape-symlink' };
  },

  'hardlink-escape.tar': async () => {
    const extraMembers = [hardLink('escape-hardlink', '../../../etc/passwd')];
    const { archive } = await smallDockerArchive({ extraMembers });
    return { data: archive, entry: 'escape-hardlink' };
  },

  'unknown-media-type-oci.tar': async () => {
    const { files, manifestDigest } = await smallOciFiles({ layerMediaType: 'application/x-unknown' });
    return { data: await ociArchive(files), entry: blobPath(manifestDigest) };
  },

  'wrong-arch.tar': async () => {
    const { archive, configName } = await smallDockerArchive({ architecture: 's390x' });
    return { data: archive, entry: configName };
  },

  'zstd.tar.zst': async ({ busyboxPath }) => {
    const image = await buildBusyboxImage(busyboxPath);
    const docker = await dockerSaveArchive({ config: image.config, layers: image.layers, repoTag: BUSYBOX_REPO_TAG });
    return { data: compressZstd(docker.archive), entry: null };
  },

  'not-an-archive.tar': async () => ({ data: Buffer.from(plainText()), entry: null }),
};

/**
 * Writes every archive of {@link BAD_ARCHIVES} into `outDir` and returns the
 * table's rows with `path` and `entry` added. `entry` is the archive member
 * that the error message should name, or null for zstd.tar.zst and
 * not-an-archive.tar.
 */
export async function buildBadArchives(outDir, { busyboxPath = DEFAULT_BUSYBOX_PATH } = {}) {
  mkdirSync(outDir, { recursive: true });
  const rows = [];

  for (const row of BAD_ARCHIVES) {
    const { data, entry } = await BAD_ARCHIVE_BUILDERS[row.file]({ busyboxPath });
    const path = join(outDir, row.file);
    writeFileSync(path, data);
    rows.push({ ...row, path, entry });
  }

  return rows;
}

// ---------------------------------------------------------------------------
// Command line

function isMainModule() {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

async function main(args) {
  if (args.length !== 1) {
    process.stderr.write('usage: node scripts/test-images/build-test-images.mjs OUTDIR\n');
    process.exitCode = 2;
    return;
  }

  const images = await buildTestImages(args[0]);
  const badArchives = await buildBadArchives(args[0]);
  const paths = [images.dockerArchive, images.ociLayout, images.ociArchive, images.rootfsTar, images.rootfsTarGz];
  for (const path of [...paths, ...badArchives.map((row) => row.path)]) process.stdout.write(`${path}\n`);
}

if (isMainModule()) {
  main(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`build-test-images: ${error.message}\n`);
    process.exitCode = 1;
  });
}
