import { write } from 'node:fs';
import { createRequire } from 'node:module';
import type { ReadStream } from 'node:tty';

import type { Logger } from '@m-docker/log';
import {
  cfmakeraw,
  clearNonBlocking,
  close,
  dupCloseOnExec,
  getStatusFlags,
  getWindowSize,
  hangUpTerminal,
  isatty,
  O_NONBLOCK,
  setWindowSize,
  tcgetattr,
  tcsetattr,
} from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';

// The CLI's side of `m-docker run -t`. The container's init allocates a
// pseudo-terminal from the container's own devpts and sends the master over
// fd 3 (see @m-docker/init's terminal.ts). The CLI then, as docker's does:
//
//   - sets the pty's window size to its own terminal's (fd 1), at once and
//     on every SIGWINCH
//   - copies the master's output to its fd 1
//   - with -i, copies its fd 0 to the master and puts its terminal in raw
//     mode. Keys such as Ctrl-C then reach the pty as bytes, and the pty's
//     line discipline turns them into signals for the container's
//     foreground process group
//   - restores its terminal's mode on every way out
//
// Reads use a tty.ReadStream on each descriptor: under Node it waits with
// epoll, under Bun in a thread of its pool, and neither blocks the event
// loop, which also waits for the container's exit and forwards signals.
// Writes go through fs.write, in the thread pool, one at a time per
// descriptor, so a container that reads no input, or a slow reader of the
// CLI's output, does not stall the event loop. The master stays blocking,
// since Bun's tty.ReadStream fails with EAGAIN on a non-blocking
// descriptor. Input goes to a duplicate of the master, so that closing the
// reading side never closes a descriptor that a write in flight still uses.

/** Queued bytes above which the reading side is paused until the writer catches up. */
const HIGH_WATER_MARK = 64 * 1024;

/** Delay before a write that got EAGAIN is tried again, in ms; doubles up to the maximum. */
const RETRY_FIRST_MS = 1;
const RETRY_MAX_MS = 50;

/**
 * Rejects -i with -t when the CLI's standard input is not a terminal, as
 * docker does before it creates anything: raw mode and keys need one. With
 * -t alone, nothing is read from it, so any standard input will do.
 */
export function checkTerminalInput(interactive: boolean): void {
  if (interactive && !isatty(0)) {
    throw new CliError('the input device is not a TTY: run -it from a terminal, or drop -t to pass input through a pipe or file');
  }
}

/**
 * The CLI's end of the container's pty: it receives the master during the
 * start protocol (`attach`), copies once the command runs (`start`), and
 * gives everything back in `close`, which every exit path calls.
 */
export class TerminalRelay {
  readonly #interactive: boolean;
  readonly #log: Logger;
  /** The master; once copying starts, the output stream owns it and closes it. */
  #master: number | undefined;
  #output: ReadStream | undefined;
  #input: ReadStream | undefined;
  #inputWriter: DescriptorWriter | undefined;
  #outputWriter: DescriptorWriter | undefined;
  #savedMode: Uint8Array | undefined;
  /** Whether fd 0 was blocking before the input stream, which may set O_NONBLOCK on the description it shares with the caller. */
  #stdinWasBlocking = false;
  #closed = false;
  #markDrained: () => void = () => undefined;

  /** Settles once the master's output has ended and is written out: the last process holding the slave is gone. */
  readonly drained: Promise<void>;

  constructor(options: { interactive: boolean; log: Logger }) {
    this.#interactive = options.interactive;
    this.#log = options.log;
    this.drained = new Promise((resolve) => {
      this.#markDrained = resolve;
    });
  }

  /** Takes the master from the init and gives the pty the CLI's window size, before the command starts. */
  readonly attach = (master: number): void => {
    if (this.#master !== undefined || this.#closed) {
      close(master);
      throw new CliError("the container's init sent a second terminal");
    }
    this.#master = master;
    this.#resize();
    this.#log.debug('terminal received', { fd: master });
  };

  /** Starts copying, and with -i switches the CLI's terminal to raw mode. Call it once the command runs. */
  start(): void {
    const master = this.#master;
    if (master === undefined) throw new CliError("the container's init sent no terminal although -t was given");
    const { ReadStream } = createRequire(import.meta.url)('node:tty') as typeof import('node:tty');

    this.#outputWriter = new DescriptorWriter(1, false, {
      onError: (error) => this.#hangUp(error),
      onDrain: () => this.#output?.resume(),
    });
    this.#output = new ReadStream(master);
    this.#output.on('data', (chunk: Buffer) => {
      if (!this.#outputWriter?.write(chunk)) this.#output?.pause();
    });
    this.#output.on('error', (error: NodeJS.ErrnoException) => this.#endOutput(error));
    this.#output.on('end', () => this.#endOutput());
    this.#output.on('close', () => this.#endOutput());

    process.on('SIGWINCH', this.#resize);
    if (this.#interactive) this.#startInput(master, ReadStream);
  }

  /**
   * Restores the terminal's mode, stops copying and closes the master.
   * Safe to call more than once and before start; output not yet copied is
   * dropped, so call it after `drained` on a normal exit.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#restoreMode();
    process.off('SIGWINCH', this.#resize);
    process.off('exit', this.#restoreMode);

    this.#stopInput();
    this.#outputWriter?.close();
    this.#closeMaster();
    this.#markDrained();
  }

  #startInput(master: number, ReadStreamClass: typeof ReadStream): void {
    if (isatty(0)) {
      this.#savedMode = tcgetattr(0);
      // The exit handler covers a process.exit() from anywhere before close().
      process.on('exit', this.#restoreMode);
      tcsetattr(0, cfmakeraw(this.#savedMode));
    }

    this.#stdinWasBlocking = (getStatusFlags(0) & O_NONBLOCK) === 0;
    this.#inputWriter = new DescriptorWriter(dupCloseOnExec(master), true, {
      onError: (error) => this.#log.debug('terminal input stopped', { error: error.message }),
      onDrain: () => this.#input?.resume(),
    });
    this.#input = new ReadStreamClass(0);
    this.#input.on('data', (chunk: Buffer) => {
      if (!this.#inputWriter?.write(chunk)) this.#input?.pause();
    });
    // The CLI's terminal is gone (EIO, or end of file after a hangup): the
    // container's terminal is hung up too, as its own window closing would.
    this.#input.on('error', (error) => this.#hangUp(error));
    this.#input.on('end', () => this.#hangUp(new Error('end of standard input')));
  }

  #stopInput(): void {
    const input = this.#input;
    this.#input = undefined;
    this.#inputWriter?.close();
    if (input === undefined) return;
    input.pause();
    input.removeAllListeners('data');
    input.destroy();
    try {
      if (this.#stdinWasBlocking) clearNonBlocking(0);
    } catch (error) {
      this.#log.debug('cannot clear O_NONBLOCK on standard input', { error: (error as Error).message });
    }
  }

  // The output stream owns the master once it exists and closes it when
  // destroyed; before that the master is closed here.
  #closeMaster(): void {
    const output = this.#output;
    const master = this.#master;
    this.#output = undefined;
    this.#master = undefined;
    if (output !== undefined) output.destroy();
    else if (master !== undefined) close(master);
  }

  readonly #restoreMode = (): void => {
    const saved = this.#savedMode;
    if (saved === undefined) return;
    this.#savedMode = undefined;
    try {
      tcsetattr(0, saved);
    } catch (error) {
      this.#log.warn('cannot restore the terminal mode; run `stty sane` to fix it', { error: (error as Error).message });
    }
  };

  // docker takes the size from its standard output; without a terminal
  // there, the pty keeps the kernel's default of 0 rows and 0 columns.
  readonly #resize = (): void => {
    if (this.#master === undefined || this.#closed || !isatty(1)) return;
    try {
      const size = getWindowSize(1);
      setWindowSize(this.#master, size);
      this.#log.debug('terminal resized', { rows: size.rows, columns: size.columns });
    } catch (error) {
      this.#log.debug('cannot pass the window size on', { error: (error as Error).message });
    }
  };

  // EIO on the master means every descriptor of the slave is closed: the
  // container's processes are gone. Any other end counts the same. The
  // output is drained once its last chunk is written.
  #endOutput(error?: NodeJS.ErrnoException): void {
    if (error !== undefined && error.code !== 'EIO') this.#log.debug('terminal output ended', { error: error.message });
    const writer = this.#outputWriter;
    if (writer === undefined) this.#markDrained();
    else void writer.idle().then(this.#markDrained);
  }

  // The CLI's output or input is gone (EPIPE, EIO): the pty is hung up, as
  // closing a terminal window does. The kernel sends SIGHUP to the
  // container's session, and its reads of the terminal return end of file.
  // Closing the master alone is not enough under Bun: its tty.ReadStream
  // waits in a read(2) in another thread, which keeps the master open.
  #hangUp(error: Error): void {
    if (this.#closed) return;
    this.#log.debug('the CLI lost its terminal, hanging up the container terminal', { error: error.message });
    if (this.#master !== undefined) {
      try {
        hangUpTerminal(this.#master);
      } catch (hangUpError) {
        this.#log.debug('cannot hang up the container terminal', { error: (hangUpError as Error).message });
      }
    }
    this.#stopInput();
    this.#closeMaster();
    this.#markDrained();
  }
}

/**
 * Writes chunks to a descriptor in order, one fs.write at a time in the
 * thread pool, so that a reader that is behind does not block the event
 * loop.
 * On EAGAIN (a non-blocking descriptor whose reader is behind) the chunk is
 * tried again on a timer, because neither runtime can wait for a raw
 * descriptor to become writable.
 */
class DescriptorWriter {
  readonly #fd: number;
  readonly #ownsFd: boolean;
  readonly #onError: (error: Error) => void;
  readonly #onDrain: () => void;
  readonly #queue: Buffer[] = [];
  readonly #idleWaiters: Array<() => void> = [];
  #queued = 0;
  #writing = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #delay = RETRY_FIRST_MS;
  #closed = false;

  /** With `ownsFd`, the writer closes `fd` in close(), once no write uses it any more. */
  constructor(fd: number, ownsFd: boolean, callbacks: { onError: (error: Error) => void; onDrain: () => void }) {
    this.#fd = fd;
    this.#ownsFd = ownsFd;
    this.#onError = callbacks.onError;
    this.#onDrain = callbacks.onDrain;
  }

  /** Queues `chunk`; returns false once the queue is above the high-water mark. */
  write(chunk: Buffer): boolean {
    if (this.#closed) return true;
    this.#queue.push(chunk);
    this.#queued += chunk.byteLength;
    this.#writeNext();
    return this.#queued < HIGH_WATER_MARK;
  }

  /** Settles when everything queued is written, or the writer failed or closed. */
  idle(): Promise<void> {
    if (this.#queue.length === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Drops what is queued and closes an owned descriptor once the write in flight, if any, returns. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
    this.#queued = 0;
    this.#settleIdle();
    if (!this.#writing) this.#closeFd();
  }

  #writeNext(): void {
    if (this.#writing || this.#timer !== undefined || this.#closed) return;
    const chunk = this.#queue[0];
    if (chunk === undefined) {
      this.#onDrain();
      this.#settleIdle();
      return;
    }

    this.#writing = true;
    write(this.#fd, chunk, 0, chunk.byteLength, null, (error, count) => {
      this.#writing = false;
      if (this.#closed) {
        this.#closeFd();
        return;
      }
      if (error) {
        this.#handleError(error);
        return;
      }
      this.#delay = RETRY_FIRST_MS;
      this.#queued -= count;
      if (count === chunk.byteLength) this.#queue.shift();
      else this.#queue[0] = chunk.subarray(count);
      this.#writeNext();
    });
  }

  #handleError(error: NodeJS.ErrnoException): void {
    if (error.code === 'EAGAIN') {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#writeNext();
      }, this.#delay);
      this.#delay = Math.min(this.#delay * 2, RETRY_MAX_MS);
      return;
    }
    this.close();
    this.#onError(error);
  }

  #settleIdle(): void {
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #closeFd(): void {
    if (this.#ownsFd) close(this.#fd);
  }
}
