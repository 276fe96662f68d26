import { WireFormatError } from './errors.js';
import {
  type DecoderOptions,
  FRAME_HEADER_SIZE,
  type Frame,
  type MessageTypeName,
  readFrameHeader,
  resolveMaxFrameSize,
} from './frame.js';

/*
 * The decoder never concatenates chunks. A header split across chunks is
 * collected in a fixed 8-byte buffer, and a whole one is read in place. Once
 * the header is complete and its length is within the limit, the payload
 * buffer is allocated once at its exact size, and the payload bytes of each
 * chunk are copied into it once. Decoding a frame of N bytes therefore costs
 * O(N) time and at most N + 8 bytes of copying, whatever the chunk sizes.
 */

/** A frame whose payload is still arriving. */
interface PartialPayload {
  type: MessageTypeName;
  payload: Buffer;
  filled: number;
}

/**
 * Calls `onFrame` as each frame of `chunk` completes, so frames before an
 * invalid header in the same chunk still reach the caller. MessageChannel
 * uses it, and index.ts does not export it. FrameDecoder's static block sets
 * it because it needs the private fields.
 */
let decodeEachFrame: (decoder: FrameDecoder, chunk: Uint8Array, onFrame: (frame: Frame) => void) => void;

/**
 * Streaming frame decoder. Feed it chunks of any size with push(), and call
 * end() at end of stream. After a WireFormatError the stream cannot be
 * resynchronized, so every later push() and end() throws the same error.
 */
export class FrameDecoder {
  readonly #maxFrameSize: number;
  readonly #header = new Uint8Array(FRAME_HEADER_SIZE);
  #headerFilled = 0;
  #partial: PartialPayload | undefined;
  #failure: unknown;

  static {
    decodeEachFrame = (decoder, chunk, onFrame) => decoder.#decode(chunk, onFrame);
  }

  constructor(options?: DecoderOptions) {
    this.#maxFrameSize = resolveMaxFrameSize(options);
  }

  /** Number of bytes of an incomplete frame held, header bytes included. */
  get bufferedBytes(): number {
    if (this.#partial !== undefined) {
      return FRAME_HEADER_SIZE + this.#partial.filled;
    }
    return this.#headerFilled;
  }

  /**
   * Decodes the frames that `chunk` completes. The chunk is copied, so the
   * caller may reuse it. Throws WireFormatError on an invalid header, and the
   * frames completed earlier in the same chunk are then lost.
   */
  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    this.#decode(chunk, (frame) => frames.push(frame));
    return frames;
  }

  /** Marks the end of the stream. Throws TRUNCATED if a frame is incomplete. */
  end(): void {
    this.#throwIfFailed();

    if (this.#partial !== undefined) {
      const { payload, filled } = this.#partial;
      this.#failure = new WireFormatError(
        'TRUNCATED',
        `end of stream after ${filled} of ${payload.byteLength} payload bytes`,
        { received: filled, expected: payload.byteLength },
      );
      throw this.#failure;
    }

    if (this.#headerFilled > 0) {
      this.#failure = new WireFormatError(
        'TRUNCATED',
        `end of stream after ${this.#headerFilled} of ${FRAME_HEADER_SIZE} header bytes`,
        { received: this.#headerFilled, expected: FRAME_HEADER_SIZE },
      );
      throw this.#failure;
    }
  }

  /**
   * Consumes `chunk` and calls `onFrame` as each frame completes. An error
   * from the header checks or from `onFrame` leaves the rest of the chunk
   * unread, so the decoder keeps it as its failure.
   */
  #decode(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    this.#throwIfFailed();

    let offset = 0;
    try {
      while (offset < chunk.byteLength) {
        if (this.#partial === undefined) {
          offset = this.#fillHeader(chunk, offset, onFrame);
        } else {
          offset = this.#fillPayload(this.#partial, chunk, offset, onFrame);
        }
      }
    } catch (error) {
      this.#failure = error;
      throw error;
    }
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) {
      throw this.#failure;
    }
  }

  /**
   * Reads a header from `chunk` and returns the new offset into it. A header
   * that lies whole in the chunk is read in place. Otherwise its bytes are
   * collected in the 8-byte header buffer until it is complete.
   */
  #fillHeader(chunk: Uint8Array, offset: number, onFrame: (frame: Frame) => void): number {
    let header: { type: MessageTypeName; length: number };
    let next: number;

    if (this.#headerFilled === 0 && chunk.byteLength - offset >= FRAME_HEADER_SIZE) {
      header = readFrameHeader(chunk, offset, this.#maxFrameSize);
      next = offset + FRAME_HEADER_SIZE;
    } else {
      const count = Math.min(FRAME_HEADER_SIZE - this.#headerFilled, chunk.byteLength - offset);
      this.#header.set(chunk.subarray(offset, offset + count), this.#headerFilled);
      this.#headerFilled += count;
      next = offset + count;

      if (this.#headerFilled < FRAME_HEADER_SIZE) {
        return next;
      }
      header = readFrameHeader(this.#header, 0, this.#maxFrameSize);
      this.#headerFilled = 0;
    }

    // readFrameHeader has checked the length against the limit, so this
    // allocation is at most maxFrameSize bytes.
    const payload = Buffer.allocUnsafe(header.length);

    // A payload that is whole in this chunk is copied at once, which is the
    // common case for small frames. Otherwise the next chunks fill it.
    if (chunk.byteLength - next >= header.length) {
      payload.set(chunk.subarray(next, next + header.length));
      onFrame({ type: header.type, payload });
      return next + header.length;
    }
    this.#partial = { type: header.type, payload, filled: 0 };
    return next;
  }

  /** Copies payload bytes from `chunk` and returns the new offset into it. */
  #fillPayload(partial: PartialPayload, chunk: Uint8Array, offset: number, onFrame: (frame: Frame) => void): number {
    const { payload } = partial;
    const count = Math.min(payload.byteLength - partial.filled, chunk.byteLength - offset);
    payload.set(chunk.subarray(offset, offset + count), partial.filled);
    partial.filled += count;

    if (partial.filled === payload.byteLength) {
      this.#partial = undefined;
      onFrame({ type: partial.type, payload });
    }
    return offset + count;
  }
}

export { decodeEachFrame };

/**
 * Decodes a buffer that must contain whole frames only. Throws TRUNCATED if
 * it ends inside a frame.
 */
export function decodeFrames(data: Uint8Array, options?: DecoderOptions): Frame[] {
  const decoder = new FrameDecoder(options);
  const frames = decoder.push(data);
  decoder.end();
  return frames;
}
