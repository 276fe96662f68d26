// Raw reads of tar headers that tar-stream 3 decodes lossily. tar-stream
// decodes every pax record value as UTF-8, but an extended attribute such as
// security.capability is binary, and bytes such as 0x80 would turn into
// U+FFFD. It also drops the type flag of a member type it does not know. So
// the unpacker keeps the raw bytes around each member's headers and reads
// those fields again here.
//
// Layout (POSIX.1-2001 pax, ustar): every header is a 512-byte block. Its
// size field is 12 bytes at offset 124, octal text or, when the first byte
// has its high bit set, base-256. The type flag is the byte at 156.
// A member's data follows its header, padded with zeros to 512 bytes. An
// extended header (type `x`) contains records `LENGTH KEY=VALUE\n`, where
// LENGTH counts the whole record in bytes.

const BLOCK_SIZE = 512;
const SIZE_OFFSET = 124;
const SIZE_LENGTH = 12;
const TYPE_FLAG_OFFSET = 156;
const PAX_HEADER_FLAG = 0x78; // 'x'
const SPACE = 0x20;
const EQUALS = 0x3d;

/** Rounds a data size up to whole 512-byte blocks. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
}

/**
 * The bytes of a stream from a moving start position to the last byte
 * appended. The unpacker appends every chunk it reads and discards what lies
 * before the next member's headers, so this keeps about one member's
 * headers plus the chunks tar-stream buffers ahead.
 */
export class RetainedBytes {
  private readonly chunks: { start: number; bytes: Buffer }[] = [];
  private keepFrom = 0;
  private end = 0;

  /** Appends the next chunk of the stream; bytes before the kept start are not stored. */
  append(chunk: Buffer): void {
    const start = this.end;
    this.end += chunk.length;
    if (this.end <= this.keepFrom) return;

    const skip = Math.max(0, this.keepFrom - start);
    this.chunks.push({ start: start + skip, bytes: chunk.subarray(skip) });
  }

  /** Drops the bytes before stream position `position`. */
  discardBefore(position: number): void {
    this.keepFrom = Math.max(this.keepFrom, position);

    while (this.chunks.length > 0) {
      const first = this.chunks[0] as { start: number; bytes: Buffer };
      const firstEnd = first.start + first.bytes.length;
      if (firstEnd <= this.keepFrom) {
        this.chunks.shift();
        continue;
      }
      if (first.start < this.keepFrom) {
        first.bytes = first.bytes.subarray(this.keepFrom - first.start);
        first.start = this.keepFrom;
      }
      break;
    }
  }

  /** Returns the bytes from `start` to `end`, or undefined when part of that range was discarded or not read yet. */
  slice(start: number, end: number): Buffer | undefined {
    if (start < this.keepFrom || end > this.end) return undefined;

    const parts: Buffer[] = [];
    for (const { start: chunkStart, bytes } of this.chunks) {
      const chunkEnd = chunkStart + bytes.length;
      if (chunkEnd <= start || chunkStart >= end) continue;
      parts.push(bytes.subarray(Math.max(0, start - chunkStart), Math.min(bytes.length, end - chunkStart)));
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }
}

/** Returns the type flag byte of the header block at stream position `headerStart`, or undefined when it is not retained. */
export function typeFlagAt(bytes: RetainedBytes, headerStart: number): number | undefined {
  return bytes.slice(headerStart + TYPE_FLAG_OFFSET, headerStart + TYPE_FLAG_OFFSET + 1)?.[0];
}

/**
 * Reads the pax records of the extended headers (type `x`) between stream
 * positions `from` and `to`: the headers that precede one member's own
 * header. Values stay raw bytes. Returns undefined when the range is not
 * retained or does not consist of whole headers.
 */
export function readPaxRecords(bytes: RetainedBytes, from: number, to: number): Map<string, Buffer> | undefined {
  const records = new Map<string, Buffer>();

  let position = from;
  while (position < to) {
    const header = bytes.slice(position, position + BLOCK_SIZE);
    if (header === undefined) return undefined;

    // A zero block between members is skipped, as tar-stream does.
    if (header.every((byte) => byte === 0)) {
      position += BLOCK_SIZE;
      continue;
    }

    const size = decodeSize(header.subarray(SIZE_OFFSET, SIZE_OFFSET + SIZE_LENGTH));
    const dataStart = position + BLOCK_SIZE;
    if (header[TYPE_FLAG_OFFSET] === PAX_HEADER_FLAG) {
      const data = bytes.slice(dataStart, dataStart + size);
      if (data === undefined) return undefined;
      parseRecords(data, records);
    }
    position = dataStart + paddedSize(size);
  }

  return position === to ? records : undefined;
}

// Later records replace earlier ones, and parsing stops at the first
// malformed record, as tar-stream's own decoder does.
function parseRecords(data: Buffer, records: Map<string, Buffer>): void {
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(SPACE, offset);
    if (space === -1) return;

    const length = Number.parseInt(data.toString('latin1', offset, space), 10);
    if (!(length > 0) || offset + length > data.length) return;

    // The record without its length prefix and without the final newline.
    const record = data.subarray(space + 1, offset + length - 1);
    const equals = record.indexOf(EQUALS);
    if (equals === -1) return;

    records.set(record.toString('utf8', 0, equals), record.subarray(equals + 1));
    offset += length;
  }
}

function decodeSize(field: Buffer): number {
  if (((field[0] as number) & 0x80) !== 0) {
    // Base-256: a big-endian number in the bytes after the marker byte.
    let size = 0;
    for (const byte of field.subarray(1)) size = size * 256 + byte;
    return size;
  }

  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '');
  return text === '' ? 0 : Number.parseInt(text, 8);
}
