import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline, type Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { ImageError } from './errors.js';

/** The compressions the importer reads. Other compressions are rejected by {@link detectCompression}. */
export type Compression = 'none' | 'gzip';

// Magic bytes from each format's specification: gzip (RFC 1952), zstd
// (RFC 8878), bzip2 ("BZh") and xz (the .xz file format).
const MAGIC = {
  gzip: [0x1f, 0x8b],
  zstd: [0x28, 0xb5, 0x2f, 0xfd],
  bzip2: [0x42, 0x5a, 0x68],
  xz: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
} as const;

/** The number of leading bytes that {@link compressionOf} needs. */
export const MAGIC_LENGTH = 6;

/**
 * Returns the compression of data that starts with `head`. Throws
 * UNSUPPORTED_COMPRESSION for zstd, bzip2 and xz, which Node's zlib cannot
 * decompress. The message ends with `fix(command)`, such as "decompress it
 * first with `zstd -d FILE`".
 */
export function compressionOf(head: Buffer, label: string, fix: (command: string) => string): Compression {
  if (startsWith(head, MAGIC.gzip)) return 'gzip';

  for (const [name, command] of [
    ['zstd', 'zstd -d'],
    ['bzip2', 'bzip2 -d'],
    ['xz', 'xz -d'],
  ] as const) {
    if (startsWith(head, MAGIC[name])) {
      throw new ImageError(
        'UNSUPPORTED_COMPRESSION',
        `${label} is compressed with ${name}, which m-docker cannot decompress: ${fix(command)}`,
        { entry: label },
      );
    }
  }
  return 'none';
}

/** Reads the first bytes of the file at `path` and returns its compression, as {@link compressionOf}. */
export async function detectCompression(path: string): Promise<Compression> {
  const head = await readHead(path, MAGIC_LENGTH);
  return compressionOf(head, path, (command) => `decompress it first with \`${command} ${path}\``);
}

/** Reads up to `length` bytes from the start of a file. */
export async function readHead(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Reads the file at `path` and yields its decompressed bytes. `onBytes`
 * receives the length of each chunk read from the file, before
 * decompression. Errors of the file or of gunzip are thrown as
 * {@link describeStreamError} ImageErrors naming `label`. A consumer that
 * stops early closes the file.
 */
export async function* readDecompressed(
  path: string,
  compression: Compression,
  label: string,
  onBytes?: (bytes: number) => void,
): AsyncGenerator<Buffer> {
  const counter = countBytes(onBytes);
  const stages: NodeJS.ReadWriteStream[] = compression === 'gzip' ? [counter, createGunzip()] : [counter];
  // The callback form of pipeline returns the last stream and destroys
  // every stage with the first error, so the loop below receives it.
  const output = pipeline(createReadStream(path), ...(stages as [NodeJS.ReadWriteStream]), () => {}) as unknown as Readable;
  try {
    for await (const chunk of output) yield chunk as Buffer;
  } catch (error) {
    throw describeStreamError(error, label);
  } finally {
    output.destroy();
  }
}

/** Returns a pass-through stream that reports the length of each chunk to `onBytes`. */
export function countBytes(onBytes?: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onBytes?.(chunk.length);
      callback(null, chunk);
    },
  });
}

/**
 * Converts a stream error into an ImageError naming `label`: TRUNCATED for
 * a gzip stream that ends early, UNKNOWN_FORMAT for data that is not gzip.
 * ImageErrors pass unchanged, and other errors become READ_FAILED.
 */
export function describeStreamError(error: unknown, label: string): ImageError {
  if (ImageError.isInstance(error)) return error;
  const code = (error as { code?: unknown }).code;
  const message = (error as Error).message;
  if (code === 'Z_BUF_ERROR') {
    return new ImageError('TRUNCATED', `${label} ends in the middle of its gzip stream: the file is incomplete`, {
      entry: label,
      cause: error,
    });
  }
  if (code === 'Z_DATA_ERROR') {
    return new ImageError('UNKNOWN_FORMAT', `${label} is not valid gzip data: ${message}`, { entry: label, cause: error });
  }
  return new ImageError('READ_FAILED', `cannot read ${label}: ${message}`, { entry: label, cause: error });
}

function startsWith(head: Buffer, magic: readonly number[]): boolean {
  return head.length >= magic.length && magic.every((byte, index) => head[index] === byte);
}
