import { appendFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

// A detached container's log file, <root>/containers/<id>/container.log,
// contains one JSON LogEntry a line, as docker's json-file driver writes
// them. The monitor appends to it, and `logs` reads it.

/**
 * Characters after which a line without a newline is written as an entry of
 * its own, so that output without newlines cannot grow the monitor's
 * memory without bound. docker's json-file driver splits at 16 KiB too.
 */
const MAX_LINE_LENGTH = 16 * 1024;

/** A record of one line of a container's log file. */
export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  /** ISO 8601 time at which the monitor read the line. */
  time: string;
}

/**
 * Splits one stream's output into lines and appends each to the log file
 * as a LogEntry. A line keeps its newline (and a terminal's `\r`). A last
 * line without a newline is written by end().
 */
export class LogLineWriter {
  readonly #file: string;
  readonly #stream: LogEntry['stream'];
  // Keeps a UTF-8 sequence that a chunk boundary cut until its next bytes arrive.
  readonly #decoder = new StringDecoder('utf8');
  #pending = '';

  constructor(file: string, stream: LogEntry['stream']) {
    this.#file = file;
    this.#stream = stream;
  }

  /** Appends the whole lines of `chunk` and keeps the rest for the next call. */
  write(chunk: Buffer): void {
    this.#pending += this.#decoder.write(chunk);
    let newline = this.#pending.indexOf('\n');
    while (newline !== -1) {
      this.#append(this.#pending.slice(0, newline + 1));
      this.#pending = this.#pending.slice(newline + 1);
      newline = this.#pending.indexOf('\n');
    }
    while (this.#pending.length >= MAX_LINE_LENGTH) {
      const cut = splitPoint(this.#pending);
      this.#append(this.#pending.slice(0, cut));
      this.#pending = this.#pending.slice(cut);
    }
  }

  /** Appends what is left: the stream has ended. */
  end(): void {
    const rest = this.#pending + this.#decoder.end();
    this.#pending = '';
    if (rest !== '') this.#append(rest);
  }

  #append(text: string): void {
    const entry: LogEntry = { log: text, stream: this.#stream, time: new Date().toISOString() };
    try {
      appendFileSync(this.#file, `${JSON.stringify(entry)}\n`);
    } catch {
      // The directory is gone: --rm removed the container, log and all.
    }
  }
}

// MAX_LINE_LENGTH, or one less where the cut would separate a UTF-16
// surrogate pair, which JSON would then store as two invalid halves.
function splitPoint(text: string): number {
  const last = text.charCodeAt(MAX_LINE_LENGTH - 1);
  return last >= 0xd800 && last <= 0xdbff ? MAX_LINE_LENGTH - 1 : MAX_LINE_LENGTH;
}
