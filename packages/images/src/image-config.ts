import { ImageError } from './errors.js';
import { formatPlatform, machinePlatform, type Platform, platformMatches } from './image-platform.js';

/** The fields of an image config's `config` object that `m-docker run` uses, named as in the OCI image spec. */
export interface ImageRunConfig {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
}

/** The parts of an image config that the store keeps. The config JSON's sha256 is the image id. */
export interface ParsedImageConfig {
  platform: Platform;
  /** RFC 3339 time from the config, absent when the config has none. */
  created?: string;
  /** `sha256:<hex>` of each uncompressed layer tar, bottom layer first. */
  diffIds: string[];
  config: ImageRunConfig;
}

/** Largest manifest, index or config JSON read into memory, as a guard against a huge blob posing as JSON. */
export const MAX_JSON_BYTES = 8 * 1024 * 1024;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Parses JSON read from the archive member `label`. Throws INVALID_MANIFEST naming it. */
export function parseJson(bytes: Buffer, label: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new ImageError('INVALID_MANIFEST', `${label} is not valid JSON: ${(error as Error).message}`, {
      entry: label,
      cause: error,
    });
  }
}

/** Parses an image config and checks the fields the store needs. Throws INVALID_MANIFEST naming `label`. */
export function parseImageConfig(bytes: Buffer, label: string): ParsedImageConfig {
  const json = parseJson(bytes, label);
  if (!isObject(json)) throw invalid(label, 'the image config is not a JSON object');

  const architecture = json.architecture;
  const os = json.os;
  if (typeof architecture !== 'string' || architecture === '') throw invalid(label, 'the image config has no "architecture"');
  if (typeof os !== 'string' || os === '') throw invalid(label, 'the image config has no "os"');
  const platform: Platform = { os, architecture };
  if (typeof json.variant === 'string' && json.variant !== '') platform.variant = json.variant;

  const parsed: ParsedImageConfig = { platform, diffIds: readDiffIds(json.rootfs, label), config: readRunConfig(json.config, label) };
  if (typeof json.created === 'string') parsed.created = json.created;
  return parsed;
}

/**
 * Throws WRONG_PLATFORM unless the image runs on this machine: `image
 * busybox:latest (config ab12....json) is for linux/arm64, this machine is
 * linux/amd64`. The
 * error's `entry` is `configMember`, the config that names the platform.
 */
export function checkPlatform(parsed: ParsedImageConfig, imageName: string, configMember?: string): void {
  const machine = machinePlatform();
  if (platformMatches(parsed.platform, machine)) return;
  const source = configMember === undefined ? '' : ` (config ${configMember})`;
  throw new ImageError(
    'WRONG_PLATFORM',
    `image ${imageName}${source} is for ${formatPlatform(parsed.platform)}, this machine is ${formatPlatform(machine)}: import an image built for ${formatPlatform(machine)}`,
    configMember === undefined ? {} : { entry: configMember },
  );
}

/**
 * Builds the config of an image made from a root file system tarball, as
 * `docker import` does: this machine's platform, the given creation time,
 * one layer, and no Env, Cmd or Entrypoint.
 */
export function synthesizeRootfsConfig(diffId: string, created: Date, source: string): Buffer {
  const platform = machinePlatform();
  const config = {
    architecture: platform.architecture,
    os: platform.os,
    created: created.toISOString(),
    config: {},
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: created.toISOString(), comment: `imported from ${source}` }],
  };
  return Buffer.from(JSON.stringify(config));
}

/** Throws INVALID_MANIFEST unless `value` is `sha256:` and 64 lowercase hex digits. */
export function checkDigest(value: unknown, label: string, field: string): string {
  if (typeof value === 'string' && DIGEST.test(value)) return value;
  if (typeof value === 'string' && /^[a-z0-9]+:/.test(value) && !value.startsWith('sha256:')) {
    throw invalid(label, `${field} ${JSON.stringify(value)} uses a digest algorithm other than sha256, which m-docker does not support`);
  }
  throw invalid(label, `${field} ${JSON.stringify(value)} is not a sha256 digest (sha256: and 64 hex digits)`);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function invalid(label: string, reason: string): ImageError {
  return new ImageError('INVALID_MANIFEST', `invalid ${label}: ${reason}`, { entry: label });
}

function readDiffIds(rootfs: unknown, label: string): string[] {
  if (!isObject(rootfs) || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    throw invalid(label, 'the image config has no "rootfs" of type "layers" with "diff_ids"');
  }
  return rootfs.diff_ids.map((diffId, index) => checkDigest(diffId, label, `rootfs.diff_ids[${index}]`));
}

// A config with "config": null is valid, as in images built FROM scratch
// with no settings. Fields of the wrong type are rejected rather than
// ignored, because a silently dropped Entrypoint would run the wrong program.
function readRunConfig(value: unknown, label: string): ImageRunConfig {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw invalid(label, '"config" is not a JSON object');

  const result: ImageRunConfig = {};
  for (const field of ['Env', 'Cmd', 'Entrypoint'] as const) {
    const list = value[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list) || !list.every((item) => typeof item === 'string')) {
      throw invalid(label, `"config.${field}" is not a list of strings`);
    }
    result[field] = list;
  }
  for (const field of ['WorkingDir', 'User'] as const) {
    const text = value[field];
    if (text === undefined || text === null || text === '') continue;
    if (typeof text !== 'string') throw invalid(label, `"config.${field}" is not a string`);
    result[field] = text;
  }
  return result;
}
