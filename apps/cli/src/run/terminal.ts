import { createRequire } from 'node:module';
import type { ReadStream } from 'node:tty';

import type { Logger } from '@m-docker/log';
import {
  cfmakeraw,
  clearNonBlocking,
  close,
  getStatusFlags,
  getWindowSize,
  isatty,
  O_NONBLOCK,
  SyscallError,
  setNonBlocking,
  setWindowSize,
  tcgetattr,
  tcsetattr,
  writeFd,
} from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';

// The CLI's side of `m-docker run -t`. The container's init allocates a
// pseudo-terminal from the container's own devpts and sends the master over
// fd 3 (see @m-docker/init's terminal.ts). The CLI then, as docker's does:
//
//   - sets the pty's window size to its own terminal's (fd 1), at once and
//     on every SIGWINCH
//   - copies the master's output to its fd 1
//   - with -i, copies its fd 0 to the master, and puts its terminal in raw
//     mode, so that keys such as Ctrl-C reach the pty as bytes and the
//     pty's line discipline turns them into signals for the container's
//     foreground process group
//   - restores its terminal's mode on every way out
//
// The master is non-blocking and written with write(2): a container that
// reads no input must not stall the CLI, whose event loop also waits for
// the container's exit and forwards signals. Output goes to fd 1 with
// write(2) as well, not through process.stdout, so no O_NONBLOCK is left on
// a descriptor that the CLI shares with its caller. Reading uses a
// tty.ReadStream on each descriptor, the one way to wait for input without
// blocking under both Node and Bun.

/** Queued bytes above which the reading side is paused until the writer catches up. */
const HIGH_WATER_MARK = 64 * 1024;

/** Delay before a write that got EAGAIN is tried again, in ms; doubles up to the maximum. */
const RETRY_FIRST_MS = 1;
const RETRY_MAX_MS = 50;

const EIO = 'EIO';

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
  #master: number | undefined;
  #output: ReadStream | undefined;
  #input: NodeJS.ReadStream | undefined;
  #masterWriter: DescriptorWriter | undefined;
  #stdoutWriter: DescriptorWriter | undefined;
  #savedMode: Uint8Array | undefined;
  /** Whether fd 0 was blocking before the input stream, which may set O_NONBLOCK on the description it shares with the caller. */
  #stdinWasBlocking = false;
  #closed = false;
  #markDrained: () => void = () => undefined;

  /** Settles once the master's output has ended: the last process holding the slave is gone. */
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
    setNonBlocking(master);
    this.#resize();
    this.#log.debug('terminal received', { fd: master });
  };

  /** Starts copying, and with -i switches the CLI's terminal to raw mode. Call it once the command runs. */
  start(): void {
    const master = this.#master;
    if (master === undefined) throw new CliError("the container's init sent no terminal although -t was given");
    const { ReadStream } = createRequire(import.meta.url)('node:tty') as typeof import('node:tty');

    this.#stdoutWriter = new DescriptorWriter(1, {
      onError: (error) => this.#hangUp(error),
      onDrain: () => this.#output?.resume(),
    });
    this.#output = new ReadStream(master);
    this.#output.on('data', (chunk: Buffer) => {
      if (!this.#stdoutWriter?.write(chunk)) this.#output?.pause();
    });
    this.#output.on('error', (error: NodeJS.ErrnoException) => this.#endOutput(error));
    this.#output.on('end', () => this.#endOutput());
    this.#output.on('close', () => this.#endOutput());

    process.on('SIGWINCH', this.#resize);
    if (this.#interactive) this.#startInput(master);
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

    this.#input?.pause();
    this.#input?.removeAllListeners('data');
    this.#input?.destroy();
    if (this.#input && this.#stdinWasBlocking) clearNonBlocking(0);
    this.#masterWriter?.close();
    this.#stdoutWriter?.flushNow();
    this.#stdoutWriter?.close();
    if (this.#output) {
      // The stream owns the master and closes it.
      this.#output.destroy();
    } else if (this.#master !== undefined) {
      close(this.#master);
    }
    this.#markDrained();
  }

  #startInput(master: number): void {
    if (isatty(0)) {
      this.#savedMode = tcgetattr(0);
      // The exit handler covers a process.exit() from anywhere before close().
      process.on('exit', this.#restoreMode);
      tcsetattr(0, cfmakeraw(this.#savedMode));
    }

    const { ReadStream } = createRequire(import.meta.url)('node:tty') as typeof import('node:tty');
    this.#stdinWasBlocking = (getStatusFlags(0) & O_NONBLOCK) === 0;
    this.#masterWriter = new DescriptorWriter(master, {
      onError: (error) => this.#log.debug('terminal input stopped', { error: error.message }),
      onDrain: () => this.#input?.resume(),
    });
    this.#input = new ReadStream(0);
    this.#input.on('data', (chunk: Buffer) => {
      if (!this.#masterWriter?.write(chunk)) this.#input?.pause();
    });
    this.#input.on('error', (error) => this.#log.debug('terminal input stopped', { error: error.message }));
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
  // container's processes are gone. Any other end counts the same.
  #endOutput(error?: NodeJS.ErrnoException): void {
    if (error !== undefined && error.code !== EIO) this.#log.debug('terminal output ended', { error: error.message });
    this.#stdoutWriter?.flushNow();
    this.#markDrained();
  }

  // The CLI's output is gone (EPIPE): closing the master hangs the pty up,
  // as closing a terminal window does. The kernel sends SIGHUP to the
  // container's session, and its writes to the terminal fail with EIO.
  #hangUp(error: Error): void {
    this.#log.debug('standard output closed, hanging up the terminal', { error: error.message });
    this.#masterWriter?.close();
    this.#output?.destroy();
    this.#output = undefined;
    this.#master = undefined;
    this.#markDrained();
  }
}

/**
 * Writes chunks to a descriptor in order with write(2). A chunk goes out at
 * once when the descriptor takes it; on EAGAIN (a non-blocking descriptor
 * whose reader is behind) the rest waits and is retried on a timer, because
 * neither runtime can wait for a raw descriptor to become writable.
 */
class DescriptorWriter {
  readonly #fd: number;
  readonly #onError: (error: Error) => void;
  readonly #onDrain: () => void;
  readonly #queue: Buffer[] = [];
  #queued = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #delay = RETRY_FIRST_MS;
  #failed = false;

  constructor(fd: number, callbacks: { onError: (error: Error) => void; onDrain: () => void }) {
    this.#fd = fd;
    this.#onError = callbacks.onError;
    this.#onDrain = callbacks.onDrain;
  }

  /** Queues `chunk` and writes what it can; returns false once the queue is above the high-water mark. */
  write(chunk: Buffer): boolean {
    if (this.#failed) return true;
    this.#queue.push(chunk);
    this.#queued += chunk.byteLength;
    if (this.#timer === undefined) this.#flush();
    return this.#queued < HIGH_WATER_MARK;
  }

  /** Writes what is queued, giving up at the first EAGAIN; for the last output before exit. */
  flushNow(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flush(false);
  }

  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
    this.#queued = 0;
    this.#failed = true;
  }

  #flush(retry = true): void {
    this.#timer = undefined;
    while (this.#queue.length > 0 && !this.#failed) {
      const chunk = this.#queue[0] as Buffer;
      let count: number;
      try {
        count = writeFd(this.#fd, chunk);
      } catch (error) {
        if (SyscallError.isInstance(error) && error.code === 'EAGAIN') {
          if (retry) this.#retryLater();
          return;
        }
        this.close();
        this.#onError(error as Error);
        return;
      }
      this.#queued -= count;
      if (count === chunk.byteLength) this.#queue.shift();
      else this.#queue[0] = chunk.subarray(count);
    }
    this.#delay = RETRY_FIRST_MS;
    if (!this.#failed) this.#onDrain();
  }

  #retryLater(): void {
    this.#timer = setTimeout(() => this.#flush(), this.#delay);
    this.#delay = Math.min(this.#delay * 2, RETRY_MAX_MS);
  }
}
