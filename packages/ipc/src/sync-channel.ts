import { createRequire } from 'node:module';

import { WireFormatError } from './errors.js';
import { checkFrameLength, type DecoderOptions, FRAME_HEADER_SIZE, parseFrameHeader, resolveMaxFrameSize } from './frame.js';
import { decodeMessage, descriptorCount, encodeMessage, type Message, messageDescriptors } from './messages.js';

/**
 * Blocking reads and writes on a file descriptor, as node:fs's readSync and
 * writeSync do them: each returns the byte count (0 from read at end of
 * stream) and throws an error whose `code` names the errno on failure.
 */
export interface FdIo {
  read(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  write(fd: number, buffer: Uint8Array, offset: number, length: number): number;
}

/** Result of one receive: the byte count (0 at end of stream) and the descriptors that came with the bytes. */
export interface ReceivedBytes {
  count: number;
  descriptors: number[];
  /** More descriptors arrived than the receiver had room for, and the kernel closed the rest. */
  truncated: boolean;
}

/**
 * Blocking I/O that passes descriptors with the bytes, as sendmsg(2) and
 * recvmsg(2) do with SCM_RIGHTS on an AF_UNIX socket. Errors are thrown as
 * FdIo's are, with the errno name as `code`.
 */
export interface DescriptorIo {
  /** Sends bytes with `descriptors` attached to the first one; returns the count sent. */
  send(fd: number, buffer: Uint8Array, offset: number, length: number, descriptors: readonly number[]): number;
  receive(fd: number, buffer: Uint8Array, offset: number, length: number): ReceivedBytes;
  /** Closes a received descriptor that the channel rejects. */
  close(fd: number): void;
}

/**
 * Options of the sync channel: the frame limit, the I/O functions (node:fs
 * by default) and, for messages that carry a descriptor, descriptor passing.
 */
export interface SyncChannelOptions extends DecoderOptions {
  io?: FdIo;
  /** Needed to send or receive a `terminal` or `pidsLimit` message. Without it, reads use io.read, which loses descriptors. */
  descriptors?: DescriptorIo;
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
 * With `options.descriptors`, the reads go through recvmsg(2), and a
 * `terminal` or `pidsLimit` message returns the descriptor that came with
 * it, which the caller then owns. Descriptors of a frame that is rejected
 * are closed. Without it, such a frame throws MISSING_DESCRIPTOR.
 *
 * The fd must be in blocking mode. On an fd with O_NONBLOCK set, a read that
 * finds no data throws WOULD_BLOCK, so the caller must clear O_NONBLOCK with
 * fcntl(2) first. The fd 3 that Node's spawn() gives a child is blocking.
 */
export function readMessageSync(fd: number, options?: SyncChannelOptions): Message | undefined {
  const reader = new FrameReader(fd, options?.io ?? defaultIo(), options?.descriptors);
  try {
    return reader.readMessage(options);
  } catch (error) {
    reader.closeDescriptors();
    throw error;
  }
}

/*
 * Reads one frame. With descriptor passing, every read of the frame goes
 * through recvmsg(2) and collects the descriptors that come with the bytes.
 * A sender attaches them to the frame's first byte, and a plain read(2) of
 * that byte would make the kernel close them. The descriptors then belong to
 * the decoded message, or are closed when the frame is rejected.
 */
class FrameReader {
  readonly #descriptors: number[] = [];
  #truncated = false;

  constructor(
    readonly fd: number,
    readonly io: FdIo,
    readonly descriptorIo: DescriptorIo | undefined,
  ) {}

  readMessage(options: SyncChannelOptions | undefined): Message | undefined {
    const header = Buffer.alloc(FRAME_HEADER_SIZE);
    const headerBytes = this.#readFully(header);

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
    const payloadBytes = this.#readFully(payload);

    if (payloadBytes < length) {
      throw new WireFormatError(
        'TRUNCATED',
        `end of stream after ${payloadBytes} of ${length} payload bytes`,
        { received: payloadBytes, expected: length },
      );
    }
    if (this.#truncated) {
      throw new WireFormatError(
        'UNEXPECTED_DESCRIPTOR',
        `${type} message carried more descriptors than recvmsg(2) had room for`,
        { received: this.#descriptors.length, expected: descriptorCount(type) },
      );
    }
    return decodeMessage({ type, payload, descriptors: this.#descriptors });
  }

  /** Closes the descriptors received so far, for a frame that is rejected. */
  closeDescriptors(): void {
    for (const descriptor of this.#descriptors.splice(0)) this.descriptorIo?.close(descriptor);
  }

  /** Fills `target` and returns how many bytes arrived before EOF. */
  #readFully(target: Buffer): number {
    let filled = 0;

    while (filled < target.byteLength) {
      const count = retrySystemCall(this.fd, 'read', () => this.#read(target, filled, target.byteLength - filled));
      if (count === 0) {
        break;
      }
      filled += count;
    }
    return filled;
  }

  #read(target: Buffer, offset: number, length: number): number {
    if (this.descriptorIo === undefined) return this.io.read(this.fd, target, offset, length);

    const received = this.descriptorIo.receive(this.fd, target, offset, length);
    this.#descriptors.push(...received.descriptors);
    if (received.truncated) this.#truncated = true;
    return received.count;
  }
}

/**
 * Writes one message to `fd` as a whole frame, looping over partial writes
 * and retrying EINTR. A `terminal` or `pidsLimit` message needs
 * `options.descriptors`: its descriptor goes with the first bytes, and
 * MISSING_DESCRIPTOR is thrown without it. Throws FRAME_TOO_LARGE above `maxFrameSize` before
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
  const descriptors = messageDescriptors(message);
  if (descriptors.length > 0) {
    const descriptorIo = options?.descriptors;
    if (descriptorIo === undefined) {
      throw new WireFormatError(
        'MISSING_DESCRIPTOR',
        `cannot send a ${message.type} message without descriptor passing: pass the descriptors option`,
      );
    }
    // The descriptor travels with the first write, whatever its count.
    written = retrySystemCall(fd, 'write', () => descriptorIo.send(fd, frame, 0, frame.byteLength, descriptors));
  }
  while (written < frame.byteLength) {
    written += retrySystemCall(fd, 'write', () => io.write(fd, frame, written, frame.byteLength - written));
  }
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
