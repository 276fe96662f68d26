import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  encodeFrame,
  encodeMessage,
  FRAME_HEADER_SIZE,
  type Message,
  readMessageSync,
  WireFormatError,
  type WireFormatErrorCode,
  writeMessageSync,
} from '../src/index.js';
import { sampleConfig } from './arbitraries.js';

/*
 * In-process tests of the blocking reader and writer on regular files and
 * FIFOs. The tests with a real socketpair and a peer process that dies are
 * in process.test.ts.
 */

/** An fd number far above what this test process opens, so it is closed. */
const UNUSED_FD = 999_999;

let directory = '';
const openFds: number[] = [];

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'm-docker-ipc-sync-'));
});

afterEach(() => {
  vi.restoreAllMocks();
  for (const fd of openFds.splice(0)) {
    closeSync(fd);
  }
  rmSync(directory, { recursive: true, force: true });
});

function track(fd: number): number {
  openFds.push(fd);
  return fd;
}

/** Opens a fresh file with `content` for reading. */
function fileWith(content: Uint8Array): number {
  const path = join(directory, `frames-${openFds.length}`);
  writeFileSync(path, content);
  return track(openSync(path, 'r'));
}

/** Creates a FIFO and opens both ends with O_NONBLOCK. */
function nonBlockingFifo(): { readFd: number; writeFd: number } {
  const path = join(directory, 'fifo');
  execFileSync('mkfifo', [path]);
  const readFd = track(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK));
  const writeFd = track(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
  return { readFd, writeFd };
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

const failure = { stage: 'resolve', code: 'ENOENT', errno: 2, message: 'sh: not found', path: '/bin/sh' } as const;

describe('readMessageSync', () => {
  it('readMessageSync reads one message per call', () => {
    const messages: Message[] = [
      { type: 'config', config: sampleConfig() },
      { type: 'ready' },
      { type: 'start' },
      { type: 'error', error: failure },
    ];
    const fd = fileWith(Buffer.concat(messages.map((message) => encodeMessage(message))));

    for (const message of messages) {
      expect(readMessageSync(fd)).toEqual(message);
    }
    expect(readMessageSync(fd)).toBeUndefined();
    expect(readMessageSync(fd)).toBeUndefined();
  });

  it('readMessageSync stops at the frame end', () => {
    const first = encodeMessage({ type: 'config', config: sampleConfig() });
    const second = encodeMessage({ type: 'start' });
    const fd = fileWith(Buffer.concat([first, second]));

    readMessageSync(fd);

    // The file offset is at the second frame, so its header is the next thing read.
    const next = Buffer.alloc(second.byteLength + 1);
    expect(readSync(fd, next, 0, next.byteLength, null)).toBe(second.byteLength);
    expect(next.subarray(0, second.byteLength)).toEqual(second);
  });

  it('readMessageSync returns undefined on an empty stream', () => {
    expect(readMessageSync(fileWith(new Uint8Array(0)))).toBeUndefined();
  });

  it.each([
    { name: 'header', bytes: 3, message: 'end of stream after 3 of 8 header bytes', received: 3, expected: 8 },
    { name: 'payload', bytes: 108, message: 'end of stream after 100 of 4096 payload bytes', received: 100, expected: 4096 },
    { name: 'empty payload', bytes: 8, message: 'end of stream after 0 of 4096 payload bytes', received: 0, expected: 4096 },
  ])('readMessageSync rejects end mid-$name', ({ bytes, message, received, expected }) => {
    const fd = fileWith(encodeFrame('config', new Uint8Array(4096)).subarray(0, bytes));

    const error = catchWireFormatError(() => readMessageSync(fd));
    expect(error.code).toBe('TRUNCATED');
    expect(error.message).toBe(message);
    expect(error.received).toBe(received);
    expect(error.expected).toBe(expected);
  });

  it.each<{ name: string; bytes: number[]; code: WireFormatErrorCode; message: string }>([
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
      bytes: [0x4d, 1, 1, 1, 0, 0, 0, 0],
      code: 'BAD_FLAGS',
      message: 'unsupported frame flags 0x01 (expected 0x00)',
    },
    {
      name: 'payload on start',
      bytes: [0x4d, 1, 3, 0, 0, 0, 0, 2, 0x7b, 0x7d],
      code: 'TRAILING_BYTES',
      message: 'start message has a 2-byte payload (expected none)',
    },
    {
      name: 'invalid JSON',
      bytes: [0x4d, 1, 4, 0, 0, 0, 0, 1, 0x7b],
      code: 'INVALID_PAYLOAD',
      message: 'error payload is not valid JSON: ',
    },
  ])('readMessageSync rejects $name', ({ bytes, code, message }) => {
    const error = catchWireFormatError(() => readMessageSync(fileWith(Buffer.from(bytes))));

    expect(error.code).toBe(code);
    expect(error.message.startsWith(message)).toBe(true);
  });

  it('readMessageSync rejects oversized frame before allocating', () => {
    const fd = fileWith(Buffer.from([0x4d, 1, 1, 0, 0xff, 0xff, 0xff, 0xff]));
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const allocUnsafeSlow = vi.spyOn(Buffer, 'allocUnsafeSlow');

    const error = catchWireFormatError(() => readMessageSync(fd, { maxFrameSize: 1024 }));

    expect(error.code).toBe('FRAME_TOO_LARGE');
    expect(error.message).toBe('frame length 4294967295 exceeds the 1024-byte limit');
    expect(allocUnsafe).not.toHaveBeenCalled();
    expect(allocUnsafeSlow).not.toHaveBeenCalled();
  });

  it('readMessageSync throws WOULD_BLOCK on O_NONBLOCK', () => {
    const { readFd } = nonBlockingFifo();

    const error = catchWireFormatError(() => readMessageSync(readFd));
    expect(error.code).toBe('WOULD_BLOCK');
    expect(error.message).toBe(
      `read on fd ${readFd} would block (clear O_NONBLOCK on the fd before using the sync channel)`,
    );
    expect((error.cause as NodeJS.ErrnoException).code).toBe('EAGAIN');
  });

  it('readMessageSync throws CHANNEL_CLOSED on a closed fd', () => {
    const fd = UNUSED_FD;

    const error = catchWireFormatError(() => readMessageSync(fd));
    expect(error.code).toBe('CHANNEL_CLOSED');
    expect(error.message).toBe(`read on fd ${fd} failed: EBADF: bad file descriptor, read`);
    expect((error.cause as NodeJS.ErrnoException).code).toBe('EBADF');
  });
});

describe('writeMessageSync', () => {
  it('writeMessageSync writes the whole frame', () => {
    const path = join(directory, 'out');
    const fd = track(openSync(path, 'w'));
    const message: Message = { type: 'config', config: sampleConfig({ argv: ['/bin/echo', 'x'.repeat(1024 * 1024)] }) };

    writeMessageSync(fd, message);
    writeMessageSync(fd, { type: 'start' });

    const expected = Buffer.concat([encodeMessage(message), encodeMessage({ type: 'start' })]);
    const written = readFileSync(path);
    expect(written.byteLength).toBe(expected.byteLength);
    expect(written.equals(expected)).toBe(true);
  });

  it('writeMessageSync rejects a message above the limit', () => {
    const path = join(directory, 'out');
    const fd = track(openSync(path, 'w'));

    const error = catchWireFormatError(() =>
      writeMessageSync(fd, { type: 'error', error: { ...failure, message: 'x'.repeat(100) } }, { maxFrameSize: 64 }),
    );

    expect(error.code).toBe('FRAME_TOO_LARGE');
    expect(error.message).toMatch(/^frame length \d+ exceeds the 64-byte limit$/);
    expect(readFileSync(path).byteLength).toBe(0);
  });

  it('writeMessageSync rejects an invalid config', () => {
    const path = join(directory, 'out');
    const fd = track(openSync(path, 'w'));

    const error = catchWireFormatError(() =>
      writeMessageSync(fd, { type: 'config', config: sampleConfig({ hostname: 'a/b' }) }),
    );

    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(`hostname "a/b" contains '/'`);
    expect(readFileSync(path).byteLength).toBe(0);
  });

  it('writeMessageSync throws WOULD_BLOCK on a full O_NONBLOCK pipe', () => {
    const { writeFd } = nonBlockingFifo();
    // A Linux pipe buffers 64 KiB by default, so 1 MiB cannot fit while the read end is idle.
    const message: Message = { type: 'error', error: { ...failure, message: 'y'.repeat(1024 * 1024) } };

    const error = catchWireFormatError(() => writeMessageSync(writeFd, message));
    expect(error.code).toBe('WOULD_BLOCK');
    expect(error.message).toBe(
      `write on fd ${writeFd} would block (clear O_NONBLOCK on the fd before using the sync channel)`,
    );
  });

  it('writeMessageSync throws CHANNEL_CLOSED on a closed fd', () => {
    const fd = UNUSED_FD;

    const error = catchWireFormatError(() => writeMessageSync(fd, { type: 'ready' }));
    expect(error.code).toBe('CHANNEL_CLOSED');
    expect(error.message).toBe(`write on fd ${fd} failed: EBADF: bad file descriptor, write`);
  });

  it('writeMessageSync frame has the header length', () => {
    const path = join(directory, 'out');
    const fd = track(openSync(path, 'w'));
    writeMessageSync(fd, { type: 'error', error: failure });

    const written = readFileSync(path);
    expect(written.readUInt32BE(4)).toBe(written.byteLength - FRAME_HEADER_SIZE);
  });
});
