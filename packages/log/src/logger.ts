import { createRequire } from 'node:module';

/** Log levels from the most to the least severe. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Key-value context printed after a message, such as the container id. */
export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  isEnabled(level: LogLevel): boolean;
  /** Returns a logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** The least severe level printed. */
  level: LogLevel;
  /** The process that logs: `cli` or `init`. */
  component: string;
  fields?: LogFields;
  /** Receives each finished line; by default a synchronous write to fd 2. */
  write?: (line: string) => void;
}

// Lines go to fd 2 with a synchronous write(2), not through process.stderr:
// creating that stream can set O_NONBLOCK on a pipe that the container's
// command shares, which makes the command's own writes fail with EAGAIN.
// node:fs is required at the first line, because under Bun importing it
// costs about 3 ms of every start, and most runs log nothing.
function writeToStderr(line: string): void {
  try {
    (createRequire(import.meta.url)('node:fs') as typeof import('node:fs')).writeSync(2, line);
  } catch {
    // A closed or full stderr must not stop the container; the line is lost.
  }
}

/**
 * Creates a logger that prints `m-docker[cli] debug +12.4ms config sent id=3f2a…`:
 * the time is milliseconds since this process started (performance.now()),
 * so the lines of the CLI and the init together show where start-up time goes.
 */
export function createLogger(options: LoggerOptions): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level);
  const write = options.write ?? writeToStderr;
  const baseFields = options.fields ?? {};

  const isEnabled = (level: LogLevel) => LOG_LEVELS.indexOf(level) <= threshold;
  const log = (level: LogLevel, message: string, fields?: LogFields) => {
    if (!isEnabled(level)) return;
    const time = performance.now().toFixed(1);
    const context = formatFields({ ...baseFields, ...fields });
    write(`m-docker[${options.component}] ${level} +${time}ms ${message}${context}\n`);
  };

  return {
    error: (message, fields) => log('error', message, fields),
    warn: (message, fields) => log('warn', message, fields),
    info: (message, fields) => log('info', message, fields),
    debug: (message, fields) => log('debug', message, fields),
    isEnabled,
    child: (fields) => createLogger({ ...options, fields: { ...baseFields, ...fields } }),
  };
}

// Values with spaces or quotes are JSON-quoted so that each line stays one
// line and splits on spaces.
function formatFields(fields: LogFields): string {
  let text = '';
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const raw = String(value);
    text += ` ${key}=${/^[\w./:@+-]*$/.test(raw) && raw !== '' ? raw : JSON.stringify(raw)}`;
  }
  return text;
}
