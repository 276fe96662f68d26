import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { type Member, tarOf, writeMembers } from './image-archives.js';

/** unpackLayer sets owners and creates devices, which needs root; suites that unpack are skipped otherwise. */
export const NOT_ROOT = process.getuid?.() !== 0;

/** Temporary directories of one test file; `removeAll` in afterEach removes them, also after a failure. */
export class TempDirs {
  readonly #dirs: string[] = [];

  make(prefix = 'm-docker-images-'): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.#dirs.push(dir);
    return dir;
  }

  removeAll(): void {
    for (const dir of this.#dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes members as a tar file, optionally gzip-compressed, and returns its path. */
export async function writeTar(directory: string, name: string, members: readonly Member[], gzip = false): Promise<string> {
  const bytes = await tarOf(members);
  const path = join(directory, name);
  writeFileSync(path, gzip ? gzipSync(bytes) : bytes);
  return path;
}

/** Writes members as an OCI layout or docker save directory and returns its path. */
export function writeLayoutDirectory(directory: string, name: string, members: readonly Member[]): string {
  const path = join(directory, name);
  writeMembers(path, members);
  return path;
}
