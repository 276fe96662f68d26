import { createRequire } from 'node:module';

// node:fs is required when a search runs, not imported: under Bun the CLI
// runs without searching, and importing node:fs would cost about 3 ms.
const fs = () => createRequire(import.meta.url)('node:fs') as typeof import('node:fs');

/** The oldest Bun that m-docker runs on: 1.4 loads koffi and runs the init's bun:ffi calls. */
export const MIN_BUN_VERSION = [1, 4, 0] as const;

/** A Bun executable that m-docker may use. */
export interface BunLocation {
  path: string;
  version: string;
  /** `package` for an npm package next to m-docker, `path` for a `bun` found on PATH. */
  source: 'package' | 'path';
}

/** The result of looking for Bun: where it is, or why none can be used. */
export type BunLookup = { found: true; bun: BunLocation } | { found: false; reason: string };

export interface FindBunOptions {
  /** A file URL or path to resolve the npm packages from, such as the CLI bundle's import.meta.url. */
  from: string;
  /** The PATH to search; by default this process's. */
  path?: string | undefined;
  arch?: string;
  /** The CPU flags line of /proc/cpuinfo; read when not given. */
  cpuFlags?: string;
}

/**
 * Returns the npm packages that ship a Bun binary for this CPU, best first:
 * on x86_64 the AVX2 build needs AVX2, and the -baseline build runs on any
 * x86_64 CPU. musl builds are left out because m-docker needs glibc.
 */
export function bunPackageNames(arch: string, cpuFlags: string): string[] {
  if (arch === 'x64') {
    const baseline = '@oven/bun-linux-x64-baseline';
    return /\bavx2\b/.test(cpuFlags) ? ['@oven/bun-linux-x64', baseline] : [baseline];
  }
  if (arch === 'arm64') return ['@oven/bun-linux-aarch64'];
  return [];
}

/**
 * Looks for a Bun of at least MIN_BUN_VERSION: first the npm packages
 * installed with m-docker (their version is in package.json, so nothing is
 * run), then `bun` on PATH, whose version is asked with `bun --version`.
 */
export function findBun(options: FindBunOptions): BunLookup {
  const arch = options.arch ?? process.arch;
  const cpuFlags = options.cpuFlags ?? readCpuFlags();
  const reasons: string[] = [];

  for (const name of bunPackageNames(arch, cpuFlags)) {
    const packaged = findPackagedBun(name, options.from);
    if ('bun' in packaged) return { found: true, bun: packaged.bun };
    reasons.push(packaged.reason);
  }

  const onPath = findBunOnPath(options.path ?? process.env.PATH ?? '');
  if ('bun' in onPath) return { found: true, bun: onPath.bun };
  reasons.push(onPath.reason);
  return { found: false, reason: reasons.join('; ') };
}

function findPackagedBun(name: string, from: string): { bun: BunLocation } | { reason: string } {
  let manifestPath: string;
  try {
    manifestPath = createRequire(from).resolve(`${name}/package.json`);
  } catch {
    return { reason: `${name} is not installed` };
  }
  const version = (JSON.parse(fs().readFileSync(manifestPath, 'utf8')) as { version?: string }).version ?? '';
  const path = `${manifestPath.slice(0, manifestPath.lastIndexOf('/'))}/bin/bun`;
  if (!isExecutable(path)) return { reason: `${path} is missing or not executable` };
  if (!isSupportedVersion(version)) return { reason: `${name} is version ${version}, older than ${MIN_BUN_VERSION.join('.')}` };
  return { bun: { path, version, source: 'package' } };
}

function findBunOnPath(searchPath: string): { bun: BunLocation } | { reason: string } {
  const path = searchPath
    .split(':')
    // Like the launcher, only absolute folders: a relative entry such as '.'
    // would take a bun from the working directory.
    .filter((folder) => folder.startsWith('/'))
    .map((folder) => `${folder}/bun`)
    .find(isExecutable);
  if (path === undefined) return { reason: 'no bun on PATH' };

  // node:child_process is required here, on the rare path that needs it.
  const { spawnSync } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const result = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 5000, env: {} });
  const version = result.stdout?.trim() ?? '';
  if (result.status !== 0 || version === '') {
    return { reason: `${path} --version failed (${result.error?.message ?? `status ${result.status}`})` };
  }
  if (!isSupportedVersion(version)) {
    return { reason: `${path} is version ${version}, older than ${MIN_BUN_VERSION.join('.')}` };
  }
  return { bun: { path, version, source: 'path' } };
}

/** Returns whether a version such as `1.4.5` or `1.5.0-canary.3` is at least MIN_BUN_VERSION. */
export function isSupportedVersion(version: string): boolean {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!match) return false;
  const parts = match.slice(1, 4).map(Number);
  for (let index = 0; index < 3; index++) {
    const difference = (parts[index] as number) - (MIN_BUN_VERSION[index] as number);
    if (difference !== 0) return difference > 0;
  }
  return true;
}

// access(2) grants X_OK on a searchable folder too, so a folder named bun
// must be skipped here, as the launcher's `command -v bun` skips it.
function isExecutable(path: string): boolean {
  try {
    fs().accessSync(path, fs().constants.X_OK);
    return fs().statSync(path).isFile();
  } catch {
    return false;
  }
}

// Reads the flags of the first CPU from /proc/cpuinfo (x86 lists "flags",
// arm64 "Features"); an empty string where the file cannot be read.
function readCpuFlags(): string {
  try {
    const cpuinfo = fs().readFileSync('/proc/cpuinfo', 'utf8');
    return /^(flags|Features)\s*:(.*)$/m.exec(cpuinfo)?.[2] ?? '';
  } catch {
    return '';
  }
}
