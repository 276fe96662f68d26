import type { MountConfig } from '@m-docker/ipc';

import { CliError } from '../cli-error.js';

// The mount options of `run`, in docker's syntax:
//   -v HOST_PATH:CONTAINER_PATH[:OPTIONS]   a bind mount of a host path
//   -v NAME:CONTAINER_PATH[:OPTIONS]        a named volume, created on first use
//   -v CONTAINER_PATH                       an anonymous volume, removed with --rm
//   --tmpfs CONTAINER_PATH[:OPTIONS]        a new tmpfs
//   --shm-size SIZE                         the size of /dev/shm

/** One -v option, parsed. */
export type VolumeSpec =
  | { kind: 'bind'; hostPath: string; destination: string; readonly: boolean }
  | { kind: 'named'; name: string; destination: string; readonly: boolean }
  | { kind: 'anonymous'; destination: string; readonly: boolean };

/** docker's rule for volume names. */
export const VOLUME_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Options of -v that change nothing here: SELinux labels (z, Z) and nocopy. Accepted so that docker command lines work. */
const IGNORED_VOLUME_OPTIONS = new Set(['z', 'Z', 'nocopy']);

/** tmpfs(5) mount options that --tmpfs passes on to the kernel, with the values each accepts. */
const TMPFS_DATA_OPTIONS: Record<string, RegExp> = {
  size: /^\d+[kmg%]?$/i,
  mode: /^[0-7]{3,4}$/,
  uid: /^\d+$/,
  gid: /^\d+$/,
  nr_inodes: /^\d+[kmg]?$/i,
  nr_blocks: /^\d+[kmg]?$/i,
};

/** Mount flags that --tmpfs takes, each with its opposite. docker mounts a tmpfs noexec, nosuid and nodev unless the options say otherwise. */
const TMPFS_FLAGS: Record<string, [string, boolean]> = {
  noexec: ['noexec', true],
  exec: ['noexec', false],
  nosuid: ['nosuid', true],
  suid: ['nosuid', false],
  nodev: ['nodev', true],
  dev: ['nodev', false],
};

/** docker's default size of /dev/shm: 64 MiB. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Parses one -v value; `cwd` resolves host paths that start with `.`. */
export function parseVolume(value: string, cwd: string): VolumeSpec {
  const parts = value.split(':');
  if (parts.length > 3 || parts.some((part) => part === '')) {
    throw invalidVolume(value, 'expected HOST_PATH:CONTAINER_PATH[:ro], NAME:CONTAINER_PATH[:ro] or CONTAINER_PATH');
  }

  if (parts.length === 1) {
    return { kind: 'anonymous', destination: checkDestination(parts[0] as string, value, '-v'), readonly: false };
  }

  const [source, destinationText, options] = parts as [string, string, string | undefined];
  const destination = checkDestination(destinationText, value, '-v');
  const readonly = parseVolumeOptions(options, value);
  if (source.startsWith('/')) return { kind: 'bind', hostPath: normalize(source), destination, readonly };
  if (source === '.' || source.startsWith('./') || source.startsWith('../')) {
    return { kind: 'bind', hostPath: normalize(`${cwd}/${source}`), destination, readonly };
  }
  if (!VOLUME_NAME_PATTERN.test(source)) {
    throw invalidVolume(
      value,
      `${JSON.stringify(source)} is neither an absolute host path nor a volume name (letters, digits, '_', '.', '-', at least 2 characters)`,
    );
  }
  return { kind: 'named', name: source, destination, readonly };
}

/**
 * Parses one --tmpfs value into a mount. Its `data` contains the tmpfs options
 * and the flag words noexec, nosuid and nodev that are in force, which the
 * init turns into mount flags.
 */
export function parseTmpfs(value: string): MountConfig {
  const colon = value.indexOf(':');
  const destination = checkDestination(colon === -1 ? value : value.slice(0, colon), value, '--tmpfs');
  const options = colon === -1 ? [] : value.slice(colon + 1).split(',');

  let readonly = false;
  const flags = new Map<string, boolean>([
    ['noexec', true],
    ['nosuid', true],
    ['nodev', true],
  ]);
  const data: string[] = [];
  for (const option of options) {
    const [name = '', optionValue] = option.split('=', 2);
    const flag = TMPFS_FLAGS[option];
    const pattern = TMPFS_DATA_OPTIONS[name];
    if (option === 'ro' || option === 'rw') {
      readonly = option === 'ro';
    } else if (flag !== undefined) {
      flags.set(flag[0], flag[1]);
    } else if (pattern !== undefined && optionValue !== undefined) {
      if (!pattern.test(optionValue)) {
        throw new CliError(`invalid --tmpfs ${JSON.stringify(value)}: invalid value ${JSON.stringify(optionValue)} for ${name}: see tmpfs(5)`);
      }
      data.push(option);
    } else {
      throw new CliError(
        `invalid --tmpfs ${JSON.stringify(value)}: unknown option ${JSON.stringify(option)}: use ro, rw, exec, noexec, suid, nosuid, dev, nodev, size=, mode=, uid=, gid=, nr_inodes= or nr_blocks=`,
      );
    }
  }
  const flagWords = [...flags].filter(([, on]) => on).map(([word]) => word);
  return { type: 'tmpfs', source: 'tmpfs', destination, readonly, data: [...flagWords, ...data].join(',') };
}

/** Parses a size such as `64m` or `1g` into bytes (units b, k, m, g, t, p, multiples of 1024), as docker's --shm-size does. */
export function parseByteSize(value: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgtp]?)b?$/i.exec(value.trim());
  const bytes = match === null ? Number.NaN : Math.floor(Number(match[1]) * (UNITS[(match[2] as string).toLowerCase()] ?? Number.NaN));
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new CliError(`invalid ${option} ${JSON.stringify(value)}: expected a positive size with an optional unit b, k, m, g, t or p, such as 64m`);
  }
  return bytes;
}

/** Orders mounts so that a mount's parent directory is mounted before it, and rejects two mounts on one path. */
export function orderMounts<T extends { destination: string }>(mounts: readonly T[]): T[] {
  const seen = new Set<string>();
  for (const mount of mounts) {
    if (seen.has(mount.destination)) {
      throw new CliError(`duplicate mount point ${mount.destination}: give each container path once in -v and --tmpfs`);
    }
    seen.add(mount.destination);
  }
  const depth = (path: string) => path.split('/').filter(Boolean).length;
  return [...mounts].sort((a, b) => depth(a.destination) - depth(b.destination));
}

function parseVolumeOptions(options: string | undefined, value: string): boolean {
  let readonly = false;
  for (const option of options?.split(',') ?? []) {
    if (option === 'ro' || option === 'rw') readonly = option === 'ro';
    else if (!IGNORED_VOLUME_OPTIONS.has(option)) {
      throw invalidVolume(value, `unknown option ${JSON.stringify(option)}: use ro or rw`);
    }
  }
  return readonly;
}

function checkDestination(path: string, value: string, option: string): string {
  if (!path.startsWith('/')) {
    throw new CliError(`invalid ${option} ${JSON.stringify(value)}: the container path ${JSON.stringify(path)} must be absolute`);
  }
  const normalized = normalize(path);
  if (normalized === '/') {
    throw new CliError(`invalid ${option} ${JSON.stringify(value)}: a mount cannot replace the container's root directory /`);
  }
  if (normalized === '/proc' || normalized.startsWith('/proc/')) {
    throw new CliError(
      `invalid ${option} ${JSON.stringify(value)}: cannot mount on ${normalized}: /proc belongs to the container's PID namespace: choose another path`,
    );
  }
  return normalized;
}

function invalidVolume(value: string, problem: string): CliError {
  return new CliError(`invalid -v ${JSON.stringify(value)}: ${problem}`);
}

// Removes '.', empty components and '..' (which stops at /), as path.posix.normalize does for an absolute path.
function normalize(path: string): string {
  const components: string[] = [];
  for (const component of path.split('/')) {
    if (component === '' || component === '.') continue;
    if (component === '..') components.pop();
    else components.push(component);
  }
  return `/${components.join('/')}`;
}
