import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar, { type Header } from 'tar-stream';

import { machinePlatform } from '../src/image-platform.js';

// Builders of small image archives for the store tests: layer tars, image
// configs, docker save archives in docker's old and new layout, and OCI
// layouts as a tar or a directory. Every builder is deterministic, so the
// same input gives the same digests.

/** A tar member: tar-stream's header fields and the data. */
export interface Member extends Partial<Header> {
  name: string;
  data?: string | Buffer;
}

/** A fixed mtime, 2023-11-14T22:13:20Z. */
export const MTIME = new Date(1_700_000_000_000);

/** Builds a tar with tar-stream's pack. */
export async function tarOf(members: readonly Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const { data, ...header } of members) {
    const full = { mtime: MTIME, ...header };
    if (data === undefined) pack.entry(full);
    else pack.entry(full, data);
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Builds a layer tar of regular files, given as `path` to content. */
export function layerOf(files: Record<string, string>): Promise<Buffer> {
  return tarOf(Object.entries(files).map(([name, data]) => ({ name, data, mode: 0o644 })));
}

/** An image: its config JSON and its uncompressed layer tars, bottom first. */
export interface TestImage {
  config: Buffer;
  /** `sha256:<hex>` of the config: the image id. */
  id: string;
  layers: Buffer[];
  diffIds: string[];
}

export interface ImageOptions {
  architecture?: string;
  os?: string;
  cmd?: string[];
  entrypoint?: string[];
  env?: string[];
  /** Changes the config's diff ids after they are computed, to build corrupt archives. */
  diffIds?: (diffIds: string[]) => string[];
  /** Makes the config unique, so that two images with the same layers get different ids. */
  label?: string;
}

export function imageOf(layers: Buffer[], options: ImageOptions = {}): TestImage {
  const diffIds = layers.map((layer) => `sha256:${sha256(layer)}`);
  const platform = machinePlatform();
  const config = {
    architecture: options.architecture ?? platform.architecture,
    os: options.os ?? 'linux',
    created: '2024-01-02T03:04:05Z',
    config: {
      Env: options.env ?? ['PATH=/usr/bin:/bin'],
      Cmd: options.cmd ?? ['sh'],
      ...(options.entrypoint ? { Entrypoint: options.entrypoint } : {}),
      WorkingDir: '/work',
      User: '1000:1000',
      ...(options.label ? { Labels: { test: options.label } } : {}),
    },
    rootfs: { type: 'layers', diff_ids: options.diffIds ? options.diffIds(diffIds) : diffIds },
  };
  const bytes = Buffer.from(JSON.stringify(config));
  return { config: bytes, id: `sha256:${sha256(bytes)}`, layers, diffIds };
}

export interface DockerArchiveOptions {
  repoTags?: string[] | null;
  /** `classic`: `<id>/layer.tar` and `<hex>.json` (docker before 25); `blobs`: `blobs/sha256/<hex>` with an OCI index.json too (docker 25+). */
  layout?: 'classic' | 'blobs';
  gzipLayers?: boolean;
  /** Replaces the member list before it is packed, to build corrupt archives. */
  edit?: (members: Member[]) => Member[];
}

/** Builds the members of a `docker save` archive of one image. */
export function dockerArchiveMembers(image: TestImage, options: DockerArchiveOptions = {}): Member[] {
  const layout = options.layout ?? 'classic';
  const blobs = image.layers.map((layer) => (options.gzipLayers ? gzipSync(layer) : layer));
  const configHex = image.id.slice('sha256:'.length);
  const members: Member[] = [];
  const layerNames: string[] = [];

  for (const [index, blob] of blobs.entries()) {
    const name = layout === 'classic' ? `${sha256(`layer ${index} ${configHex}`)}/layer.tar` : `blobs/sha256/${sha256(blob)}`;
    layerNames.push(name);
    members.push({ name, data: blob });
  }
  const configName = layout === 'classic' ? `${configHex}.json` : `blobs/sha256/${configHex}`;
  members.push({ name: configName, data: image.config });

  if (layout === 'blobs') {
    const manifest = ociManifest(image, blobs, options.gzipLayers ?? false);
    members.push({ name: `blobs/sha256/${sha256(manifest)}`, data: manifest });
    members.push({ name: 'index.json', data: JSON.stringify(ociIndex([descriptorOf(manifest, MANIFEST_TYPE)])) });
    members.push({ name: 'oci-layout', data: OCI_LAYOUT });
  }
  const repoTags = options.repoTags === undefined ? ['busybox:latest'] : options.repoTags;
  members.push({ name: 'manifest.json', data: JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: layerNames }]) });
  return options.edit ? options.edit(members) : members;
}

export const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';
export const OCI_LAYOUT = JSON.stringify({ imageLayoutVersion: '1.0.0' });

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

export function descriptorOf(blob: Buffer, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: `sha256:${sha256(blob)}`, size: blob.length, ...extra };
}

export function ociIndex(manifests: Descriptor[]): object {
  return { schemaVersion: 2, mediaType: INDEX_TYPE, manifests };
}

/** Builds an OCI image manifest for `image` whose layers are the given blobs. */
export function ociManifest(image: TestImage, blobs: Buffer[], gzipLayers: boolean, layerType?: string): Buffer {
  const mediaType = layerType ?? (gzipLayers ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar');
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: descriptorOf(image.config, 'application/vnd.oci.image.config.v1+json'),
      layers: blobs.map((blob) => descriptorOf(blob, mediaType)),
    }),
  );
}

export interface OciLayoutOptions {
  /** Annotations of the top-level index entry; default names the image busybox:latest. */
  annotations?: Record<string, string>;
  gzipLayers?: boolean;
  /** Media type of every layer descriptor. */
  layerType?: string;
  /** Puts the manifest behind a nested index that also lists `otherPlatforms` (with blobs that do not exist). */
  nested?: boolean;
  otherPlatforms?: { os: string; architecture: string }[];
  /** Leaves this machine's platform out of the nested index. */
  onlyOtherPlatforms?: boolean;
  /** Replaces the member list before it is packed, to build corrupt archives. */
  edit?: (members: Member[]) => Member[];
}

/** Builds the members of an OCI image layout holding one image. */
export function ociLayoutMembers(image: TestImage, options: OciLayoutOptions = {}): Member[] {
  const gzipLayers = options.gzipLayers ?? true;
  const blobs = image.layers.map((layer) => (gzipLayers ? gzipSync(layer) : layer));
  const manifest = ociManifest(image, blobs, gzipLayers, options.layerType);
  const members: Member[] = [
    { name: 'oci-layout', data: OCI_LAYOUT },
    ...blobs.map((blob) => ({ name: `blobs/sha256/${sha256(blob)}`, data: blob })),
    { name: `blobs/sha256/${sha256(image.config)}`, data: image.config },
    { name: `blobs/sha256/${sha256(manifest)}`, data: manifest },
  ];

  const annotations = options.annotations ?? { 'io.containerd.image.name': 'docker.io/library/busybox:latest', 'org.opencontainers.image.ref.name': 'latest' };
  let top: Descriptor;
  if (options.nested) {
    const platform = machinePlatform();
    const entries = [
      ...(options.otherPlatforms ?? []).map((other) => ({
        mediaType: MANIFEST_TYPE,
        digest: `sha256:${sha256(JSON.stringify(other))}`,
        size: 1,
        platform: other,
      })),
      ...(options.onlyOtherPlatforms ? [] : [descriptorOf(manifest, MANIFEST_TYPE, { platform: { os: 'linux', architecture: platform.architecture } })]),
    ];
    const nested = Buffer.from(JSON.stringify(ociIndex(entries)));
    members.push({ name: `blobs/sha256/${sha256(nested)}`, data: nested });
    top = descriptorOf(nested, INDEX_TYPE, { annotations });
  } else {
    top = descriptorOf(manifest, MANIFEST_TYPE, { annotations });
  }
  members.push({ name: 'index.json', data: JSON.stringify(ociIndex([top])) });
  return options.edit ? options.edit(members) : members;
}

/** Writes members as files below `directory` (regular files only). */
export function writeMembers(directory: string, members: readonly Member[]): void {
  for (const member of members) {
    const path = join(directory, member.name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, member.data ?? '');
  }
}

/**
 * Lists a directory tree with each entry's type, mode, owner, size, link
 * target and file content hash, one line per entry in sorted order, to
 * compare a store before and after an operation.
 */
export function snapshotTree(root: string): string[] {
  const lines: string[] = [];
  const walk = (relative: string): void => {
    const path = join(root, relative);
    const stats = lstatSync(path);
    let detail = '';
    if (stats.isFile()) detail = sha256(readFileSync(path));
    else if (stats.isSymbolicLink()) detail = readlinkSync(path);
    lines.push(`${relative || '.'} ${stats.mode.toString(8)} ${stats.uid}:${stats.gid} ${stats.isDirectory() ? '' : stats.size} ${detail}`);
    if (stats.isDirectory()) for (const name of readdirSync(path).sort()) walk(relative ? `${relative}/${name}` : name);
  };
  walk('');
  return lines;
}
