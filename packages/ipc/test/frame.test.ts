import { describe, expect, it } from 'vitest';

import {
  DEFAULT_MAX_FRAME_SIZE,
  encodeFrame,
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  FRAME_VERSION,
  MessageType,
  parseFrameHeader,
  WireFormatError,
  type WireFormatErrorCode,
} from '../src/index.js';

/** Builds an 8-byte header from its fields, valid ones by default. */
function header(fields: { magic?: number; version?: number; type?: number; flags?: number; length?: number } = {}) {
  const bytes = Buffer.alloc(FRAME_HEADER_SIZE);
  bytes[0] = fields.magic ?? FRAME_MAGIC;
  bytes[1] = fields.version ?? FRAME_VERSION;
  bytes[2] = fields.type ?? MessageType.config;
  bytes[3] = fields.flags ?? 0;
  bytes.writeUInt32BE(fields.length ?? 0, 4);
  return bytes;
}

/** Returns the WireFormatError that `run` throws, failing the test if it throws anything else. */
function catchWireFormatError(run: () => unknown): WireFormatError {
  try {
    run();
  } catch (error) {
    expect(WireFormatError.isInstance(error)).toBe(true);
    return error as WireFormatError;
  }
  throw new Error('expected a WireFormatError, but nothing was thrown');
}

describe('encodeFrame', () => {
  it('encodeFrame writes the header layout', () => {
    const frame = encodeFrame('error', Buffer.from('abc'));

    expect([...frame]).toEqual([0x4d, 1, 4, 0, 0, 0, 0, 3, 0x61, 0x62, 0x63]);
  });

  it('encodeFrame writes the length big-endian', () => {
    const frame = encodeFrame('config', new Uint8Array(0x010203));

    expect(frame.subarray(4, 8)).toEqual(Buffer.from([0x00, 0x01, 0x02, 0x03]));
    expect(frame.byteLength).toBe(FRAME_HEADER_SIZE + 0x010203);
  });

  it('encodeFrame accepts an empty payload', () => {
    expect([...encodeFrame('ready', new Uint8Array(0))]).toEqual([0x4d, 1, 2, 0, 0, 0, 0, 0]);
  });

  it('encodeFrame rejects an unknown type name', () => {
    const error = catchWireFormatError(() => encodeFrame('bogus' as 'config', new Uint8Array(0)));

    expect(error.code).toBe('UNKNOWN_TYPE');
    expect(error.message).toBe('unknown message type "bogus"');
  });

  it('encodeFrame copies the payload', () => {
    const payload = Buffer.from('abc');
    const frame = encodeFrame('config', payload);
    payload[0] = 0x7a;

    expect(frame.subarray(FRAME_HEADER_SIZE).toString()).toBe('abc');
  });
});

describe('MessageType', () => {
  it('MessageType has distinct type bytes', () => {
    const bytes = Object.values(MessageType);

    expect(new Set(bytes).size).toBe(bytes.length);
    expect(MessageType).toEqual({ config: 1, ready: 2, start: 3, error: 4, terminal: 5, pidsLimit: 6 });
  });
});

describe('parseFrameHeader', () => {
  it.each(Object.entries(MessageType))('parseFrameHeader reads type %s', (name, byte) => {
    expect(parseFrameHeader(header({ type: byte, length: 17 }))).toEqual({ type: name, length: 17 });
  });

  it('parseFrameHeader accepts a length equal to the limit', () => {
    expect(parseFrameHeader(header({ length: 100 }), { maxFrameSize: 100 })).toEqual({ type: 'config', length: 100 });
    expect(parseFrameHeader(header({ length: DEFAULT_MAX_FRAME_SIZE })).length).toBe(DEFAULT_MAX_FRAME_SIZE);
  });

  const rejections: Array<{
    name: string;
    bytes: Buffer;
    maxFrameSize?: number;
    code: WireFormatErrorCode;
    message: string;
  }> = [
    { name: 'bad magic', bytes: header({ magic: 0x41 }), code: 'BAD_MAGIC', message: 'bad magic byte 0x41 (expected 0x4d)' },
    { name: 'zero magic', bytes: header({ magic: 0 }), code: 'BAD_MAGIC', message: 'bad magic byte 0x00 (expected 0x4d)' },
    {
      name: 'newer version',
      bytes: header({ version: 2 }),
      code: 'BAD_VERSION',
      message: 'unsupported frame version 2 (expected 1)',
    },
    {
      name: 'version zero',
      bytes: header({ version: 0 }),
      code: 'BAD_VERSION',
      message: 'unsupported frame version 0 (expected 1)',
    },
    { name: 'type zero', bytes: header({ type: 0 }), code: 'UNKNOWN_TYPE', message: 'unknown message type 0' },
    { name: 'type seven', bytes: header({ type: 7 }), code: 'UNKNOWN_TYPE', message: 'unknown message type 7' },
    { name: 'type nine', bytes: header({ type: 9 }), code: 'UNKNOWN_TYPE', message: 'unknown message type 9' },
    { name: 'type 255', bytes: header({ type: 255 }), code: 'UNKNOWN_TYPE', message: 'unknown message type 255' },
    {
      name: 'low flag bit',
      bytes: header({ flags: 1 }),
      code: 'BAD_FLAGS',
      message: 'unsupported frame flags 0x01 (expected 0x00)',
    },
    {
      name: 'high flag bit',
      bytes: header({ flags: 0x80 }),
      code: 'BAD_FLAGS',
      message: 'unsupported frame flags 0x80 (expected 0x00)',
    },
    {
      name: 'length above default limit',
      bytes: header({ length: DEFAULT_MAX_FRAME_SIZE + 1 }),
      code: 'FRAME_TOO_LARGE',
      message: 'frame length 67108865 exceeds the 67108864-byte limit',
    },
    {
      name: 'max u32 length',
      bytes: header({ length: 0xffff_ffff }),
      code: 'FRAME_TOO_LARGE',
      message: 'frame length 4294967295 exceeds the 67108864-byte limit',
    },
    {
      name: 'length above custom limit',
      bytes: header({ length: 1025 }),
      maxFrameSize: 1024,
      code: 'FRAME_TOO_LARGE',
      message: 'frame length 1025 exceeds the 1024-byte limit',
    },
    {
      name: 'any length with zero limit',
      bytes: header({ length: 1 }),
      maxFrameSize: 0,
      code: 'FRAME_TOO_LARGE',
      message: 'frame length 1 exceeds the 0-byte limit',
    },
    {
      name: 'short header',
      bytes: header().subarray(0, 5),
      code: 'TRUNCATED',
      message: 'frame header has 5 of 8 bytes',
    },
  ];

  it.each(rejections)('parseFrameHeader rejects $name', ({ bytes, maxFrameSize, code, message }) => {
    const error = catchWireFormatError(() => parseFrameHeader(bytes, { maxFrameSize }));

    expect(error.code).toBe(code);
    expect(error.message).toBe(message);
  });

  it('parseFrameHeader checks fields in header order', () => {
    const error = catchWireFormatError(() =>
      parseFrameHeader(header({ version: 9, type: 99, flags: 1, length: 0xffff_ffff })),
    );

    expect(error.code).toBe('BAD_VERSION');
  });

  it('parseFrameHeader reports structured fields', () => {
    const tooLarge = catchWireFormatError(() => parseFrameHeader(header({ length: 500 }), { maxFrameSize: 10 }));
    expect(tooLarge.length).toBe(500);
    expect(tooLarge.limit).toBe(10);

    const badMagic = catchWireFormatError(() => parseFrameHeader(header({ magic: 0x41 })));
    expect(badMagic.byte).toBe(0x41);
  });

  it('parseFrameHeader reads a header inside a larger buffer', () => {
    const backing = Buffer.concat([Buffer.from([0xff, 0xff, 0xff]), header({ type: 3, length: 0 })]);

    expect(parseFrameHeader(backing.subarray(3))).toEqual({ type: 'start', length: 0 });
  });

  it.each([-1, 1.5, Number.NaN, 2 ** 32, Number.POSITIVE_INFINITY])(
    'parseFrameHeader rejects maxFrameSize %s',
    (maxFrameSize) => {
      expect(() => parseFrameHeader(header(), { maxFrameSize })).toThrow(
        new RangeError(`maxFrameSize must be an integer from 0 to 4294967295, got ${maxFrameSize}`),
      );
    },
  );
});
