import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  decodeFrames,
  encodeFrame,
  encodeMessage,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  type WireFormatErrorCode,
  WireFormatError,
} from '../src/index.js';
import { message, sampleConfig, splitAt } from './arbitraries.js';

function catchWireFormatError(run: () => unknown): WireFormatError {
  try {
    run();
  } catch (error) {
    expect(WireFormatError.isInstance(error)).toBe(true);
    return error as WireFormatError;
  }
  throw new Error('expected a WireFormatError, but nothing was thrown');
}

/** Pushes each chunk and returns every frame decoded. */
function pushAll(decoder: FrameDecoder, chunks: readonly Uint8Array[]) {
  return chunks.flatMap((chunk) => decoder.push(chunk));
}

function oneByteChunks(data: Uint8Array): Uint8Array[] {
  return Array.from({ length: data.byteLength }, (_, index) => data.subarray(index, index + 1));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('FrameDecoder', () => {
  it('decoder decodes one frame in one chunk', () => {
    const decoder = new FrameDecoder();
    const frames = decoder.push(encodeFrame('error', Buffer.from('{"x":1}')));

    expect(frames).toHaveLength(1);
    expect(frames[0]?.type).toBe('error');
    expect(Buffer.from(frames[0]?.payload ?? []).toString()).toBe('{"x":1}');
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('decoder decodes one-byte chunks', () => {
    const data = Buffer.concat([encodeFrame('config', Buffer.from('abc')), encodeFrame('start', new Uint8Array(0))]);
    const decoder = new FrameDecoder();
    const frames = pushAll(decoder, oneByteChunks(data));

    expect(frames.map((frame) => frame.type)).toEqual(['config', 'start']);
    expect(Buffer.from(frames[0]?.payload ?? []).toString()).toBe('abc');
    expect(frames[1]?.payload.byteLength).toBe(0);
  });

  it('decoder decodes a header split across chunks', () => {
    const data = encodeFrame('config', Buffer.from('payload'));
    const decoder = new FrameDecoder();

    expect(decoder.push(data.subarray(0, 3))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(3);
    expect(decoder.push(data.subarray(3, 10))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(10);

    const frames = decoder.push(data.subarray(10));
    expect(frames).toHaveLength(1);
    expect(Buffer.from(frames[0]?.payload ?? []).toString()).toBe('payload');
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('decoder decodes several frames in one chunk', () => {
    const data = Buffer.concat([
      encodeFrame('ready', new Uint8Array(0)),
      encodeFrame('config', Buffer.from('a')),
      encodeFrame('start', new Uint8Array(0)),
      encodeFrame('error', Buffer.from('bc')),
      encodeFrame('config', Buffer.from('def')).subarray(0, 5),
    ]);
    const decoder = new FrameDecoder();
    const frames = decoder.push(data);

    expect(frames.map((frame) => frame.type)).toEqual(['ready', 'config', 'start', 'error']);
    expect(decoder.bufferedBytes).toBe(5);
  });

  it('decoder accepts empty chunks', () => {
    const decoder = new FrameDecoder();

    expect(decoder.push(new Uint8Array(0))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(0);
    decoder.end();
  });

  it('decoder copies input chunks', () => {
    const data = encodeFrame('config', Buffer.from('abc'));
    const frames = new FrameDecoder().push(data);
    data.fill(0);

    expect(Buffer.from(frames[0]?.payload ?? []).toString()).toBe('abc');
  });

  it('decoder end accepts a frame boundary', () => {
    const decoder = new FrameDecoder();
    decoder.push(encodeFrame('start', new Uint8Array(0)));

    expect(() => decoder.end()).not.toThrow();
  });

  const truncations: Array<{ name: string; bytes: number; message: string; received: number; expected: number }> = [
    { name: 'one header byte', bytes: 1, message: 'end of stream after 1 of 8 header bytes', received: 1, expected: 8 },
    { name: 'seven header bytes', bytes: 7, message: 'end of stream after 7 of 8 header bytes', received: 7, expected: 8 },
    {
      name: 'header only',
      bytes: 8,
      message: 'end of stream after 0 of 4096 payload bytes',
      received: 0,
      expected: 4096,
    },
    {
      name: 'partial payload',
      bytes: 108,
      message: 'end of stream after 100 of 4096 payload bytes',
      received: 100,
      expected: 4096,
    },
    {
      name: 'one byte short',
      bytes: 4103,
      message: 'end of stream after 4095 of 4096 payload bytes',
      received: 4095,
      expected: 4096,
    },
  ];

  it.each(truncations)('decoder end rejects $name', ({ bytes, message, received, expected }) => {
    const data = encodeFrame('config', new Uint8Array(4096)).subarray(0, bytes);
    const decoder = new FrameDecoder();
    decoder.push(data);

    const error = catchWireFormatError(() => decoder.end());
    expect(error.code).toBe('TRUNCATED');
    expect(error.message).toBe(message);
    expect(error.received).toBe(received);
    expect(error.expected).toBe(expected);
  });

  it.each(truncations)('decodeFrames rejects $name', ({ bytes, message }) => {
    const data = Buffer.concat([
      encodeFrame('start', new Uint8Array(0)),
      encodeFrame('config', new Uint8Array(4096)).subarray(0, bytes),
    ]);

    const error = catchWireFormatError(() => decodeFrames(data));
    expect(error.code).toBe('TRUNCATED');
    expect(error.message).toBe(message);
  });

  const badHeaders: Array<{ name: string; bytes: number[]; code: WireFormatErrorCode; message: string }> = [
    { name: 'bad magic', bytes: [0x41, 1, 1, 0, 0, 0, 0, 0], code: 'BAD_MAGIC', message: 'bad magic byte 0x41 (expected 0x4d)' },
    {
      name: 'bad version',
      bytes: [0x4d, 2, 1, 0, 0, 0, 0, 0],
      code: 'BAD_VERSION',
      message: 'unsupported frame version 2 (expected 1)',
    },
    { name: 'unknown type', bytes: [0x4d, 1, 9, 0, 0, 0, 0, 0], code: 'UNKNOWN_TYPE', message: 'unknown message type 9' },
    {
      name: 'non-zero flags',
      bytes: [0x4d, 1, 1, 4, 0, 0, 0, 0],
      code: 'BAD_FLAGS',
      message: 'unsupported frame flags 0x04 (expected 0x00)',
    },
    {
      name: 'oversized frame',
      bytes: [0x4d, 1, 1, 0, 0xff, 0xff, 0xff, 0xff],
      code: 'FRAME_TOO_LARGE',
      message: 'frame length 4294967295 exceeds the 67108864-byte limit',
    },
  ];

  it.each(badHeaders)('decoder rejects $name', ({ bytes, code, message }) => {
    const error = catchWireFormatError(() => new FrameDecoder().push(Buffer.from(bytes)));

    expect(error.code).toBe(code);
    expect(error.message).toBe(message);
  });

  it.each(badHeaders)('decoder rejects $name after a valid frame', ({ bytes, code }) => {
    const data = Buffer.concat([encodeFrame('start', new Uint8Array(0)), Buffer.from(bytes)]);

    expect(catchWireFormatError(() => decodeFrames(data)).code).toBe(code);
  });

  it.each(badHeaders)('decoder rejects $name on the last header byte', ({ bytes, code }) => {
    const decoder = new FrameDecoder();
    for (const byte of bytes.slice(0, FRAME_HEADER_SIZE - 1)) {
      expect(decoder.push(Buffer.from([byte]))).toEqual([]);
    }

    expect(catchWireFormatError(() => decoder.push(Buffer.from([bytes[FRAME_HEADER_SIZE - 1] ?? 0]))).code).toBe(code);
  });

  it('decoder rejects oversized frame before allocating', () => {
    const allocUnsafeSlow = vi.spyOn(Buffer, 'allocUnsafeSlow');
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const alloc = vi.spyOn(Buffer, 'alloc');
    const decoder = new FrameDecoder({ maxFrameSize: 1024 });

    // The header alone announces 4 GiB - 1 and must fail on its own, with no payload bytes sent.
    const error = catchWireFormatError(() => decoder.push(Buffer.from([0x4d, 1, 1, 0, 0xff, 0xff, 0xff, 0xff])));

    expect(error.code).toBe('FRAME_TOO_LARGE');
    expect(error.message).toBe('frame length 4294967295 exceeds the 1024-byte limit');
    expect(error.length).toBe(4294967295);
    expect(error.limit).toBe(1024);
    expect(allocUnsafeSlow).not.toHaveBeenCalled();
    expect(allocUnsafe).not.toHaveBeenCalled();
    expect(alloc).not.toHaveBeenCalled();
  });

  it('decoder accepts a frame at the limit', () => {
    const frames = decodeFrames(encodeFrame('config', new Uint8Array(1024)), { maxFrameSize: 1024 });

    expect(frames[0]?.payload.byteLength).toBe(1024);
  });

  it('decoder keeps failing after an error', () => {
    const decoder = new FrameDecoder();
    const first = catchWireFormatError(() => decoder.push(Buffer.from([0x41, 1, 1, 0, 0, 0, 0, 0])));

    expect(catchWireFormatError(() => decoder.push(encodeFrame('start', new Uint8Array(0))))).toBe(first);
    expect(catchWireFormatError(() => decoder.end())).toBe(first);
  });

  it('decoder rejects an invalid maxFrameSize', () => {
    expect(() => new FrameDecoder({ maxFrameSize: -1 })).toThrow(RangeError);
  });

  it('decodeFrames returns nothing for empty input', () => {
    expect(decodeFrames(new Uint8Array(0))).toEqual([]);
  });

  it('decoder round trips messages split at any boundary', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 5 }), fc.array(fc.nat()), (messages, cuts) => {
        const frames = messages.map((item) => encodeMessage(item));
        const data = Buffer.concat(frames);
        const decoder = new FrameDecoder();
        const decoded = pushAll(decoder, splitAt(data, cuts));
        decoder.end();

        expect(decoded).toHaveLength(frames.length);
        decoded.forEach((frame, index) => {
          const encoded = frames[index] ?? Buffer.alloc(0);
          expect(frame.type).toBe(messages[index]?.type);
          expect(Buffer.from(frame.payload).equals(encoded.subarray(FRAME_HEADER_SIZE))).toBe(true);
        });
      }),
    );
  });

  it('decoder round trips messages in one-byte chunks', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 3 }), (messages) => {
        const data = Buffer.concat(messages.map((item) => encodeMessage(item)));
        const decoder = new FrameDecoder();
        const decoded = pushAll(decoder, oneByteChunks(data));
        decoder.end();

        expect(decoded.map((frame) => frame.type)).toEqual(messages.map((item) => item.type));
      }),
      { numRuns: 50 },
    );
  });
});

describe('FrameDecoder linearity', () => {
  const PAYLOAD_SIZE = 64 * 1024 * 1024;
  const CHUNK_SIZE = 4096;

  it('decoder fills a 64 MiB payload in place', () => {
    // A 251-byte cycle is not a divisor of the chunk size, so a chunk copied to
    // the wrong offset shows up in the final comparison.
    const payload = Buffer.allocUnsafe(PAYLOAD_SIZE);
    for (let offset = 0; offset < PAYLOAD_SIZE; offset++) {
      payload[offset] = offset % 251;
    }
    const data = encodeFrame('config', payload);

    // Spies go in after encoding, so they see only the decoder's work.
    const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as Uint8Array;
    let copiedBytes = 0;
    let copies = 0;
    const originalSet = typedArrayPrototype.set;
    const set = vi.spyOn(typedArrayPrototype, 'set').mockImplementation(function (
      this: Uint8Array,
      source: ArrayLike<number>,
      offset?: number,
    ) {
      copies += 1;
      copiedBytes += source.length;
      originalSet.call(this, source, offset);
    });
    const concat = vi.spyOn(Buffer, 'concat');
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const allocUnsafeSlow = vi.spyOn(Buffer, 'allocUnsafeSlow');
    const alloc = vi.spyOn(Buffer, 'alloc');

    const decoder = new FrameDecoder();
    const frames: ReturnType<FrameDecoder['push']> = [];
    const chunkCount = Math.ceil(data.byteLength / CHUNK_SIZE);
    for (let offset = 0; offset < data.byteLength; offset += CHUNK_SIZE) {
      frames.push(...decoder.push(data.subarray(offset, offset + CHUNK_SIZE)));
    }
    decoder.end();
    set.mockRestore();

    // One allocation at the exact payload size, and it is the buffer returned.
    expect(allocUnsafe).toHaveBeenCalledTimes(1);
    expect(allocUnsafe).toHaveBeenCalledWith(PAYLOAD_SIZE);
    expect(allocUnsafeSlow).not.toHaveBeenCalled();
    expect(alloc).not.toHaveBeenCalled();
    expect(frames).toHaveLength(1);
    expect(frames[0]?.payload).toBe(allocUnsafe.mock.results[0]?.value);

    // No input byte is copied twice: at most one copy per chunk plus one for
    // a split header, and no more bytes than the input holds. Nothing is
    // concatenated.
    expect(concat).not.toHaveBeenCalled();
    expect(copiedBytes).toBeGreaterThanOrEqual(PAYLOAD_SIZE);
    expect(copiedBytes).toBeLessThanOrEqual(data.byteLength);
    expect(copies).toBeLessThanOrEqual(chunkCount + 1);

    expect(Buffer.from(frames[0]?.payload ?? []).equals(payload)).toBe(true);
  });

  it('decoder fills a payload across chunks without temporary buffers', () => {
    const payload = Buffer.from('x'.repeat(10_000));
    const data = encodeFrame('config', payload);
    const allocUnsafeSlow = vi.spyOn(Buffer, 'allocUnsafeSlow');
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const alloc = vi.spyOn(Buffer, 'alloc');
    const concat = vi.spyOn(Buffer, 'concat');

    // The cuts split the header (at 3) and the payload several times.
    const decoder = new FrameDecoder();
    const frames = pushAll(decoder, splitAt(data, [3, 9, 100, 5000, 9999]));

    expect(allocUnsafe).toHaveBeenCalledTimes(1);
    expect(allocUnsafe).toHaveBeenCalledWith(10_000);
    expect(allocUnsafeSlow).not.toHaveBeenCalled();
    expect(alloc).not.toHaveBeenCalled();
    expect(concat).not.toHaveBeenCalled();
    expect(frames[0]?.payload).toEqual(payload);
  });
});

describe('decodeFrames with messages', () => {
  it('decodeFrames returns frames in order', () => {
    const data = Buffer.concat([
      encodeMessage({ type: 'config', config: sampleConfig() }),
      encodeMessage({ type: 'start' }),
    ]);

    expect(decodeFrames(data).map((frame) => frame.type)).toEqual(['config', 'start']);
  });
});
