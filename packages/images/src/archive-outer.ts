import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

import { type ArchiveFiles, normalizeMemberName } from './archive-files.js';
import { type Compression, describeStreamError, readDecompressed } from './archive-input.js';
import { ImageError } from './errors.js';

// How the outer archive is read. A docker save archive may put
// manifest.json last (docker before 25 does), so the importer cannot know
// which member is a layer until it has read the whole tar. The reader
// therefore copies every regular member into the staging directory and
// hashes it on the way, so blob digests are checked without a second read.
// The copies are flat files named `archive/0`, `archive/1` and so on, so no
// member name ever becomes a host path. The cost is disk space for one copy
// of the archive in `<root>/tmp` during the import.
//
// A root file system tarball is not copied. Some of its members cannot be
// in an image archive: devices, FIFOs, and paths of more than 3 components,
// deeper than `blobs/sha256/<hex>`. At the first such member the reader
// stops, and the importer streams the file again, straight into
// unpackLayer.

/** One member of a tar as tar-stream's extract yields it: a readable stream of its data with its `header`. */
type TarEntry = tar.ExtractEvents['entry'][1];

/** A regular member of the outer archive, copied into the staging directory. */
interface StagedMember {
  path: string;
  size: number;
  sha256: string;
}

/** Maximum number of links followed when a member name is resolved. */
const MAX_LINK_DEPTH = 8;

/** Deepest member path of an image archive: `blobs/sha256/<hex>`. */
const MAX_IMAGE_MEMBER_DEPTH = 3;

/** The staged members of an outer tar, with its symlinks and hard links resolved on lookup. */
export class StagedFiles implements ArchiveFiles {
  readonly members = new Map<string, StagedMember>();
  /** Member name to the normalized archive path it links to, or null for a link that leaves the archive. */
  readonly links = new Map<string, string | null>();
  /** Number of files copied so far, which names the next staged file. A later member of the same name replaces the earlier one, as in tar. */
  stagedCount = 0;

  constructor(readonly source: string) {}

  async locate(name: string): Promise<{ path: string; size: number } | undefined> {
    const member = this.#resolve(normalizeMemberName(name, this.source));
    return member === undefined ? undefined : { path: member.path, size: member.size };
  }

  async sha256(name: string): Promise<string> {
    const member = this.#resolve(normalizeMemberName(name, this.source));
    if (member === undefined) throw new ImageError('UNKNOWN_FORMAT', `${this.source} has no member ${JSON.stringify(name)}`, { entry: name });
    return member.sha256;
  }

  /** Returns whether the archive has a member of this normalized name. */
  has(name: string): boolean {
    return this.members.has(name) || this.links.has(name);
  }

  /** Throws UNSAFE_PATH for the first symlink or hard link that points outside the archive. */
  checkLinks(): void {
    for (const [name, target] of this.links) {
      if (target === null) {
        throw new ImageError('UNSAFE_PATH', `archive ${this.source}: link member ${JSON.stringify(name)} points outside the archive`, {
          entry: name,
        });
      }
    }
  }

  // docker save writes a layer that two images share once and links the
  // second `<id>/layer.tar` to the first, so links between members are
  // followed here, never on the host.
  #resolve(name: string): StagedMember | undefined {
    let current = name;
    for (let depth = 0; depth <= MAX_LINK_DEPTH; depth++) {
      const member = this.members.get(current);
      if (member !== undefined) return member;
      const target = this.links.get(current);
      if (target === undefined) return undefined;
      if (target === null) {
        throw new ImageError('UNSAFE_PATH', `archive ${this.source}: link member ${JSON.stringify(current)} points outside the archive`, {
          entry: current,
        });
      }
      current = target;
    }
    throw new ImageError('UNSAFE_PATH', `archive ${this.source}: member ${JSON.stringify(name)} is a chain of more than ${MAX_LINK_DEPTH} links`, {
      entry: name,
    });
  }
}

/** The result of reading the outer archive: an image archive's staged files, or a root file system tarball. */
export type OuterArchive = { kind: 'image'; files: StagedFiles } | { kind: 'rootfs' };

/**
 * Reads the tar at `path`, decompressed with `compression`, and copies
 * its regular members into `stagingDir`, or stops early and returns
 * `rootfs` when a member shows that it is a root file system tarball.
 * Throws UNSAFE_PATH for an unsafe member name, TRUNCATED for a tar that
 * ends inside a member, and UNKNOWN_FORMAT for data that is not a tar.
 */
export async function readOuterArchive(
  path: string,
  compression: Compression,
  stagingDir: string,
  onBytes?: (bytes: number) => void,
): Promise<OuterArchive> {
  const files = new StagedFiles(path);
  await mkdir(stagingDir, { recursive: true });

  const extract = tar.extract();
  const feeding = pipeline(Readable.from(readDecompressed(path, compression, path, onBytes)), extract);
  // The loop below reports the error, and this catch only keeps the rejection from being unhandled.
  feeding.catch(() => {});

  let current: string | undefined;
  let last: string | undefined;
  try {
    for await (const entry of extract) {
      current = entry.header.name;
      const kind = await readMember(files, entry, stagingDir);
      last = current;
      current = undefined;
      if (kind === 'rootfs') {
        extract.destroy();
        return { kind: 'rootfs' };
      }
    }
    await feeding;
  } catch (error) {
    extract.destroy();
    throw describeTarError(error, path, current, last);
  }
  return { kind: 'image', files };
}

async function readMember(files: StagedFiles, entry: TarEntry, stagingDir: string): Promise<'image' | 'rootfs'> {
  const { header } = entry;
  const name = normalizeMemberName(header.name, files.source);
  const depth = name === '' ? 0 : name.split('/').length;
  const type = header.type ?? 'file';

  if (depth > MAX_IMAGE_MEMBER_DEPTH || !['file', 'contiguous-file', 'directory', 'symlink', 'link'].includes(type)) {
    entry.resume();
    return 'rootfs';
  }

  if (type === 'symlink' || type === 'link') {
    // A symlink's target is relative to its directory, and a hard link's
    // target is an archive path.
    const linkname = header.linkname ?? '';
    const target = type === 'symlink' && !linkname.startsWith('/') ? posix.join(posix.dirname(name), linkname) : linkname;
    files.links.set(name, resolveLinkTarget(target, files.source));
    entry.resume();
    return 'image';
  }
  if (type === 'directory') {
    entry.resume();
    return 'image';
  }

  const stagedPath = join(stagingDir, String(files.stagedCount++));
  const hash = createHash('sha256');
  let size = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const copy = createWriteStream(stagedPath, { flags: 'wx' });
  try {
    await pipeline(entry, hashing, copy);
  } catch (error) {
    // pipeline() rejects as soon as the archive fails, while the copy's
    // open(2) may still be on its way. The file it creates after the
    // import removed the staging directory would stay, so the copy is
    // closed first.
    if (!copy.closed) await new Promise<void>((resolve) => copy.once('close', () => resolve()));
    // A failed write, such as ENOSPC, is the store's failure, not the
    // archive's. Errors of the archive arrive as ImageErrors (read errors)
    // or as tar-stream's errors, which have no syscall.
    if (!ImageError.isInstance(error) && typeof (error as NodeJS.ErrnoException).syscall === 'string') {
      throw new ImageError('STORE_FAILED', `cannot copy member ${JSON.stringify(header.name)} of ${files.source} to ${stagedPath}: ${(error as Error).message}`, {
        path: stagedPath,
        entry: header.name,
        cause: error,
      });
    }
    throw error;
  }
  files.members.set(name, { path: stagedPath, size, sha256: hash.digest('hex') });
  return 'image';
}

function resolveLinkTarget(target: string, source: string): string | null {
  if (target.startsWith('/')) return null;
  const normalized = posix.normalize(target);
  if (normalized === '..' || normalized.startsWith('../')) return null;
  return normalizeMemberName(normalized, source);
}

// tar-stream reports a tar that ends inside a header or member as
// "Unexpected end of data", and data that is no tar as an invalid header.
function describeTarError(error: unknown, path: string, current: string | undefined, last: string | undefined): ImageError {
  if (ImageError.isInstance(error)) {
    if (error.code !== 'TRUNCATED' || current === undefined) return error;
    return new ImageError('TRUNCATED', `${path} ends in the middle of member ${JSON.stringify(current)}: the file is incomplete`, {
      entry: current,
      cause: error,
    });
  }

  const message = (error as Error).message ?? String(error);
  if (message.includes('Unexpected end of data')) {
    let where = 'in its first header';
    if (current !== undefined) where = `in the middle of member ${JSON.stringify(current)}`;
    else if (last !== undefined) where = `after member ${JSON.stringify(last)}`;
    const entry = current ?? last;
    return new ImageError('TRUNCATED', `${path} ends ${where}: the file is incomplete`, {
      ...(entry !== undefined ? { entry } : {}),
      cause: error,
    });
  }
  if (message.includes('Invalid tar header') || message.includes('Invalid header')) {
    return new ImageError(
      'UNKNOWN_FORMAT',
      `${path} is not a tar archive${last !== undefined ? ` after member ${JSON.stringify(last)}` : ''}: expected a docker save archive, an OCI layout (tar or directory) or a root file system tarball, optionally gzip-compressed`,
      { cause: error },
    );
  }
  return describeStreamError(error, path);
}
