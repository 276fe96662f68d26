import { execFileSync, spawnSync } from 'node:child_process';

import { waitFor } from './helpers.js';

/** Whether tmux is installed (Debian package tmux, which scripts/setup.sh installs). */
export const HAS_TMUX = spawnSync('tmux', ['-V']).status === 0;

/** Quotes `word` for sh, so a command line reaches tmux's shell byte for byte. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * A real terminal for the CLI: a tmux server on a socket of its own
 * (`tmux -L NAME`), with one session whose pane runs a command. Tests type
 * with send-keys and read the screen with capture-pane. `kill` ends the
 * server and everything in it; call it in afterEach.
 */
export class TmuxTerminal {
  readonly socket: string;

  constructor(name: string) {
    this.socket = name;
  }

  /** Starts the server with one pane of `columns` x `rows` running `command` through sh. */
  start(command: string, size: { columns: number; rows: number }): void {
    this.#tmux(['new-session', '-d', '-s', 'main', '-x', String(size.columns), '-y', String(size.rows), command]);
    // The pane stays after its command ends, so its last screen can be read.
    this.#tmux(['set-option', '-t', 'main', 'remain-on-exit', 'on']);
  }

  /** Types `text` as it is, without interpreting key names. */
  type(text: string): void {
    this.#tmux(['send-keys', '-t', 'main', '-l', text]);
  }

  /** Presses keys by tmux's names, such as `Enter` or `C-c`. */
  press(...keys: string[]): void {
    this.#tmux(['send-keys', '-t', 'main', ...keys]);
  }

  /** Types `line` and presses Enter. */
  typeLine(line: string): void {
    this.type(line);
    this.press('Enter');
  }

  /** Returns the pane's screen and history as text, one line per row, without trailing blanks. */
  screen(): string {
    return this.#tmux(['capture-pane', '-p', '-J', '-S', '-', '-t', 'main'])
      .split('\n')
      .map((line) => line.trimEnd())
      .join('\n')
      .trimEnd();
  }

  /** Waits until the screen matches `pattern`, and returns the match. */
  async waitForScreen(pattern: RegExp, description: string): Promise<RegExpMatchArray> {
    let match: RegExpMatchArray | null = null;
    await waitFor(
      () => {
        match = this.screen().match(pattern);
        return match !== null;
      },
      description,
      15_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n--- screen ---\n${this.screen()}`);
    });
    return match as unknown as RegExpMatchArray;
  }

  /** Changes the window's size, which the pane's terminal reports with SIGWINCH. */
  resize(size: { columns: number; rows: number }): void {
    this.#tmux(['resize-window', '-t', 'main', '-x', String(size.columns), '-y', String(size.rows)]);
  }

  /** Returns the pid of the pane's command. */
  panePid(): number {
    return Number(this.#tmux(['display-message', '-p', '-t', 'main', '#{pane_pid}']).trim());
  }

  /** Ends the server and every process in its panes (SIGHUP); a server that is gone already is fine. */
  kill(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server'], { stdio: 'ignore' });
  }

  #tmux(args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }
}
