import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, posix } from 'node:path';

import { ImageError } from './errors.js';
import { MAX_JSON_BYTES } from './image-config.js';

/**
 * The files of an image archive, by their member name (`manifest.json`,
 * `blobs/sha256/<hex>`), whether they were staged from a tar or are read
 * from an OCI layout directory. Names are normalized by
 * {@link normalizeMemberName}.
 */
export interface ArchiveFiles {
  /** The archive as the user named it, for messages. */
  readonly source: string;
  /** Returns the host path and size of a member, or undefined when the archive has no such regular file. */
  locate(name: string): Promise<{ path: string; size: number } | undefined>;
  /** Returns the hex sha256 of a member's bytes. */
  sha256(name: string): Promise<string>;
}

/**
 * Normalizes a member name of an outer archive: drops leading `./`, `.`
 * segments, repeated and trailing slashes. Throws UNSAFE_PATH naming the
 * member for absolute names, `..` segments and NUL bytes, because such a
 * name would point outside the archive.
 */
export function normalizeMemberName(name: string, archive: string): string {
  const segments = name.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (name.startsWith('/') || name.includes('\0') || segments.includes('..')) {
    throw new ImageError(
      'UNSAFE_PATH',
      `archive ${archive}: member ${JSON.stringify(name)} is absolute or leaves the archive with "..": it is not a docker save archive, an OCI layout or a root file system tarball that m-docker accepts`,
      { entry: name },
    );
  }
  return segments.join('/');
}

/** Reads a small member (a manifest, index or config) into memory. Throws UNKNOWN_FORMAT when it is missing. */
export async function readMember(files: ArchiveFiles, name: string, role: string): Promise<Buffer> {
  const member = await requireMember(files, name, role);
  if (member.size > MAX_JSON_BYTES) {
    throw new ImageError(
      'INVALID_MANIFEST',
      `${role} ${name} in ${files.source} is ${member.size} bytes, more than the ${MAX_JSON_BYTES} bytes a manifest, index or config may have`,
      { entry: name },
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(member.path)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Returns a member's location. Throws UNKNOWN_FORMAT naming the member and its role when it is missing. */
export async function requireMember(files: ArchiveFiles, name: string, role: string): Promise<{ path: string; size: number }> {
  const member = await files.locate(name);
  if (member === undefined) {
    throw new ImageError('UNKNOWN_FORMAT', `${files.source} has no ${role} ${JSON.stringify(name)}: the archive is incomplete or not an image archive`, {
      entry: name,
    });
  }
  return member;
}

/**
 * Checks a blob against its expected `sha256:<hex>` digest and, when given,
 * its size. Throws DIGEST_MISMATCH naming the member and both values.
 */
export async function verifyBlob(
  files: ArchiveFiles,
  name: string,
  expected: { digest: string; size?: number; describedBy: string },
  role: string,
): Promise<void> {
  const member = await requireMember(files, name, role);
  if (expected.size !== undefined && member.size !== expected.size) {
    throw new ImageError(
      'DIGEST_MISMATCH',
      `${role} ${name} in ${files.source} is ${member.size} bytes, but ${expected.describedBy} says ${expected.size}: the archive is corrupt`,
      { entry: name },
    );
  }
  const actual = `sha256:${await files.sha256(name)}`;
  if (actual !== expected.digest) {
    throw new ImageError(
      'DIGEST_MISMATCH',
      `${role} ${name} in ${files.source} has digest ${actual}, but ${expected.describedBy} says ${expected.digest}: the archive is corrupt`,
      { entry: name },
    );
  }
}

/**
 * The files of an OCI layout or docker save directory on the host. Each
 * sha256 is computed on first use by reading the file once, and `onBytes`
 * counts those reads for the progress bar.
 */
export class DirectoryFiles implements ArchiveFiles {
  readonly #digests = new Map<string, Promise<string>>();

  constructor(
    readonly source: string,
    private readonly onBytes?: (bytes: number) => void,
  ) {}

  async locate(name: string): Promise<{ path: string; size: number } | undefined> {
    const path = join(this.source, ...normalizeMemberName(name, this.source).split(posix.sep));
    try {
      const stats = await stat(path);
      return stats.isFile() ? { path, size: stats.size } : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ImageError('READ_FAILED', `cannot read ${path}: ${(error as Error).message}`, { path, cause: error });
    }
  }

  sha256(name: string): Promise<string> {
    let digest = this.#digests.get(name);
    if (digest === undefined) {
      digest = this.#hash(name);
      this.#digests.set(name, digest);
    }
    return digest;
  }

  async #hash(name: string): Promise<string> {
    const member = await requireMember(this, name, 'file');
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(member.path)) {
      hash.update(chunk as Buffer);
      this.onBytes?.((chunk as Buffer).length);
    }
    return hash.digest('hex');
  }
}
