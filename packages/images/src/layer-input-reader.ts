import { createHash } from 'node:crypto';
import type { Extract } from 'tar-stream';

import { RetainedBytes } from './tar-raw-headers.js';

// The reading side of unpackLayer: it pulls chunks from the input, hashes
// them for the diff id and writes them into tar-stream's extract, waiting
// for 'drain' when the extract is full.

/** Reads the input into the extract, hashing every byte. */
export class InputReader {
  readonly retained = new RetainedBytes();
  /** The error that ended reading, and whether the input itself threw it. */
  failure: { error: unknown; fromInput: boolean } | undefined;

  private readonly hash = createHash('sha256');
  private bytesRead = 0;
  private stopped = false;

  constructor(
    private readonly input: NodeJS.ReadableStream | AsyncIterable<Buffer>,
    private readonly onBytes: ((bytes: number) => void) | undefined,
  ) {}

  /** Feeds the whole input into `extract` and ends it. It never rejects: a failure destroys `extract` and is stored in `failure`. */
  async run(extract: Extract): Promise<void> {
    const chunks = (this.input as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
    try {
      for (;;) {
        let next: IteratorResult<Buffer | string>;
        try {
          next = await chunks.next();
        } catch (error) {
          this.failure = { error, fromInput: true };
          extract.destroy(error as Error);
          return;
        }
        if (next.done) break;
        if (this.stopped || extract.destroying) {
          await chunks.return?.();
          return;
        }
        await this.feed(next.value, extract);
      }
      extract.end(undefined);
    } catch (error) {
      this.failure = { error, fromInput: false };
      extract.destroy(error as Error);
    }
  }

  /** Ends reading after a failure elsewhere, and destroys the input when it is a stream. */
  stop(): void {
    this.stopped = true;
    destroyInput(this.input);
  }

  /** Returns the sha256 of all bytes read, in hexadecimal. */
  digest(): string {
    return this.hash.digest('hex');
  }

  private async feed(chunk: Buffer | string, extract: Extract): Promise<void> {
    if (typeof chunk === 'string') {
      throw new TypeError('unpackLayer needs a stream of Buffers, but the input yields strings: remove its setEncoding()');
    }

    this.hash.update(chunk);
    this.retained.append(chunk);
    this.bytesRead += chunk.length;
    this.onBytes?.(this.bytesRead);

    if (!extract.write(chunk)) await drainedOrDestroyed(extract);
  }
}

/** Destroys an input that has a destroy method, such as a Node stream, so that its source is closed and a pending read ends. */
export function destroyInput(input: unknown): void {
  const destroy = (input as { destroy?: unknown }).destroy;
  if (typeof destroy === 'function') destroy.call(input);
}

function drainedOrDestroyed(extract: Extract): Promise<void> {
  if (extract.destroying) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      extract.off('drain', done);
      extract.off('close', done);
      resolve();
    };
    extract.on('drain', done);
    extract.on('close', done);
  });
}
