import { WireFormatError } from './errors.js';

/*
 * A frame is an 8-byte header followed by the payload:
 *
 *   offset 0  magic    u8   0x4d ('M')
 *   offset 1  version  u8   1
 *   offset 2  type     u8   a value of MessageType
 *   offset 3  flags    u8   0 (no flag is defined yet)
 *   offset 4  length   u32  payload length in bytes, big-endian
 *   offset 8  payload  `length` bytes
 */

export const FRAME_MAGIC = 0x4d;
export const FRAME_VERSION = 1;
export const FRAME_HEADER_SIZE = 8;

/** Default maximum payload length in bytes (64 MiB) that a receiver accepts. */
export const DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024;

/** Largest payload length that the 32-bit length field can carry. */
export const MAX_FRAME_LENGTH_FIELD = 0xffff_ffff;

/**
 * Type byte of each message. This object is the only table of message types.
 * A `terminal` or `pidsLimit` frame carries a descriptor as SCM_RIGHTS data
 * besides its bytes.
 */
export const MessageType = { config: 1, ready: 2, start: 3, error: 4, terminal: 5, pidsLimit: 6 } as const;

export type MessageTypeName = keyof typeof MessageType;

/**
 * One decoded frame. The payload is a copy, never a view into the chunks the
 * decoder was given. Payloads under 4 KiB may share a pooled ArrayBuffer,
 * as Buffer.allocUnsafe does.
 */
export interface Frame {
  type: MessageTypeName;
  payload: Uint8Array;
  /** Descriptors that arrived with the frame's bytes as SCM_RIGHTS data; none when absent. */
  descriptors?: readonly number[];
}

export interface DecoderOptions {
  /** Maximum payload length in bytes. Defaults to DEFAULT_MAX_FRAME_SIZE. */
  maxFrameSize?: number;
}

const TYPE_NAMES_BY_BYTE = new Map<number, MessageTypeName>(
  Object.entries(MessageType).map(([name, byte]) => [byte, name as MessageTypeName]),
);

/** Returns the payload limit from `options`. Throws RangeError unless it is an integer from 0 to 2^32 - 1. */
export function resolveMaxFrameSize(options: DecoderOptions | undefined): number {
  const limit = options?.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;

  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_FRAME_LENGTH_FIELD) {
    throw new RangeError(
      `maxFrameSize must be an integer from 0 to ${MAX_FRAME_LENGTH_FIELD}, got ${String(limit)}`,
    );
  }
  return limit;
}

/** Throws FRAME_TOO_LARGE unless a payload of `length` bytes fits `limit`. */
export function checkFrameLength(length: number, limit: number): void {
  if (length > limit) {
    throw new WireFormatError(
      'FRAME_TOO_LARGE',
      `frame length ${length} exceeds the ${limit}-byte limit`,
      { length, limit },
    );
  }
}

/** Writes the 8-byte header for a payload of `length` bytes at the start of `target`. */
export function writeFrameHeader(target: Uint8Array, type: MessageTypeName, length: number): void {
  const typeByte: number | undefined = MessageType[type];
  if (typeByte === undefined) {
    throw new WireFormatError('UNKNOWN_TYPE', `unknown message type ${JSON.stringify(type)}`);
  }
  checkFrameLength(length, MAX_FRAME_LENGTH_FIELD);

  const view = new DataView(target.buffer, target.byteOffset, FRAME_HEADER_SIZE);
  view.setUint8(0, FRAME_MAGIC);
  view.setUint8(1, FRAME_VERSION);
  view.setUint8(2, typeByte);
  view.setUint8(3, 0);
  view.setUint32(4, length, false);
}

/**
 * Encodes one frame. The payload is copied once into the returned buffer.
 * Throws FRAME_TOO_LARGE only for payloads the 32-bit length field cannot
 * carry, because the receiver's limit is not known here.
 */
export function encodeFrame(type: MessageTypeName, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.byteLength);
  writeFrameHeader(frame, type, payload.byteLength);
  frame.set(payload, FRAME_HEADER_SIZE);
  return frame;
}

/**
 * Validates the first 8 bytes of `header` and returns the message type and
 * the payload length. The checks run in header order: magic, version, type,
 * flags, then length against `maxFrameSize`, so a receiver can reject a huge
 * length before it allocates anything.
 */
export function parseFrameHeader(
  header: Uint8Array,
  options?: DecoderOptions,
): { type: MessageTypeName; length: number } {
  const limit = resolveMaxFrameSize(options);

  if (header.byteLength < FRAME_HEADER_SIZE) {
    throw new WireFormatError(
      'TRUNCATED',
      `frame header has ${header.byteLength} of ${FRAME_HEADER_SIZE} bytes`,
      { received: header.byteLength, expected: FRAME_HEADER_SIZE },
    );
  }
  return readFrameHeader(header, 0, limit);
}

/**
 * Validates the 8 header bytes at `offset` in `bytes` against a payload limit
 * already checked by resolveMaxFrameSize. The caller guarantees that the 8
 * bytes exist. The decoder calls this on every frame, so it reads the bytes
 * in place and allocates nothing unless it throws.
 */
export function readFrameHeader(
  bytes: Uint8Array,
  offset: number,
  limit: number,
): { type: MessageTypeName; length: number } {
  const magic = byteAt(bytes, offset);
  if (magic !== FRAME_MAGIC) {
    throw new WireFormatError(
      'BAD_MAGIC',
      `bad magic byte ${formatByte(magic)} (expected ${formatByte(FRAME_MAGIC)})`,
      { byte: magic },
    );
  }

  const version = byteAt(bytes, offset + 1);
  if (version !== FRAME_VERSION) {
    throw new WireFormatError(
      'BAD_VERSION',
      `unsupported frame version ${version} (expected ${FRAME_VERSION})`,
      { byte: version },
    );
  }

  const typeByte = byteAt(bytes, offset + 2);
  const type = TYPE_NAMES_BY_BYTE.get(typeByte);
  if (type === undefined) {
    throw new WireFormatError('UNKNOWN_TYPE', `unknown message type ${typeByte}`, {
      byte: typeByte,
    });
  }

  const flags = byteAt(bytes, offset + 3);
  if (flags !== 0) {
    throw new WireFormatError('BAD_FLAGS', `unsupported frame flags ${formatByte(flags)} (expected 0x00)`, {
      byte: flags,
    });
  }

  // Big-endian u32. The multiplication keeps the top byte from turning the value negative.
  const length =
    byteAt(bytes, offset + 4) * 0x100_0000 +
    ((byteAt(bytes, offset + 5) << 16) | (byteAt(bytes, offset + 6) << 8) | byteAt(bytes, offset + 7));
  checkFrameLength(length, limit);

  return { type, length };
}

/** Reads a byte that the caller has bounds-checked. */
function byteAt(bytes: Uint8Array, index: number): number {
  return bytes[index] as number;
}

function formatByte(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}
