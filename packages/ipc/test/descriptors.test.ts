import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  type DescriptorIo,
  decodeMessage,
  descriptorCount,
  encodeFrame,
  encodeMessage,
  type Message,
  MessageChannel,
  MessageType,
  readMessageSync,
  WireFormatError,
  type WireFormatErrorCode,
  writeMessageSync,
} from '../src/index.js';
import { message as anyMessage } from './arbitraries.js';

/*
 * The rules for messages that carry a descriptor, with a recording double of
 * descriptor passing over regular files: it hands out real descriptors (of
 * /dev/null) as if they had come with given bytes. The SCM_RIGHTS round
 * trip through a real socketpair is tested in @m-docker/syscalls, and the
 * terminal message between a real init and CLI in @m-docker/init and
 * @m-docker/cli.
 */

let directory = '';
const openFds = new Set<number>();

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'm-docker-ipc-descriptors-'));
});

afterEach(() => {
  for (const fd of openFds) closeQuietly(fd);
  openFds.clear();
  rmSync(directory, { recursive: true, force: true });
});

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Closed by the code under test.
  }
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

function newDescriptor(): number {
  const fd = openSync('/dev/null', 'r');
  openFds.add(fd);
  return fd;
}

function fileWith(content: Uint8Array): number {
  const path = join(directory, `frames-${openFds.size}`);
  writeFileSync(path, content);
  const fd = openSync(path, 'r');
  openFds.add(fd);
  return fd;
}

/**
 * Returns a DescriptorIo over a regular file: `attached` maps a stream
 * offset to the descriptors that arrive with the byte at that offset. Each receive stops
 * after such a byte, as recvmsg(2) does on an AF_UNIX stream socket.
 */
function recordingIo(attached: Map<number, number[]>, options: { truncated?: boolean } = {}) {
  let position = 0;
  const calls = { receive: 0, closed: [] as number[], sent: [] as Array<{ bytes: number[]; descriptors: number[] }> };
  const io: DescriptorIo = {
    receive(fd, buffer, offset, length) {
      calls.receive++;
      const carrying = [...attached.keys()].filter((at) => at >= position && at < position + length).sort((a, b) => a - b)[0];
      const requested = carrying === undefined ? length : carrying - position + 1;
      const count = readSync(fd, buffer, offset, requested, null);
      const descriptors = carrying !== undefined && count === requested ? (attached.get(carrying) ?? []) : [];
      position += count;
      return { count, descriptors, truncated: descriptors.length > 0 && options.truncated === true };
    },
    send(_fd, buffer, offset, length, descriptors) {
      calls.sent.push({ bytes: [...buffer.subarray(offset, offset + length)], descriptors: [...descriptors] });
      return length;
    },
    close(fd) {
      calls.closed.push(fd);
      closeSync(fd);
    },
  };
  return { io, calls };
}

function catchWireFormatError(run: () => unknown): WireFormatError {
  try {
    run();
  } catch (error) {
    expect(WireFormatError.isInstance(error)).toBe(true);
    return error as WireFormatError;
  }
  throw new Error('expected a WireFormatError, but nothing was thrown');
}

describe('terminal message encoding', () => {
  it('encodeMessage sends terminal without payload', () => {
    expect([...encodeMessage({ type: 'terminal', fd: 7 })]).toEqual([0x4d, 1, MessageType.terminal, 0, 0, 0, 0, 0]);
  });

  it.each([-1, 1.5, Number.NaN])('encodeMessage rejects terminal fd %s', (fd) => {
    const error = catchWireFormatError(() => encodeMessage({ type: 'terminal', fd }));
    expect(error.code).toBe('INVALID_PAYLOAD');
    expect(error.field).toBe('terminal.fd');
  });

  it('descriptorCount is one for terminal and pidsLimit', () => {
    for (const type of Object.keys(MessageType) as Array<keyof typeof MessageType>) {
      expect(descriptorCount(type), type).toBe(type === 'terminal' || type === 'pidsLimit' ? 1 : 0);
    }
  });
});

describe('pidsLimit message encoding', () => {
  it('encodeMessage puts the limit in the payload', () => {
    const frame = encodeMessage({ type: 'pidsLimit', fd: 7, limit: 12 });
    expect([...frame.subarray(0, 8)]).toEqual([0x4d, 1, MessageType.pidsLimit, 0, 0, 0, 0, 12]);
    expect(frame.subarray(8).toString('utf8')).toBe('{"limit":12}');
  });

  it.each([0, 1, Number.MAX_SAFE_INTEGER])('pidsLimit %s round-trips', (limit) => {
    const frame = encodeMessage({ type: 'pidsLimit', fd: 7, limit });
    expect(decodeMessage({ type: 'pidsLimit', payload: frame.subarray(8), descriptors: [21] })).toEqual({ type: 'pidsLimit', fd: 21, limit });
  });

  it.each([
    { name: 'negative limit', message: { type: 'pidsLimit', fd: 7, limit: -1 }, field: 'pidsLimit.limit', text: 'pidsLimit.limit -1 must be a non-negative integer' },
    { name: 'fractional limit', message: { type: 'pidsLimit', fd: 7, limit: 1.5 }, field: 'pidsLimit.limit', text: 'pidsLimit.limit 1.5 must be a non-negative integer' },
    { name: 'negative fd', message: { type: 'pidsLimit', fd: -1, limit: 3 }, field: 'pidsLimit.fd', text: 'pidsLimit.fd -1 must be an open descriptor (a non-negative integer)' },
  ])('encodeMessage rejects $name', ({ message, field, text }) => {
    const error = catchWireFormatError(() => encodeMessage(message as Message));
    expect(error.code).toBe('INVALID_PAYLOAD');
    expect(error.field).toBe(field);
    expect(error.message).toBe(text);
  });
});

describe('terminal message decoding', () => {
  const frame = (type: keyof typeof MessageType, descriptors: number[], payload = new Uint8Array(0)) => ({
    type,
    payload,
    descriptors,
  });

  it('decodeMessage returns the descriptor of terminal', () => {
    expect(decodeMessage(frame('terminal', [12]))).toEqual({ type: 'terminal', fd: 12 });
  });

  const rejections: Array<{ name: string; run: () => unknown; code: WireFormatErrorCode; message: string }> = [
    {
      name: 'terminal without descriptor',
      run: () => decodeMessage(frame('terminal', [])),
      code: 'MISSING_DESCRIPTOR',
      message: "terminal message arrived without its descriptor (read it with recvmsg(2): the sync channel's descriptors option)",
    },
    {
      name: 'terminal with two descriptors',
      run: () => decodeMessage(frame('terminal', [5, 6])),
      code: 'UNEXPECTED_DESCRIPTOR',
      message: 'terminal message carried 2 descriptors (expected 1)',
    },
    {
      name: 'ready with a descriptor',
      run: () => decodeMessage(frame('ready', [5])),
      code: 'UNEXPECTED_DESCRIPTOR',
      message: 'ready message carried 1 descriptor (expected none)',
    },
    {
      name: 'pidsLimit without descriptor',
      run: () => decodeMessage(frame('pidsLimit', [], Buffer.from('{"limit":3}'))),
      code: 'MISSING_DESCRIPTOR',
      message: "pidsLimit message arrived without its descriptor (read it with recvmsg(2): the sync channel's descriptors option)",
    },
    {
      name: 'pidsLimit with two descriptors',
      run: () => decodeMessage(frame('pidsLimit', [5, 6], Buffer.from('{"limit":3}'))),
      code: 'UNEXPECTED_DESCRIPTOR',
      message: 'pidsLimit message carried 2 descriptors (expected 1)',
    },
    {
      name: 'start with a descriptor',
      run: () => decodeMessage(frame('start', [5])),
      code: 'UNEXPECTED_DESCRIPTOR',
      message: 'start message carried 1 descriptor (expected none)',
    },
    {
      name: 'pidsLimit without payload',
      run: () => decodeMessage(frame('pidsLimit', [5])),
      code: 'INVALID_PAYLOAD',
      message: 'pidsLimit payload is not valid JSON: Unexpected end of JSON input',
    },
    {
      name: 'pidsLimit with a string limit',
      run: () => decodeMessage(frame('pidsLimit', [5], Buffer.from('{"limit":"max"}'))),
      code: 'INVALID_PAYLOAD',
      message: 'pidsLimit.limit "max" must be a non-negative integer',
    },
    {
      name: 'pidsLimit with an unknown field',
      run: () => decodeMessage(frame('pidsLimit', [5], Buffer.from('{"limit":3,"file":"pids.max"}'))),
      code: 'INVALID_PAYLOAD',
      message: 'pidsLimit has unknown field "file"',
    },
    {
      name: 'terminal with a payload',
      run: () => decodeMessage(frame('terminal', [5], Buffer.from('x'))),
      code: 'TRAILING_BYTES',
      message: 'terminal message has a 1-byte payload (expected none)',
    },
  ];

  it.each(rejections)('decodeMessage rejects $name', ({ run, code, message }) => {
    const error = catchWireFormatError(run);
    expect(error.code).toBe(code);
    expect(error.message).toBe(message);
  });
});

describe('readMessageSync with descriptors', () => {
  it('readMessageSync returns the descriptor with terminal', () => {
    const master = newDescriptor();
    const data = Buffer.concat([encodeMessage({ type: 'terminal', fd: 99 }), encodeMessage({ type: 'ready' })]);
    const { io, calls } = recordingIo(new Map([[0, [master]]]));
    const fd = fileWith(data);

    expect(readMessageSync(fd, { descriptors: io })).toEqual({ type: 'terminal', fd: master });
    expect(readMessageSync(fd, { descriptors: io })).toEqual({ type: 'ready' });
    expect(calls.closed).toEqual([]);
    expect(isOpen(master)).toBe(true);
  });

  it('readMessageSync returns the descriptor with pidsLimit', () => {
    const pidsMax = newDescriptor();
    const data = Buffer.concat([encodeMessage({ type: 'pidsLimit', fd: 99, limit: 4 }), encodeMessage({ type: 'start' })]);
    const { io, calls } = recordingIo(new Map([[0, [pidsMax]]]));
    const fd = fileWith(data);

    expect(readMessageSync(fd, { descriptors: io })).toEqual({ type: 'pidsLimit', fd: pidsMax, limit: 4 });
    expect(readMessageSync(fd, { descriptors: io })).toEqual({ type: 'start' });
    expect(calls.closed).toEqual([]);
    expect(isOpen(pidsMax)).toBe(true);
  });

  it('readMessageSync closes the descriptor of an invalid pidsLimit', () => {
    const pidsMax = newDescriptor();
    const { io, calls } = recordingIo(new Map([[0, [pidsMax]]]));
    const fd = fileWith(encodeFrame('pidsLimit', Buffer.from('{"limit":-2}')));

    const error = catchWireFormatError(() => readMessageSync(fd, { descriptors: io }));
    expect(error.code).toBe('INVALID_PAYLOAD');
    expect(calls.closed).toEqual([pidsMax]);
    expect(isOpen(pidsMax)).toBe(false);
  });

  it('readMessageSync takes descriptors on a later header byte', () => {
    const master = newDescriptor();
    const { io } = recordingIo(new Map([[3, [master]]]));
    const fd = fileWith(encodeMessage({ type: 'terminal', fd: 1 }));

    expect(readMessageSync(fd, { descriptors: io })).toEqual({ type: 'terminal', fd: master });
  });

  it('readMessageSync without descriptors rejects terminal', () => {
    const fd = fileWith(encodeMessage({ type: 'terminal', fd: 1 }));

    const error = catchWireFormatError(() => readMessageSync(fd));
    expect(error.code).toBe('MISSING_DESCRIPTOR');
  });

  it('readMessageSync closes a descriptor sent with ready', () => {
    const stray = newDescriptor();
    const { io, calls } = recordingIo(new Map([[0, [stray]]]));
    const fd = fileWith(encodeMessage({ type: 'ready' }));

    const error = catchWireFormatError(() => readMessageSync(fd, { descriptors: io }));
    expect(error.code).toBe('UNEXPECTED_DESCRIPTOR');
    expect(calls.closed).toEqual([stray]);
    expect(isOpen(stray)).toBe(false);
  });

  it('readMessageSync closes descriptors of a truncated control message', () => {
    const master = newDescriptor();
    const { io, calls } = recordingIo(new Map([[0, [master]]]), { truncated: true });
    const fd = fileWith(encodeMessage({ type: 'terminal', fd: 1 }));

    const error = catchWireFormatError(() => readMessageSync(fd, { descriptors: io }));
    expect(error.code).toBe('UNEXPECTED_DESCRIPTOR');
    expect(error.message).toBe('terminal message carried more descriptors than recvmsg(2) had room for');
    expect(calls.closed).toEqual([master]);
  });

  it('readMessageSync closes the descriptor of a cut frame', () => {
    const master = newDescriptor();
    const { io, calls } = recordingIo(new Map([[0, [master]]]));
    const fd = fileWith(encodeMessage({ type: 'terminal', fd: 1 }).subarray(0, 5));

    const error = catchWireFormatError(() => readMessageSync(fd, { descriptors: io }));
    expect(error.code).toBe('TRUNCATED');
    expect(calls.closed).toEqual([master]);
  });

  it('readMessageSync closes the descriptor of an invalid frame', () => {
    const master = newDescriptor();
    const { io, calls } = recordingIo(new Map([[0, [master]]]));
    const frame = encodeMessage({ type: 'terminal', fd: 1 });
    frame[3] = 0x01;
    const fd = fileWith(frame);

    const error = catchWireFormatError(() => readMessageSync(fd, { descriptors: io }));
    expect(error.code).toBe('BAD_FLAGS');
    expect(calls.closed).toEqual([master]);
  });

  it('readMessageSync reads any message with descriptors', () => {
    fc.assert(
      fc.property(fc.array(anyMessage, { minLength: 1, maxLength: 4 }), (messages) => {
        const fd = fileWith(Buffer.concat(messages.map((item) => encodeMessage(item))));
        const { io } = recordingIo(new Map());

        for (const item of messages) expect(readMessageSync(fd, { descriptors: io })).toEqual(item);
        expect(readMessageSync(fd, { descriptors: io })).toBeUndefined();
      }),
      { numRuns: 50 },
    );
  });
});

describe('writeMessageSync with descriptors', () => {
  it('writeMessageSync sends the terminal frame with its descriptor', () => {
    const { io, calls } = recordingIo(new Map());
    const written: number[] = [];
    const plain = { read: () => 0, write: (_fd: number, buffer: Uint8Array, offset: number, length: number) => {
      written.push(...buffer.subarray(offset, offset + length));
      return length;
    } };

    writeMessageSync(3, { type: 'terminal', fd: 9 }, { io: plain, descriptors: io });
    expect(calls.sent).toEqual([{ bytes: [...encodeFrame('terminal', new Uint8Array(0))], descriptors: [9] }]);
    expect(written).toEqual([]);
  });

  it('writeMessageSync sends the pidsLimit frame with its descriptor', () => {
    const { io, calls } = recordingIo(new Map());

    writeMessageSync(3, { type: 'pidsLimit', fd: 11, limit: 2 }, { descriptors: io });
    expect(calls.sent).toEqual([{ bytes: [...encodeFrame('pidsLimit', Buffer.from('{"limit":2}'))], descriptors: [11] }]);
  });

  it('writeMessageSync rejects pidsLimit without descriptors', () => {
    const error = catchWireFormatError(() => writeMessageSync(3, { type: 'pidsLimit', fd: 11, limit: 2 }));
    expect(error.code).toBe('MISSING_DESCRIPTOR');
    expect(error.message).toBe('cannot send a pidsLimit message without descriptor passing: pass the descriptors option');
  });

  it('writeMessageSync writes the rest after a partial send', () => {
    const written: number[] = [];
    const descriptors: DescriptorIo = {
      send: () => 1,
      receive: () => ({ count: 0, descriptors: [], truncated: false }),
      close: () => undefined,
    };
    const plain = { read: () => 0, write: (_fd: number, buffer: Uint8Array, offset: number, length: number) => {
      written.push(...buffer.subarray(offset, offset + length));
      return length;
    } };

    writeMessageSync(3, { type: 'terminal', fd: 9 }, { io: plain, descriptors });
    expect(written).toEqual([...encodeFrame('terminal', new Uint8Array(0)).subarray(1)]);
  });

  it('writeMessageSync rejects terminal without descriptors', () => {
    const error = catchWireFormatError(() => writeMessageSync(3, { type: 'terminal', fd: 9 }));
    expect(error.code).toBe('MISSING_DESCRIPTOR');
    expect(error.message).toBe('cannot send a terminal message without descriptor passing: pass the descriptors option');
  });

  it('writeMessageSync reports a failed send as closed channel', () => {
    const descriptors: DescriptorIo = {
      send: () => {
        throw Object.assign(new Error('sendmsg fd=3 SCM_RIGHTS 9: EPIPE (broken pipe)'), { code: 'EPIPE' });
      },
      receive: () => ({ count: 0, descriptors: [], truncated: false }),
      close: () => undefined,
    };

    const error = catchWireFormatError(() => writeMessageSync(3, { type: 'terminal', fd: 9 }, { descriptors }));
    expect(error.code).toBe('CHANNEL_CLOSED');
    expect(error.message).toBe('write on fd 3 failed: sendmsg fd=3 SCM_RIGHTS 9: EPIPE (broken pipe)');
  });
});

describe('MessageChannel and descriptors', () => {
  it('MessageChannel rejects sending terminal', async () => {
    const channel = new MessageChannel(new PassThrough());
    await expect(channel.send({ type: 'terminal', fd: 9 })).rejects.toMatchObject({ code: 'MISSING_DESCRIPTOR' });
    channel.close();
  });

  it('MessageChannel rejects sending pidsLimit', async () => {
    const channel = new MessageChannel(new PassThrough());
    await expect(channel.send({ type: 'pidsLimit', fd: 9, limit: 1 })).rejects.toMatchObject({ code: 'MISSING_DESCRIPTOR' });
    channel.close();
  });

  it('MessageChannel rejects a received terminal frame', async () => {
    const stream = new PassThrough();
    const channel = new MessageChannel(stream);
    stream.write(encodeMessage({ type: 'terminal', fd: 9 } satisfies Message));

    await expect(channel.receive()).rejects.toMatchObject({ code: 'MISSING_DESCRIPTOR' });
    channel.close();
  });
});
