// Writers for the two image formats that `m-docker image import` reads: the
// classic `docker save` archive and the OCI image layout (as a directory and
// as a tar). Both take the same image config and uncompressed layer tars, so
// the image id (the config's sha256) is the same in every format.
//
// Layouts follow the OCI image spec v1.1 (image-layout.md, manifest.md,
// config.md) and the archives that `docker save` wrote before Docker 25.

import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { directory, FIXED_TIME_TEXT, file, packTar } from './tar-build.mjs';

export const MEDIA_TYPES = Object.freeze({
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
});

/** Returns the lowercase hex sha256 of the bytes. */
export function sha256Hex(data) {
  return createHash('sha256').update(data).digest('hex');
}

function json(value) {
  return Buffer.from(JSON.stringify(value));
}

/**
 * Builds an image config as JSON bytes. `diffIds` are the `sha256:` digests
 * of the uncompressed layer tars, lowest first, and `history` has one
 * `created_by` text per layer.
 */
export function imageConfig({ architecture, diffIds, history, env, cmd }) {
  const created = FIXED_TIME_TEXT;
  return json({
    architecture,
    os: 'linux',
    created,
    config: { Env: env, Cmd: cmd },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: history.map((createdBy) => ({ created, created_by: createdBy })),
  });
}

/** Splits `name:tag` at its last colon. */
function splitRepoTag(repoTag) {
  const colon = repoTag.lastIndexOf(':');
  return { repository: repoTag.slice(0, colon), tag: repoTag.slice(colon + 1) };
}

/**
 * Builds a `docker save` archive: one directory per layer with `VERSION`,
 * `json` and `layer.tar`, the config as `<sha256>.json`, `manifest.json`
 * and `repositories`. Returns the archive's bytes with the member names of
 * the config and of each layer.tar.
 *
 * docker save names a layer directory after a v1 layer id, which is not the
 * layer's digest. This writer derives that id from the parent's id and the
 * layer's sha256, so an importer that takes the directory name for the
 * digest fails on these archives too.
 */
export async function dockerSaveArchive({ config, layers, repoTag }) {
  const configName = `${sha256Hex(config)}.json`;
  const members = [file(configName, config)];
  const layerPaths = [];
  let parentId = '';

  for (const layer of layers) {
    const id = sha256Hex(`${parentId} ${sha256Hex(layer)}`);
    const v1Json = { id, created: FIXED_TIME_TEXT, os: 'linux' };
    if (parentId) v1Json.parent = parentId;

    members.push(directory(id), file(`${id}/VERSION`, '1.0'), file(`${id}/json`, json(v1Json)));
    members.push(file(`${id}/layer.tar`, layer));
    layerPaths.push(`${id}/layer.tar`);
    parentId = id;
  }

  const { repository, tag } = splitRepoTag(repoTag);
  members.push(file('manifest.json', json([{ Config: configName, RepoTags: [repoTag], Layers: layerPaths }])));
  members.push(file('repositories', json({ [repository]: { [tag]: parentId } })));

  return { archive: await packTar(members), configName, layerPaths };
}

/**
 * Builds the files of an OCI image layout for one image and returns them
 * as a map from relative path to bytes, with the manifest's digest.
 * Each layer is `{ mediaType, data }` with `data` as stored in the blob.
 */
export function ociLayoutFiles({ config, layers, repoTag, architecture }) {
  const files = new Map();
  const addBlob = (mediaType, data) => {
    const digest = `sha256:${sha256Hex(data)}`;
    files.set(blobPath(digest), data);
    return { mediaType, digest, size: data.length };
  };

  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: addBlob(MEDIA_TYPES.config, config),
    layers: layers.map((layer) => addBlob(layer.mediaType, layer.data)),
  });
  const manifestDescriptor = addBlob(MEDIA_TYPES.manifest, manifest);

  const { tag } = splitRepoTag(repoTag);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [
      {
        ...manifestDescriptor,
        platform: { architecture, os: 'linux' },
        annotations: {
          'io.containerd.image.name': repoTag,
          'org.opencontainers.image.ref.name': tag,
        },
      },
    ],
  };
  files.set('index.json', json(index));
  files.set('oci-layout', json({ imageLayoutVersion: '1.0.0' }));

  return { files, manifestDigest: manifestDescriptor.digest };
}

/** Returns the layout path `blobs/sha256/<hex>` of a `sha256:<hex>` digest. */
export function blobPath(digest) {
  return `blobs/${digest.replace(':', '/')}`;
}

/** Packs the files of an OCI image layout into a tar, with their directories. */
export function ociArchive(files) {
  const members = [directory('blobs'), directory('blobs/sha256')];
  for (const [path, data] of files) members.push(file(path, data));
  return packTar(members);
}

/** Writes the files of an OCI image layout into `dir`, replacing what was there. */
export function writeOciLayout(dir, files) {
  rmSync(dir, { recursive: true, force: true });
  for (const [path, data] of files) {
    const target = join(dir, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, data);
  }
}
