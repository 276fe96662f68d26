import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// Fake Bun installations in temporary folders. Each test file calls
// removeTempDirs from afterEach, so no folder outlives its test.

const tempDirs: string[] = [];

/** Creates an empty temporary folder that removeTempDirs deletes. */
export function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'm-docker-runtime-'));
  tempDirs.push(dir);
  return dir;
}

/** Deletes every folder that makeTempDir created. */
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * Returns a file URL of a module inside `root` (the file need not exist).
 * Packages resolve from it as from the CLI bundle: through root/app/node_modules,
 * root/node_modules and the folders above root.
 */
export function moduleUrlIn(root: string): string {
  return pathToFileURL(join(root, 'app', 'main.js')).href;
}

export interface FakePackage {
  version?: string;
  /** Whether bin/bun gets the execute bits; true when not given. */
  executable?: boolean;
}

/**
 * Writes root/node_modules/<name>/package.json and bin/bun, laid out as the
 * @oven/bun-linux-* packages are, and returns the path of bin/bun. The
 * binary is a shell script that is never run by findBun.
 */
export function writeBunPackage(root: string, name: string, fake: FakePackage = {}): string {
  const packageDir = join(root, 'node_modules', name);
  mkdirSync(join(packageDir, 'bin'), { recursive: true });
  writeFileSync(join(packageDir, 'package.json'), JSON.stringify({ name, version: fake.version ?? '1.4.5' }));

  const binary = join(packageDir, 'bin', 'bun');
  writeFileSync(binary, '#!/bin/sh\nexit 0\n');
  chmodSync(binary, fake.executable === false ? 0o644 : 0o755);
  return binary;
}

/** Writes an executable `bun` shell script with the given body into `dir` and returns its path. */
export function writeFakeBun(dir: string, body: string): string {
  const binary = join(dir, 'bun');
  writeFileSync(binary, `#!/bin/sh\n${body}\n`);
  chmodSync(binary, 0o755);
  return binary;
}
