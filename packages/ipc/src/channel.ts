import type { Duplex } from 'node:stream';

import { decodeEachFrame, FrameDecoder } from './decoder.js';
import { WireFormatError } from './errors.js';
import { checkFrameLength, type DecoderOptions, FRAME_HEADER_SIZE, resolveMaxFrameSize } from './frame.js';
import { decodeMessage, descriptorCount, encodeMessage, type Message } from './messages.js';

/*
 * The parent (the CLI) uses this end of the socketpair. The container's init
 * has the other end as fd 3 and uses sync-channel.ts.
 *
 * The channel reads from the moment it is constructed, whether or not anyone
 * calls receive(), and queues what it decodes. Both sides may write large
 * messages at the same time. If this side read only inside receive(), a send()
 * waiting for 'drain' could wait forever on a peer that is itself blocked
 * writing to us.
 */

/** End state of the read side: a clean end of stream, or the error that every later receive() rejects with. */
type ReadEnd = { kind: 'eof' } | { kind: 'failed'; error: WireFormatError };

interface PendingReceive {
  resolve(message: Message | undefined): void;
  reject(error: WireFormatError): void;
}

/** Async message channel over a Node Duplex, such as `child.stdio[3]` or a net.Socket. */
export class MessageChannel {
  readonly #stream: Duplex;
  readonly #decoder: FrameDecoder;
  readonly #maxFrameSize: number;
  readonly #queue: Message[] = [];
  readonly #pending: PendingReceive[] = [];
  #readEnd: ReadEnd | undefined;
  #closed = false;

  /**
   * Starts reading `stream` at once. `maxFrameSize` limits the payload of
   * frames in both directions: a received frame above it fails the channel,
   * and send() rejects a message above it before writing anything.
   */
  constructor(stream: Duplex, options?: DecoderOptions) {
    this.#stream = stream;
    this.#maxFrameSize = resolveMaxFrameSize(options);
    this.#decoder = new FrameDecoder({ maxFrameSize: this.#maxFrameSize });

    // A permanent 'error' listener keeps a stream error from crashing the
    // process as an unhandled 'error' event. receive() and send() report it.
    stream.on('error', (error: Error) => this.#onStreamError(error));
    stream.on('end', () => this.#onStreamEnd());
    stream.on('close', () => this.#onStreamClose());
    stream.on('data', (chunk: Buffer | string) => this.#onStreamData(chunk));
  }

  /**
   * Writes one message. Resolves once the stream accepted it: at once when
   * write() returns true, else on 'drain'. Rejects with CHANNEL_CLOSED if the
   * stream closes or fails first, with FRAME_TOO_LARGE above the limit, and
   * with INVALID_CONFIG or INVALID_PAYLOAD for a message that fails validation.
   */
  async send(message: Message): Promise<void> {
    if (this.#closed) {
      throw new WireFormatError('CHANNEL_CLOSED', `cannot send ${message.type}: channel is closed`);
    }
    // A Duplex carries bytes only, so a received terminal or pidsLimit frame fails too (decodeMessage).
    if (descriptorCount(message.type) > 0) {
      throw new WireFormatError('MISSING_DESCRIPTOR', `cannot send ${message.type}: MessageChannel cannot pass descriptors (use writeMessageSync with descriptors)`);
    }

    const frame = encodeMessage(message);
    checkFrameLength(frame.byteLength - FRAME_HEADER_SIZE, this.#maxFrameSize);

    const stream = this.#stream;
    if (stream.destroyed || stream.writableEnded) {
      throw new WireFormatError(
        'CHANNEL_CLOSED',
        `cannot send ${message.type}: channel stream is closed for writing`,
        { cause: stream.errored ?? undefined },
      );
    }

    await new Promise<void>((resolve, reject) => {
      const settle = (error?: WireFormatError): void => {
        stream.off('error', onError);
        stream.off('close', onClose);
        stream.off('drain', onDrain);
        if (error === undefined) {
          resolve();
        } else {
          reject(error);
        }
      };
      const onError = (cause: Error): void => {
        settle(
          new WireFormatError('CHANNEL_CLOSED', `sending ${message.type} failed: ${cause.message}`, { cause }),
        );
      };
      const onClose = (): void => {
        settle(new WireFormatError('CHANNEL_CLOSED', `channel closed before ${message.type} was sent`));
      };
      const onDrain = (): void => settle();

      stream.on('error', onError);
      stream.on('close', onClose);

      // The callback reports a failed write even on streams that emit no 'error'.
      const accepted = stream.write(frame, (error?: Error | null) => {
        if (error) onError(error);
      });
      if (accepted) {
        settle();
      } else {
        stream.on('drain', onDrain);
      }
    });
  }

  /**
   * Returns the next message, in arrival order. Resolves to undefined at a
   * clean end of stream between frames. Rejects with TRUNCATED at an end of
   * stream inside a frame, with the decoding WireFormatError for an invalid
   * frame, and with CHANNEL_CLOSED (the stream error as `cause`) when the
   * stream fails or the channel is closed. Messages queued before a failure
   * are still returned first.
   */
  receive(): Promise<Message | undefined> {
    if (this.#closed) {
      return Promise.reject(new WireFormatError('CHANNEL_CLOSED', 'cannot receive: channel is closed'));
    }

    const queued = this.#queue.shift();
    if (queued !== undefined) {
      return Promise.resolve(queued);
    }

    if (this.#readEnd !== undefined) {
      return this.#readEnd.kind === 'eof' ? Promise.resolve(undefined) : Promise.reject(this.#readEnd.error);
    }

    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
    });
  }

  /** Destroys the stream. Queued messages are dropped, and pending and later calls reject with CHANNEL_CLOSED. */
  close(): void {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    this.#queue.length = 0;
    this.#endReading({
      kind: 'failed',
      error: new WireFormatError('CHANNEL_CLOSED', 'channel closed while waiting for a message'),
    });
    this.#stream.destroy();
  }

  #onStreamData(chunk: Buffer | string): void {
    if (this.#readEnd !== undefined) {
      return;
    }
    if (typeof chunk === 'string') {
      this.#failAndDestroy(
        new WireFormatError('CHANNEL_CLOSED', 'channel stream emits strings (remove its setEncoding call)'),
      );
      return;
    }

    // Each message is delivered as its frame completes, so messages before
    // an invalid frame in the same chunk still reach receive().
    try {
      decodeEachFrame(this.#decoder, chunk, (frame) => this.#deliver(decodeMessage(frame)));
    } catch (error) {
      // An invalid frame leaves no way to find the next frame boundary.
      this.#failAndDestroy(asWireFormatError(error));
    }
  }

  #onStreamEnd(): void {
    try {
      this.#decoder.end();
      this.#endReading({ kind: 'eof' });
    } catch (error) {
      this.#endReading({ kind: 'failed', error: asWireFormatError(error) });
    }
  }

  #onStreamError(cause: Error): void {
    this.#endReading({
      kind: 'failed',
      error: new WireFormatError('CHANNEL_CLOSED', `channel stream failed: ${cause.message}`, { cause }),
    });
  }

  #onStreamClose(): void {
    this.#endReading({
      kind: 'failed',
      error: new WireFormatError('CHANNEL_CLOSED', 'channel stream closed before its end of stream'),
    });
  }

  #deliver(message: Message): void {
    const waiter = this.#pending.shift();
    if (waiter === undefined) {
      this.#queue.push(message);
    } else {
      waiter.resolve(message);
    }
  }

  /** Records how reading ended, unless it already ended, and settles every pending receive(). */
  #endReading(readEnd: ReadEnd): void {
    if (this.#readEnd !== undefined) {
      return;
    }
    this.#readEnd = readEnd;

    for (const waiter of this.#pending.splice(0)) {
      if (readEnd.kind === 'eof') {
        waiter.resolve(undefined);
      } else {
        waiter.reject(readEnd.error);
      }
    }
  }

  #failAndDestroy(error: WireFormatError): void {
    this.#endReading({ kind: 'failed', error });
    this.#stream.destroy();
  }
}

/** Passes WireFormatErrors through and wraps anything else, so callers see one error type. */
function asWireFormatError(error: unknown): WireFormatError {
  if (WireFormatError.isInstance(error)) {
    return error;
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new WireFormatError('CHANNEL_CLOSED', `channel failed: ${reason}`, { cause: error });
}
