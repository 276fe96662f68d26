import type { Logger } from '@m-docker/log';
import { close, setWindowSize, type WindowSize } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';
import { LogLineWriter } from './log-file.js';
import { DescriptorReader, type TerminalRelay } from './terminal.js';

// The monitor's end of the pty of `run -d -t`. The init allocates the pty
// and sends the master over fd 3 exactly as for `run -t`, but no client
// terminal exists, so the monitor:
//
//   - gives the pty DETACHED_WINDOW_SIZE before the command starts
//   - copies the master's output into the log file as stdout lines, as
//     docker's json-file driver does for a container with a terminal
//   - never writes to the master. The pty's input stays open and empty, so
//     `sh` waits at its prompt, with or without -i, until stop, kill or
//     rm -f ends it
//
// The master is read as the foreground relay reads it, with one fs.read at
// a time in the thread pool, so that the end of the output is not lost
// (see terminal.ts).

/** The part of a terminal's parent side that runToExit drives: TerminalRelay in the foreground, DetachedTerminal in a monitor. */
export type TerminalEnd = Pick<TerminalRelay, 'attach' | 'start' | 'close' | 'drained'>;

/** The window size of a detached container's pty: 24 rows of 80 columns, the size of a VT100 screen. */
export const DETACHED_WINDOW_SIZE: WindowSize = { rows: 24, columns: 80 };

/** The master of a detached container's pty, from the start protocol to the end of its output. */
export class DetachedTerminal implements TerminalEnd {
  readonly #logFile: () => string;
  readonly #log: Logger;
  /** The master, until start() hands it to the output reader, which closes it. */
  #master: number | undefined;
  #output: DescriptorReader | undefined;
  #closed = false;
  #markDrained: () => void = () => undefined;

  /** Settles once the master's output has ended and is in the log file: the last process holding the slave is gone. */
  readonly drained: Promise<void>;

  /** `logFile` returns the log's path, which is known once the container has an id. */
  constructor(options: { logFile: () => string; log: Logger }) {
    this.#logFile = options.logFile;
    this.#log = options.log;
    this.drained = new Promise((resolve) => {
      this.#markDrained = resolve;
    });
  }

  /** Takes the master from the init and sets the pty's window size, before the command starts. */
  readonly attach = (master: number): void => {
    if (this.#master !== undefined || this.#closed) {
      close(master);
      throw new CliError("the container's init sent a second terminal");
    }
    this.#master = master;
    setWindowSize(master, DETACHED_WINDOW_SIZE);
    this.#log.debug('terminal received', { fd: master, ...DETACHED_WINDOW_SIZE });
  };

  /** Starts copying the output into the log file. Call it once the command runs. */
  start(): void {
    const master = this.#master;
    if (master === undefined) throw new CliError("the container's init sent no terminal although -t was given");
    this.#master = undefined;

    const lines = new LogLineWriter(this.#logFile(), 'stdout');
    this.#output = new DescriptorReader(master, {
      onData: (chunk) => {
        lines.write(chunk);
        return true;
      },
      // EIO means every descriptor of the slave is closed. Any other end counts the same.
      onEnd: (error) => {
        if (error !== undefined && error.code !== 'EIO') this.#log.debug('terminal output ended', { error: error.message });
        lines.end();
        this.#markDrained();
      },
    });
  }

  /** Stops copying and closes the master. Output not yet copied is dropped, so call it after `drained` on a normal exit. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#output?.close();
    if (this.#master !== undefined) close(this.#master);
    this.#master = undefined;
    this.#markDrained();
  }
}
