import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar, { type Header } from 'tar-stream';

// Tar builders for the unpackLayer tests. `packTar` uses tar-stream's pack,
// which writes ustar headers and pax headers where a name, a link name or
// `pax` needs them. `rawHeader` builds single header blocks by hand, for
// what pack cannot write: GNU long names, binary pax values, pax `size`,
// and unknown type flags.

/** A member for `packTar`: tar-stream's header fields plus pax records and the data. */
export interface PackMember extends Partial<Omit<Header, 'pax'>> {
  name: string;
  pax?: Record<string, string>;
  content?: string | Buffer;
}

/** A fixed mtime, so that tests can compare times exactly: 2023-11-14T22:13:20Z. */
export const MTIME = new Date(1_700_000_000_000);

/** Builds a tar with tar-stream's pack, ending with the two zero blocks. */
export async function packTar(members: readonly PackMember[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });

  for (const { content, ...header } of members) {
    const full = { mtime: MTIME, ...header } as Parameters<typeof pack.entry>[0];
    if (content === undefined) pack.entry(full);
    else pack.entry(full, content);
  }
  pack.finalize();

  await ended;
  return Buffer.concat(chunks);
}

/** Fields of a hand-built header block. `type` is the one-character type flag. */
export interface RawHeaderFields {
  /** The name; a Buffer is copied byte for byte, so it may be invalid UTF-8. */
  name: string | Buffer;
  type: string;
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
}

/** Builds one 512-byte ustar header block with a valid checksum. */
export function rawHeader(fields: RawHeaderFields): Buffer {
  const block = Buffer.alloc(512);
  if (typeof fields.name === 'string') block.write(fields.name, 0, 100, 'utf8');
  else fields.name.copy(block, 0, 0, 100);
  writeOctal(block, 100, 8, fields.mode ?? 0o644);
  writeOctal(block, 108, 8, fields.uid ?? 0);
  writeOctal(block, 116, 8, fields.gid ?? 0);
  writeOctal(block, 124, 12, fields.size ?? 0);
  writeOctal(block, 136, 12, fields.mtime ?? MTIME.getTime() / 1000);
  block.write(fields.type, 156, 1, 'latin1');
  block.write(fields.linkname ?? '', 157, 100, 'utf8');
  block.write('ustar\0', 257, 'latin1');
  block.write('00', 263, 'latin1');

  // The checksum counts its own field as eight spaces.
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, 'latin1');
}

/** Pads member data with zeros to whole 512-byte blocks. */
export function padded(data: Buffer): Buffer {
  const remainder = data.length % 512;
  return remainder === 0 ? data : Buffer.concat([data, Buffer.alloc(512 - remainder)]);
}

/** Builds a member of a hand-built tar: its header and its padded data. */
export function rawMember(fields: RawHeaderFields, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([rawHeader({ ...fields, size: fields.size ?? data.length }), padded(data)]);
}

/** Encodes pax records `LENGTH KEY=VALUE\n`, with values as raw bytes. */
export function paxRecords(records: readonly (readonly [string, string | Buffer])[]): Buffer {
  return Buffer.concat(
    records.map(([key, value]) => {
      const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
      // The length prefix counts itself.
      let length = body.length + 1;
      while (String(length).length + body.length > length) length++;
      return Buffer.concat([Buffer.from(String(length)), body]);
    }),
  );
}

/** Builds a pax extended header (type `x`) with `records`, for the member that follows. */
export function paxHeader(records: readonly (readonly [string, string | Buffer])[]): Buffer {
  return rawMember({ name: 'PaxHeader', type: 'x' }, paxRecords(records));
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);

/** Directories of one test: `target` (empty) and `sentinel` beside it, which contains `file`. */
export interface LayerDirs {
  base: string;
  target: string;
  sentinel: string;
}

/** Creates the test's directories under the system's temporary directory. */
export function makeLayerDirs(): LayerDirs {
  const base = mkdtempSync(join(tmpdir(), 'm-docker-unpack-'));
  const target = join(base, 'layer');
  const sentinel = join(base, 'sentinel');
  mkdirSync(target);
  mkdirSync(sentinel);
  writeFileSync(join(sentinel, 'file'), 'sentinel\n');
  return { base, target, sentinel };
}

export function removeLayerDirs(dirs: LayerDirs | undefined): void {
  if (dirs) rmSync(dirs.base, { recursive: true, force: true });
}
