import { createRequire } from 'node:module';

import { WireFormatError } from './errors.js';
import { checkFrameLength, type DecoderOptions, FRAME_HEADER_SIZE, parseFrameHeader, resolveMaxFrameSize } from './frame.js';
import { decodeMessage, encodeMessage, type Message } from './messages.js';

/**
 * Blocking reads and writes on a file descriptor, as node:fs's readSync and
 * writeSync do them: each returns the byte count (0 from read at end of
 * stream) and throws an error whose `code` names the errno on failure.
 */
export interface FdIo {
  read(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  write(fd: number, buffer: Uint8Array, offset: number, length: number): number;
}

/** Options of the sync channel: the frame limit and the I/O functions, node:fs by default. */
export interface SyncChannelOptions extends DecoderOptions {
  io?: FdIo;
}

// node:fs is required on first use rather than imported: under Bun its
// import costs about 3 ms, which the init avoids by passing its own `io`.
let nodeFsIo: FdIo | undefined;
function defaultIo(): FdIo {
  if (!nodeFsIo) {
    const fs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
    nodeFsIo = {
      read: (fd, buffer, offset, length) => fs.readSync(fd, buffer, offset, length, null),
      write: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
    };
  }
  return nodeFsIo;
}

/*
 * The container's init has this end of the socketpair as fd 3. It uses
 * blocking reads and writes because it runs inside new namespaces, where
 * Node's async fs calls would run on thread-pool threads that stayed in the
 * old ones.
 */

/**
 * Reads exactly one message from `fd` with blocking reads: first the 8 header
 * bytes, then, once the header and its length are validated, exactly the
 * payload bytes. It never reads past the frame, so a later message on the
 * same socket stays there for the next call. It does not wait for EOF.
 *
 * Returns undefined on EOF before the first header byte, which is a clean
 * close by the peer. Throws TRUNCATED on EOF inside the frame, the header or
 * decoding WireFormatError for an invalid frame, and CHANNEL_CLOSED for a
 * failed read such as ECONNRESET. EINTR is retried.
 *
 * The fd must be in blocking mode. On an fd with O_NONBLOCK set, a read that
 * finds no data throws WOULD_BLOCK, so the caller must clear O_NONBLOCK with
 * fcntl(2) first. The fd 3 that Node's spawn() gives a child is blocking.
 */
export function readMessageSync(fd: number, options?: SyncChannelOptions): Message | undefined {
  const io = options?.io ?? defaultIo();
  const header = Buffer.alloc(FRAME_HEADER_SIZE);
  const headerBytes = readFully(io, fd, header);

  if (headerBytes === 0) {
    return undefined;
  }
  if (headerBytes < FRAME_HEADER_SIZE) {
    throw new WireFormatError(
      'TRUNCATED',
      `end of stream after ${headerBytes} of ${FRAME_HEADER_SIZE} header bytes`,
      { received: headerBytes, expected: FRAME_HEADER_SIZE },
    );
  }

  // parseFrameHeader checks the length against the limit before the allocation.
  const { type, length } = parseFrameHeader(header, options);
  const payload = Buffer.allocUnsafe(length);
  const payloadBytes = readFully(io, fd, payload);

  if (payloadBytes < length) {
    throw new WireFormatError(
      'TRUNCATED',
      `end of stream after ${payloadBytes} of ${length} payload bytes`,
      { received: payloadBytes, expected: length },
    );
  }
  return decodeMessage({ type, payload });
}

/**
 * Writes one message to `fd` as a whole frame, looping over partial writes
 * and retrying EINTR. Throws FRAME_TOO_LARGE above `maxFrameSize` before
 * writing anything, and CHANNEL_CLOSED when a write fails, such as with EPIPE
 * after the peer closed its end. Like readMessageSync it needs a blocking fd,
 * and on O_NONBLOCK a full socket buffer throws WOULD_BLOCK. Part of the
 * frame may be written when a write fails, and the stream is then unusable.
 */
export function writeMessageSync(fd: number, message: Message, options?: SyncChannelOptions): void {
  const io = options?.io ?? defaultIo();
  const frame = encodeMessage(message);
  checkFrameLength(frame.byteLength - FRAME_HEADER_SIZE, resolveMaxFrameSize(options));

  let written = 0;
  while (written < frame.byteLength) {
    written += retrySystemCall(fd, 'write', () => io.write(fd, frame, written, frame.byteLength - written));
  }
}

/** Fills `target` from `fd` and returns how many bytes arrived before EOF. */
function readFully(io: FdIo, fd: number, target: Buffer): number {
  let filled = 0;

  while (filled < target.byteLength) {
    const count = retrySystemCall(fd, 'read', () => io.read(fd, target, filled, target.byteLength - filled));
    if (count === 0) {
      break;
    }
    filled += count;
  }
  return filled;
}

/** Runs one read or write, retrying EINTR and turning other failures into WireFormatErrors. */
function retrySystemCall(fd: number, call: 'read' | 'write', run: () => number): number {
  for (;;) {
    try {
      return run();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;

      if (code === 'EINTR') {
        continue;
      }
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        throw new WireFormatError(
          'WOULD_BLOCK',
          `${call} on fd ${fd} would block (clear O_NONBLOCK on the fd before using the sync channel)`,
          { cause: error },
        );
      }

      const reason = error instanceof Error ? error.message : String(error);
      throw new WireFormatError('CHANNEL_CLOSED', `${call} on fd ${fd} failed: ${reason}`, { cause: error });
    }
  }
}
