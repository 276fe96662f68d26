import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  decodeMessage,
  encodeFrame,
  encodeMessage,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  type Frame,
  type InitFailure,
  type Message,
  WireFormatError,
  type WireFormatErrorCode,
} from '../src/index.js';
import { message, NASTY_STRINGS, sampleConfig, splitAt } from './arbitraries.js';

function catchWireFormatError(run: () => unknown): WireFormatError {
  try {
    run();
  } catch (error) {
    expect(WireFormatError.isInstance(error)).toBe(true);
    return error as WireFormatError;
  }
  throw new Error('expected a WireFormatError, but nothing was thrown');
}

/** Frame with a raw payload, for payloads that encodeMessage would never produce. */
function rawFrame(type: Frame['type'], payload: string | Uint8Array): Frame {
  return { type, payload: typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload };
}

const sampleFailure: InitFailure = {
  stage: 'exec',
  code: 'ENOENT',
  errno: 2,
  message: 'execve /bin/nope failed',
  path: '/bin/nope',
};

describe('encodeMessage', () => {
  it('encodeMessage sends ready and start without payload', () => {
    expect([...encodeMessage({ type: 'ready' })]).toEqual([0x4d, 1, 2, 0, 0, 0, 0, 0]);
    expect([...encodeMessage({ type: 'start' })]).toEqual([0x4d, 1, 3, 0, 0, 0, 0, 0]);
  });

  it('encodeMessage sends the config as UTF-8 JSON', () => {
    const config = sampleConfig({ argv: ['/bin/echo', '😀 "x"'] });
    const frame = encodeMessage({ type: 'config', config });

    expect(frame[2]).toBe(1);
    expect(frame.readUInt32BE(4)).toBe(frame.byteLength - FRAME_HEADER_SIZE);
    expect(JSON.parse(frame.subarray(FRAME_HEADER_SIZE).toString('utf8'))).toEqual(config);
  });

  it('encodeMessage sends the failure as UTF-8 JSON', () => {
    const frame = encodeMessage({ type: 'error', error: sampleFailure });

    expect(frame[2]).toBe(4);
    expect(JSON.parse(frame.subarray(FRAME_HEADER_SIZE).toString('utf8'))).toEqual(sampleFailure);
  });

  it('encodeMessage rejects an invalid config', () => {
    const error = catchWireFormatError(() =>
      encodeMessage({ type: 'config', config: sampleConfig({ env: ['=x'] }) }),
    );

    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe('env[0] "=x" has an empty key (expected KEY=VALUE)');
  });

  it('encodeMessage rejects an invalid failure', () => {
    const error = catchWireFormatError(() =>
      encodeMessage({ type: 'error', error: { ...sampleFailure, stage: 'boot' as 'exec' } }),
    );

    expect(error.code).toBe('INVALID_PAYLOAD');
    expect(error.message).toBe('error.stage "boot" must be one of config, mount, rootfs, hostname, chdir, user, capabilities, resolve, session, terminal, fds, exec, cgroup');
  });

  it('encodeMessage rejects an unknown type', () => {
    const error = catchWireFormatError(() => encodeMessage({ type: 'stop' } as unknown as Message));

    expect(error.code).toBe('UNKNOWN_TYPE');
    expect(error.message).toBe('unknown message type "stop"');
  });
});

describe('decodeMessage', () => {
  it.each<Message>([
    { type: 'ready' },
    { type: 'start' },
    { type: 'config', config: sampleConfig() },
    { type: 'error', error: sampleFailure },
    { type: 'error', error: { stage: 'config', code: '', errno: 0, message: '' } },
  ])('decodeMessage round trips $type', (original) => {
    const [frame] = new FrameDecoder().push(encodeMessage(original));

    expect(decodeMessage(frame as Frame)).toEqual(original);
  });

  it('decodeMessage round trips every nasty string', () => {
    const config = sampleConfig({
      argv: ['/bin/echo', ...NASTY_STRINGS],
      env: NASTY_STRINGS.map((value, index) => `K${index}=${value}`),
      cwd: `/${NASTY_STRINGS.filter((value) => !value.includes('/')).join('/')}`,
    });
    const [frame] = new FrameDecoder().push(encodeMessage({ type: 'config', config }));

    expect(decodeMessage(frame as Frame)).toEqual({ type: 'config', config });
  });

  it('decodeMessage keeps lone surrogates', () => {
    const config = sampleConfig({ argv: ['\ud800', 'a\udc00b', '\udbff\udfff'] });
    const [frame] = new FrameDecoder().push(encodeMessage({ type: 'config', config }));
    const decoded = decodeMessage(frame as Frame);

    expect(decoded.type).toBe('config');
    expect((decoded as Message & { type: 'config' }).config.argv).toEqual(['\ud800', 'a\udc00b', '\udbff\udfff']);
  });

  // JSON.parse messages differ between V8 versions, so JSON cases match only this package's prefix.
  const rejections: Array<{ name: string; frame: Frame; code: WireFormatErrorCode; message: string | RegExp }> = [
    {
      name: 'ready with payload',
      frame: rawFrame('ready', 'x'),
      code: 'TRAILING_BYTES',
      message: 'ready message has a 1-byte payload (expected none)',
    },
    {
      name: 'start with payload',
      frame: rawFrame('start', '{}'),
      code: 'TRAILING_BYTES',
      message: 'start message has a 2-byte payload (expected none)',
    },
    {
      name: 'invalid UTF-8 in config',
      frame: rawFrame('config', Buffer.from([0x7b, 0xff, 0x7d])),
      code: 'INVALID_PAYLOAD',
      message: 'config payload is not valid UTF-8',
    },
    {
      name: 'overlong UTF-8 in error',
      frame: rawFrame('error', Buffer.from([0x22, 0xc0, 0xaf, 0x22])),
      code: 'INVALID_PAYLOAD',
      message: 'error payload is not valid UTF-8',
    },
    {
      name: 'UTF-8 surrogate in config',
      frame: rawFrame('config', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])),
      code: 'INVALID_PAYLOAD',
      message: 'config payload is not valid UTF-8',
    },
    {
      name: 'empty config payload',
      frame: rawFrame('config', ''),
      code: 'INVALID_PAYLOAD',
      message: /^config payload is not valid JSON: \S/,
    },
    {
      name: 'truncated JSON',
      frame: rawFrame('config', '{"id":'),
      code: 'INVALID_PAYLOAD',
      message: /^config payload is not valid JSON: \S/,
    },
    {
      name: 'JSON with trailing text',
      frame: rawFrame('error', '{} x'),
      code: 'INVALID_PAYLOAD',
      message: /^error payload is not valid JSON: \S/,
    },
    {
      name: 'JSON after a BOM',
      frame: rawFrame('config', `\ufeff${JSON.stringify(sampleConfig())}`),
      code: 'INVALID_PAYLOAD',
      message: /^config payload is not valid JSON: \S/,
    },
    {
      name: 'config as array',
      frame: rawFrame('config', '[]'),
      code: 'INVALID_CONFIG',
      message: 'config must be an object, got array',
    },
    {
      name: 'config with bad field',
      frame: rawFrame('config', JSON.stringify(sampleConfig({ cwd: 'relative' }))),
      code: 'INVALID_CONFIG',
      message: `cwd "relative" must be an absolute path (starting with '/')`,
    },
    {
      name: 'failure as string',
      frame: rawFrame('error', '"boom"'),
      code: 'INVALID_PAYLOAD',
      message: 'error must be an object, got string',
    },
    {
      name: 'failure with unknown field',
      frame: rawFrame('error', JSON.stringify({ ...sampleFailure, signal: 9 })),
      code: 'INVALID_PAYLOAD',
      message: 'error has unknown field "signal"',
    },
    {
      name: 'failure without message',
      frame: rawFrame('error', JSON.stringify({ stage: 'exec', code: '', errno: 0 })),
      code: 'INVALID_PAYLOAD',
      message: 'error is missing field "message"',
    },
    {
      name: 'failure with unknown stage',
      frame: rawFrame('error', JSON.stringify({ ...sampleFailure, stage: 'boot' })),
      code: 'INVALID_PAYLOAD',
      message: 'error.stage "boot" must be one of config, mount, rootfs, hostname, chdir, user, capabilities, resolve, session, terminal, fds, exec, cgroup',
    },
    {
      name: 'failure with numeric code',
      frame: rawFrame('error', JSON.stringify({ ...sampleFailure, code: 2 })),
      code: 'INVALID_PAYLOAD',
      message: 'error.code must be a string, got number',
    },
    {
      name: 'failure with negative errno',
      frame: rawFrame('error', JSON.stringify({ ...sampleFailure, errno: -2 })),
      code: 'INVALID_PAYLOAD',
      message: 'error.errno -2 must be a non-negative integer',
    },
    {
      name: 'failure with fractional errno',
      frame: rawFrame('error', JSON.stringify({ ...sampleFailure, errno: 2.5 })),
      code: 'INVALID_PAYLOAD',
      message: 'error.errno 2.5 must be a non-negative integer',
    },
    {
      name: 'failure with string errno',
      frame: rawFrame('error', JSON.stringify({ ...sampleFailure, errno: '2' })),
      code: 'INVALID_PAYLOAD',
      message: 'error.errno "2" must be a non-negative integer',
    },
    {
      name: 'failure with null message',
      frame: rawFrame('error', JSON.stringify({ ...sampleFailure, message: null })),
      code: 'INVALID_PAYLOAD',
      message: 'error.message must be a string, got null',
    },
    {
      name: 'failure with null path',
      frame: rawFrame('error', JSON.stringify({ ...sampleFailure, path: null })),
      code: 'INVALID_PAYLOAD',
      message: 'error.path must be a string, got null',
    },
  ];

  it.each(rejections)('decodeMessage rejects $name', ({ frame, code, message: expectedMessage }) => {
    const error = catchWireFormatError(() => decodeMessage(frame));

    expect(error.code).toBe(code);
    if (typeof expectedMessage === 'string') {
      expect(error.message).toBe(expectedMessage);
    } else {
      expect(error.message).toMatch(expectedMessage);
    }
  });

  it('decodeMessage keeps the parser error as cause', () => {
    const error = catchWireFormatError(() => decodeMessage(rawFrame('config', '{')));

    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it('decodeMessage names the field of an invalid failure', () => {
    const error = catchWireFormatError(() =>
      decodeMessage(rawFrame('error', JSON.stringify({ ...sampleFailure, errno: -1 }))),
    );

    expect(error.field).toBe('error.errno');
  });

  it('decodeMessage rejects a frame from encodeFrame with a bad payload', () => {
    const [frame] = new FrameDecoder().push(encodeFrame('start', Buffer.from([0])));
    const error = catchWireFormatError(() => decodeMessage(frame as Frame));

    expect(error.code).toBe('TRAILING_BYTES');
    expect(error.length).toBe(1);
  });
});

describe('message round trip', () => {
  it('messages round trip through split chunks', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), fc.array(fc.nat()), (messages, cuts) => {
        const data = Buffer.concat(messages.map((item) => encodeMessage(item)));
        const decoder = new FrameDecoder();
        const decoded = splitAt(data, cuts).flatMap((chunk) => decoder.push(chunk).map(decodeMessage));
        decoder.end();

        expect(decoded).toEqual(messages);
      }),
      { numRuns: 300 },
    );
  });

  it('messages round trip through one-byte chunks', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 3 }), (messages) => {
        const data = Buffer.concat(messages.map((item) => encodeMessage(item)));
        const decoder = new FrameDecoder();
        const decoded: Message[] = [];
        for (let offset = 0; offset < data.byteLength; offset++) {
          decoded.push(...decoder.push(data.subarray(offset, offset + 1)).map(decodeMessage));
        }
        decoder.end();

        expect(decoded).toEqual(messages);
      }),
      { numRuns: 50 },
    );
  });

  it('messages round trip back-to-back in one chunk', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 2, maxLength: 10 }), (messages) => {
        const data = Buffer.concat(messages.map((item) => encodeMessage(item)));
        const decoded = new FrameDecoder().push(data).map(decodeMessage);

        expect(decoded).toEqual(messages);
      }),
    );
  });
});
