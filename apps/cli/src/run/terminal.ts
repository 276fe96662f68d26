import { read, write } from 'node:fs';

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
// The master stays blocking and is read with fs.read and written with
// fs.write, one call at a time each, in the thread pool. A container that
// reads no input, or a quiet one, then occupies a thread of the pool and
// does not stall the event loop, which also waits for the container's exit
// and forwards signals. A read returns EIO only once the pty contains no more
// output. A tty.ReadStream would lose the end of the output: libuv (Node
// 20) takes POLLHUP after a short read as end of file, but a pty hands out
// at most one line-discipline buffer (4095 bytes) per read, so data may
// still be there. fd 0 and fd 1 are the runtime's process.stdin and
// process.stdout, which wait without a thread of the pool: Bun 1.4.5 ran
// only two fs calls at a time on a machine with two CPUs, so a third
// blocked thread would stall the relay there. Input goes to a
// duplicate of the master, and each side closes its descriptor only once
// no call of its own still uses it.

/** Queued bytes above which the reading side is paused until the writer catches up. */
const HIGH_WATER_MARK = 64 * 1024;

/** Bytes that one read of the master requests; a pty returns at most its line discipline's buffer, 4095 bytes. */
const READ_SIZE = 16 * 1024;

/**
 * Rejects -i with -t when the CLI's standard input is not a terminal, as
 * docker does before it creates anything: raw mode and keys need one. With
 * -t alone, nothing is read from it, so any standard input will do.
 */
export function checkTerminalInput(interactive: boolean, command: 'run' | 'exec' = 'run'): void {
  if (interactive && !isatty(0)) {
    throw new CliError(`the input device is not a TTY: ${command} -it from a terminal, or drop -t to pass input through a pipe or file`);
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
  /** The master; once copying starts, the output reader owns it and closes it. */
  #master: number | undefined;
  #output: DescriptorReader | undefined;
  #inputWriter: DescriptorWriter | undefined;
  #readingInput = false;
  #writingOutput = false;
  #savedMode: Uint8Array | undefined;
  /** fd 0 and fd 1 that were blocking before their streams, which may set O_NONBLOCK on descriptions shared with the caller. */
  readonly #blockingStdio: number[] = [];
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

    this.#rememberBlocking(1);
    this.#writingOutput = true;
    process.stdout.on('error', this.#outputFailed);
    process.stdout.on('drain', this.#resumeOutput);
    this.#output = new DescriptorReader(master, {
      onData: (chunk) => process.stdout.write(chunk),
      onEnd: (error) => this.#endOutput(error),
    });

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

    this.#stopInput();
    this.#stopOutput();
    this.#closeMaster();
    this.#restoreBlocking();
    this.#markDrained();
  }

  /**
   * Hangs up the pty and stops copying, for `exec -t` whose command exited
   * while processes it left behind still hold the slave. They get SIGHUP,
   * as when a terminal window closes. Call close() afterwards.
   */
  hangUp(): void {
    this.#hangUp(new Error('the command exited'));
  }

  #startInput(master: number): void {
    if (isatty(0)) {
      this.#savedMode = tcgetattr(0);
      // The exit handler covers a process.exit() from anywhere before close().
      process.on('exit', this.#restoreMode);
      tcsetattr(0, cfmakeraw(this.#savedMode));
    }

    this.#rememberBlocking(0);
    // NOTE: a container that never reads its input keeps one write blocked
    // in the pool once the pty's input buffer is full; with the master's
    // read, that fills Bun's two threads on a two-CPU machine.
    this.#inputWriter = new DescriptorWriter(dupCloseOnExec(master), {
      onError: (error) => this.#log.debug('terminal input stopped', { error: error.message }),
      onDrain: () => process.stdin.resume(),
    });
    this.#readingInput = true;
    process.stdin.on('data', this.#passInput);
    // The CLI's terminal is gone (EIO, or end of file after a hangup): the
    // container's terminal is hung up too, as its own window closing would.
    process.stdin.on('error', this.#inputFailed);
    process.stdin.on('end', this.#inputEnded);
    process.stdin.resume();
  }

  readonly #passInput = (chunk: Buffer): void => {
    if (!this.#inputWriter?.write(chunk)) process.stdin.pause();
  };

  readonly #inputFailed = (error: Error): void => this.#hangUp(error);

  readonly #inputEnded = (): void => this.#hangUp(new Error('end of standard input'));

  readonly #outputFailed = (error: Error): void => this.#hangUp(error);

  readonly #resumeOutput = (): void => this.#output?.resume();

  #stopInput(): void {
    this.#inputWriter?.close();
    if (!this.#readingInput) return;
    this.#readingInput = false;
    process.stdin.off('data', this.#passInput);
    process.stdin.off('error', this.#inputFailed);
    process.stdin.off('end', this.#inputEnded);
    process.stdin.pause();
  }

  #stopOutput(): void {
    if (!this.#writingOutput) return;
    this.#writingOutput = false;
    process.stdout.off('error', this.#outputFailed);
    process.stdout.off('drain', this.#resumeOutput);
  }

  // The output reader owns the master once it exists and closes it when no
  // read is in flight; before that the master is closed here.
  #closeMaster(): void {
    const output = this.#output;
    const master = this.#master;
    this.#output = undefined;
    this.#master = undefined;
    if (output !== undefined) output.close();
    else if (master !== undefined) close(master);
  }

  #rememberBlocking(fd: number): void {
    if ((getStatusFlags(fd) & O_NONBLOCK) === 0) this.#blockingStdio.push(fd);
  }

  #restoreBlocking(): void {
    for (const fd of this.#blockingStdio.splice(0)) {
      try {
        clearNonBlocking(fd);
      } catch (error) {
        this.#log.debug('cannot clear O_NONBLOCK', { fd, error: (error as Error).message });
      }
    }
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

  // EIO on the master means every descriptor of the slave is closed and the
  // pty contains no more output: the container's processes are gone. End of
  // file follows a hangup. Any other end counts the same. The output is
  // drained once fd 1 has taken its last chunk.
  #endOutput(error?: NodeJS.ErrnoException): void {
    if (error !== undefined && error.code !== 'EIO') this.#log.debug('terminal output ended', { error: error.message });
    if (!this.#writingOutput) {
      this.#markDrained();
      return;
    }
    process.stdout.write('', () => this.#markDrained());
  }

  // The CLI's output or input is gone (EPIPE, EIO): the pty is hung up, as
  // closing a terminal window does. The kernel sends SIGHUP to the
  // container's session, and its reads of the terminal return end of file.
  // Closing the master alone is not enough: the output reader waits in a
  // read(2) in the thread pool, which keeps the master open until it
  // returns, and the hangup makes it return.
  #hangUp(error: Error): void {
    if (this.#closed) return;
    this.#log.debug('hanging up the container terminal', { reason: error.message });
    if (this.#master !== undefined) {
      try {
        hangUpTerminal(this.#master);
      } catch (hangUpError) {
        this.#log.debug('cannot hang up the container terminal', { error: (hangUpError as Error).message });
      }
    }
    this.#stopInput();
    this.#stopOutput();
    this.#closeMaster();
    this.#markDrained();
  }
}

/**
 * Reads a blocking descriptor with one fs.read at a time in the thread pool
 * and hands each chunk to `onData`, which returns false to pause until
 * `resume()`. A read that returns 0 or fails (EIO on a pty master whose
 * slave is closed) ends it with `onEnd`. It owns the descriptor and closes
 * it in close(), once no read uses it any more: a read in flight keeps
 * using the number, which a new file could otherwise get in the meantime.
 */
export class DescriptorReader {
  readonly #fd: number;
  readonly #onData: (chunk: Buffer) => boolean;
  readonly #onEnd: (error?: NodeJS.ErrnoException) => void;
  #reading = false;
  #paused = false;
  #ended = false;
  #closed = false;

  constructor(fd: number, callbacks: { onData: (chunk: Buffer) => boolean; onEnd: (error?: NodeJS.ErrnoException) => void }) {
    this.#fd = fd;
    this.#onData = callbacks.onData;
    this.#onEnd = callbacks.onEnd;
    this.#readNext();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#readNext();
  }

  /** Stops reading and closes the descriptor once the read in flight, if any, returns. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#reading) close(this.#fd);
  }

  #readNext(): void {
    if (this.#reading || this.#paused || this.#ended || this.#closed) return;

    this.#reading = true;
    const buffer = Buffer.allocUnsafe(READ_SIZE);
    read(this.#fd, buffer, 0, READ_SIZE, null, (error, count) => {
      this.#reading = false;
      if (this.#closed) {
        close(this.#fd);
        return;
      }
      if (error || count === 0) {
        this.#ended = true;
        this.#onEnd(error ?? undefined);
        return;
      }
      if (!this.#onData(buffer.subarray(0, count))) this.#paused = true;
      this.#readNext();
    });
  }
}

/**
 * Writes chunks to a blocking descriptor in order, one fs.write at a time
 * in the thread pool, so that a reader that is behind blocks a thread of the
 * pool and not the event loop. It owns the descriptor and closes it in
 * close(), once no write uses it any more.
 */
class DescriptorWriter {
  readonly #fd: number;
  readonly #onError: (error: Error) => void;
  readonly #onDrain: () => void;
  readonly #queue: Buffer[] = [];
  #queued = 0;
  #writing = false;
  #closed = false;

  constructor(fd: number, callbacks: { onError: (error: Error) => void; onDrain: () => void }) {
    this.#fd = fd;
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

  /** Drops what is queued and closes the descriptor once the write in flight, if any, returns. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#queued = 0;
    if (!this.#writing) close(this.#fd);
  }

  #writeNext(): void {
    if (this.#writing || this.#closed) return;
    const chunk = this.#queue[0];
    if (chunk === undefined) {
      this.#onDrain();
      return;
    }

    this.#writing = true;
    write(this.#fd, chunk, 0, chunk.byteLength, null, (error, count) => {
      this.#writing = false;
      if (this.#closed) {
        close(this.#fd);
        return;
      }
      if (error) {
        this.close();
        this.#onError(error);
        return;
      }
      this.#queued -= count;
      if (count === chunk.byteLength) this.#queue.shift();
      else this.#queue[0] = chunk.subarray(count);
      this.#writeNext();
    });
  }
}
