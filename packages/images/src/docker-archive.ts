import { createHash } from 'node:crypto';

import { type ArchiveFiles, normalizeMemberName, readMember, requireMember, verifyBlob } from './archive-files.js';
import type { ImagePlan, LayerPlan } from './archive-plan.js';
import { ImageError } from './errors.js';
import { invalid, isObject, parseImageConfig, parseJson } from './image-config.js';
import { normalizeReference } from './image-reference.js';

// A docker save archive lists its images in manifest.json:
//   [{ "Config": "<hex>.json", "RepoTags": ["busybox:latest"], "Layers": ["<id>/layer.tar", ...] }]
// Docker 25 and later write `blobs/sha256/<hex>` paths there instead, next
// to an OCI index.json. The importer reads manifest.json whenever it
// exists, because its RepoTags carry the names that docker gave.
//
// manifest.json has no digests of its own, so what the member names imply
// is checked: a `<hex>.json` or `blobs/sha256/<hex>` config must hash to
// <hex> (the image id), a `blobs/sha256/<hex>` layer likewise, and every
// layer's uncompressed tar to the config's diff id (checked later, while
// the layer is unpacked).

const HEX_NAMED = /^(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/;
const BLOB_NAMED = /^blobs\/sha256\/([0-9a-f]{64})$/;

/** Reads the image of a docker save archive. Throws MULTIPLE_IMAGES when manifest.json lists more than one. */
export async function readDockerArchive(files: ArchiveFiles): Promise<ImagePlan> {
  const entry = await readManifestEntry(files);

  const configName = normalizeMemberName(entry.Config, files.source);
  const configBytes = await readMember(files, configName, 'image config');
  const configHex = HEX_NAMED.exec(configName)?.[1];
  if (configHex !== undefined) {
    const actual = createHash('sha256').update(configBytes).digest('hex');
    if (actual !== configHex) {
      throw new ImageError(
        'DIGEST_MISMATCH',
        `image config ${configName} in ${files.source} has digest sha256:${actual}, but its name says sha256:${configHex}: the archive is corrupt`,
        { entry: configName },
      );
    }
  }

  const config = parseImageConfig(configBytes, `image config ${configName}`);
  if (config.diffIds.length !== entry.Layers.length) {
    throw invalid(
      'manifest.json',
      `it lists ${entry.Layers.length} layers, but the image config ${configName} has ${config.diffIds.length} diff ids`,
    );
  }

  const layers: LayerPlan[] = [];
  for (const [index, layer] of entry.Layers.entries()) {
    const member = normalizeMemberName(layer, files.source);
    const blobHex = BLOB_NAMED.exec(member)?.[1];
    if (blobHex !== undefined) {
      await verifyBlob(files, member, { digest: `sha256:${blobHex}`, describedBy: 'its name' }, 'layer');
    }
    const { size } = await requireMember(files, member, 'layer');
    layers.push({ member, diffId: config.diffIds[index] as string, size });
  }

  return { configBytes, configMember: configName, config, layers, names: readRepoTags(entry.RepoTags) };
}

interface ManifestEntry {
  Config: string;
  RepoTags: unknown;
  Layers: string[];
}

async function readManifestEntry(files: ArchiveFiles): Promise<ManifestEntry> {
  const json = parseJson(await readMember(files, 'manifest.json', 'manifest'), 'manifest.json');
  if (!Array.isArray(json)) throw invalid('manifest.json', 'it is not a JSON array of images');
  if (json.length === 0) throw invalid('manifest.json', 'it lists no image');
  if (json.length > 1) {
    const names = json.map((entry) => (isObject(entry) && Array.isArray(entry.RepoTags) ? entry.RepoTags.join(', ') : '<none>'));
    throw new ImageError(
      'MULTIPLE_IMAGES',
      `${files.source} contains ${json.length} images (${names.join('; ')}), and m-docker imports one image per archive: save each image to its own archive`,
    );
  }

  const entry = json[0] as unknown;
  if (!isObject(entry) || typeof entry.Config !== 'string') throw invalid('manifest.json', 'its image has no "Config" path');
  if (!Array.isArray(entry.Layers) || !entry.Layers.every((layer) => typeof layer === 'string')) {
    throw invalid('manifest.json', 'its image has no "Layers" list of paths');
  }
  return { Config: entry.Config, RepoTags: entry.RepoTags, Layers: entry.Layers };
}

function readRepoTags(repoTags: unknown): string[] {
  if (repoTags === undefined || repoTags === null) return [];
  if (!Array.isArray(repoTags) || !repoTags.every((tag) => typeof tag === 'string')) {
    throw invalid('manifest.json', '"RepoTags" is not a list of strings');
  }
  return repoTags.map((tag) => {
    try {
      return normalizeReference(tag);
    } catch (error) {
      throw new ImageError('INVALID_MANIFEST', `invalid manifest.json: RepoTags entry ${JSON.stringify(tag)}: ${(error as Error).message}`, {
        entry: 'manifest.json',
        cause: error,
      });
    }
  });
}
