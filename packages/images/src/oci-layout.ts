import { type ArchiveFiles, readMember, verifyBlob } from './archive-files.js';
import type { ImagePlan, LayerPlan } from './archive-plan.js';
import { ImageError } from './errors.js';
import { checkDigest, invalid, isObject, parseImageConfig, parseJson } from './image-config.js';
import { formatPlatform, machinePlatform, type Platform, platformMatches } from './image-platform.js';
import { normalizeReference } from './image-reference.js';
import { checkMediaType } from './oci-media-types.js';

// An OCI image layout (image-layout.md of the OCI image spec) is a
// directory, or a tar of one, holding `oci-layout`, `index.json` and
// content-addressed `blobs/sha256/<hex>`. index.json points at image
// manifests, or at nested indexes with one manifest per platform. Every
// blob is read only after its sha256 and size match the descriptor that
// points at it.

/** A content descriptor of the OCI image spec. */
interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations: Record<string, string>;
}

/** Deepest chain of nested indexes followed from index.json. */
const MAX_INDEX_DEPTH = 4;

// containerd, and so docker 25 and later, writes the full reference into
// the first annotation. The OCI annotation usually contains only the tag,
// as in the examples of the OCI spec.
const NAME_ANNOTATIONS = ['io.containerd.image.name', 'org.opencontainers.image.ref.name'] as const;

/** Reads the image of an OCI layout, choosing the manifest for this machine's platform. */
export async function readOciLayout(files: ArchiveFiles): Promise<ImagePlan> {
  await checkLayoutVersion(files);

  const index = await readIndex(files, 'index.json', undefined);
  const top = selectTopManifest(index, files.source);
  const manifest = await resolveManifest(files, top, 0);

  const config = await readConfig(files, manifest.config);
  if (config.config.diffIds.length !== manifest.layers.length) {
    throw invalid(
      manifest.label,
      `it lists ${manifest.layers.length} layers, but its image config has ${config.config.diffIds.length} diff ids`,
    );
  }

  const layers: LayerPlan[] = [];
  for (const [index, layer] of manifest.layers.entries()) {
    const member = blobPath(layer.digest);
    await verifyBlob(files, member, { digest: layer.digest, size: layer.size, describedBy: manifest.label }, 'layer');
    layers.push({ member, diffId: config.config.diffIds[index] as string, size: layer.size });
  }

  return { configBytes: config.bytes, configMember: blobPath(manifest.config.digest), config: config.config, layers, names: namesOf(top) };
}

async function checkLayoutVersion(files: ArchiveFiles): Promise<void> {
  const json = parseJson(await readMember(files, 'oci-layout', 'OCI layout file'), 'oci-layout');
  if (!isObject(json) || json.imageLayoutVersion !== '1.0.0') {
    const version = isObject(json) ? JSON.stringify(json.imageLayoutVersion) : 'none';
    throw new ImageError('UNKNOWN_FORMAT', `${files.source}: oci-layout gives imageLayoutVersion ${version}, and m-docker reads only 1.0.0`, {
      entry: 'oci-layout',
    });
  }
}

async function readIndex(files: ArchiveFiles, member: string, descriptor: Descriptor | undefined): Promise<Descriptor[]> {
  const label = descriptor === undefined ? member : `image index ${member}`;
  if (descriptor !== undefined) await verifyBlob(files, member, { ...descriptor, describedBy: 'the index that points at it' }, 'image index');

  const json = parseJson(await readMember(files, member, 'image index'), label);
  if (!isObject(json) || !Array.isArray(json.manifests)) throw invalid(label, 'it has no "manifests" list');
  if (json.mediaType !== undefined) checkMediaType(json.mediaType, ['index'], label);
  return json.manifests.map((entry, position) => readDescriptor(entry, label, `manifests[${position}]`));
}

// A top-level index lists images (docker save of several images writes
// one entry each) or, as a flat multi-platform index, one entry per
// platform. Entries for other platforms are skipped, and more than one
// image left is an error.
function selectTopManifest(manifests: Descriptor[], source: string): Descriptor {
  if (manifests.length === 0) throw invalid('index.json', 'it lists no manifest');
  if (manifests.length === 1) return manifests[0] as Descriptor;

  if (manifests.some((entry) => entry.platform !== undefined)) return selectByPlatform(manifests, 'index.json');
  throw new ImageError(
    'MULTIPLE_IMAGES',
    `${source} contains ${manifests.length} images (${manifests.map((entry) => namesOf(entry)[0] ?? entry.digest).join(', ')}), and m-docker imports one image per archive: export each image on its own`,
  );
}

function selectByPlatform(manifests: Descriptor[], label: string): Descriptor {
  const machine = machinePlatform();
  const match = manifests.find((entry) => entry.platform !== undefined && platformMatches(entry.platform, machine));
  if (match !== undefined) return match;

  const available = manifests.flatMap((entry) => (entry.platform === undefined ? [] : [formatPlatform(entry.platform)]));
  if (available.length === 0) {
    throw invalid(label, `it lists ${manifests.length} manifests and none names its platform, so m-docker cannot choose one`);
  }
  throw new ImageError(
    'WRONG_PLATFORM',
    `${label} has no image for ${formatPlatform(machine)}, only for ${available.join(', ')}: import an image built for ${formatPlatform(machine)}`,
    { entry: label },
  );
}

interface ResolvedManifest {
  label: string;
  config: Descriptor;
  layers: Descriptor[];
}

async function resolveManifest(files: ArchiveFiles, descriptor: Descriptor, depth: number): Promise<ResolvedManifest> {
  const member = blobPath(descriptor.digest);
  const kind = checkMediaType(descriptor.mediaType, ['index', 'manifest'], member);

  if (kind === 'index') {
    if (depth >= MAX_INDEX_DEPTH) throw invalid(member, `it is nested more than ${MAX_INDEX_DEPTH} indexes deep`);
    const manifests = await readIndex(files, member, descriptor);
    const candidates = manifests.filter((entry) => !isAttestation(entry));
    const chosen = candidates.length === 1 && candidates[0]?.platform === undefined ? candidates[0] : selectByPlatform(candidates, `image index ${member}`);
    return resolveManifest(files, chosen as Descriptor, depth + 1);
  }

  const label = `image manifest ${member}`;
  await verifyBlob(files, member, { ...descriptor, describedBy: 'the index that points at it' }, 'image manifest');
  const json = parseJson(await readMember(files, member, 'image manifest'), label);
  if (!isObject(json)) throw invalid(label, 'it is not a JSON object');
  if (json.mediaType !== undefined) checkMediaType(json.mediaType, ['manifest'], label);
  if (!Array.isArray(json.layers)) throw invalid(label, 'it has no "layers" list');

  const config = readDescriptor(json.config, label, 'config');
  checkMediaType(config.mediaType, ['config'], `config ${blobPath(config.digest)} of ${label}`);
  const layers = json.layers.map((entry, position) => {
    const layer = readDescriptor(entry, label, `layers[${position}]`);
    checkMediaType(layer.mediaType, ['layer'], `layer ${blobPath(layer.digest)} of ${label}`);
    return layer;
  });
  return { label, config, layers };
}

async function readConfig(files: ArchiveFiles, descriptor: Descriptor) {
  const member = blobPath(descriptor.digest);
  await verifyBlob(files, member, { ...descriptor, describedBy: 'the image manifest' }, 'image config');
  const bytes = await readMember(files, member, 'image config');
  return { bytes, config: parseImageConfig(bytes, `image config ${member}`) };
}

function readDescriptor(value: unknown, label: string, field: string): Descriptor {
  if (!isObject(value)) throw invalid(label, `${field} is not a descriptor object`);
  const { mediaType, size, annotations, platform } = value;
  const digest = checkDigest(value.digest, label, `${field}.digest`);
  if (typeof mediaType !== 'string') throw invalid(label, `${field} has no "mediaType"`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(label, `${field} has no valid "size"`);

  const descriptor: Descriptor = { mediaType, digest, size, annotations: {} };
  if (isObject(annotations)) {
    for (const [key, text] of Object.entries(annotations)) if (typeof text === 'string') descriptor.annotations[key] = text;
  }
  if (isObject(platform) && typeof platform.os === 'string' && typeof platform.architecture === 'string') {
    descriptor.platform = { os: platform.os, architecture: platform.architecture };
    if (typeof platform.variant === 'string') descriptor.platform.variant = platform.variant;
  }
  return descriptor;
}

// BuildKit stores provenance attestations as extra manifests of platform
// unknown/unknown, marked with this annotation.
function isAttestation(descriptor: Descriptor): boolean {
  return descriptor.annotations['vnd.docker.reference.type'] === 'attestation-manifest';
}

// The OCI annotation often contains only a tag ("latest"), which names no
// repository. Only a value with a `:` or `/` is taken as a reference.
function namesOf(descriptor: Descriptor): string[] {
  for (const key of NAME_ANNOTATIONS) {
    const value = descriptor.annotations[key];
    if (value === undefined || (key === 'org.opencontainers.image.ref.name' && !/[:/]/.test(value))) continue;
    try {
      return [normalizeReference(value)];
    } catch (error) {
      throw new ImageError('INVALID_MANIFEST', `invalid index.json: annotation ${key} ${JSON.stringify(value)}: ${(error as Error).message}`, {
        entry: 'index.json',
        cause: error,
      });
    }
  }
  return [];
}

function blobPath(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}
