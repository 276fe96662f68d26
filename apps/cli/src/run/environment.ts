import { readFileSync } from 'node:fs';

import { CliError } from '../cli-error.js';

/** The PATH a container gets unless the user sets one, as in docker. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface EnvironmentOptions {
  hostname: string;
  tty: boolean;
  /** The image's Env, applied before the env files; empty without an image. */
  imageEnv?: readonly string[];
  /** Entries from `-e`, in command-line order. */
  env: readonly string[];
  /** Files from `--env-file`, read before the `-e` entries, as docker does. */
  envFiles: readonly string[];
  /** The CLI's own environment, for `-e KEY` and env-file lines without `=`. */
  hostEnv: NodeJS.ProcessEnv;
  /** Whether HOME=/root is added when no entry sets HOME (default: true). */
  defaultHome?: boolean;
}

/** The TERM that docker sets for a process with a terminal, in run -t and exec -t. */
export const TERMINAL_TYPE = 'xterm';

/**
 * Builds the container's environment: PATH, HOSTNAME and (with -t) TERM
 * first, then the image's Env, then the env files, then `-e`, then
 * HOME=/root unless set; a later entry replaces an earlier
 * one with the same key in its place. The host's environment is not
 * inherited, except for a `KEY` given without `=`, which copies the host's
 * value when it is set and is skipped otherwise.
 */
export function buildEnvironment(options: EnvironmentOptions): string[] {
  const entries = new Map<string, string>();
  entries.set('PATH', DEFAULT_PATH);
  entries.set('HOSTNAME', options.hostname);
  if (options.tty) entries.set('TERM', TERMINAL_TYPE);
  for (const item of options.imageEnv ?? []) {
    const equals = item.indexOf('=');
    if (equals > 0) entries.set(item.slice(0, equals), item.slice(equals + 1));
  }

  const add = (item: string, source: string) => {
    const entry = parseEntry(item, source, options.hostEnv);
    if (entry) entries.set(entry[0], entry[1]);
  };
  for (const file of options.envFiles) {
    readEnvFile(file).forEach((line, index) => {
      add(line, `${file} line ${index + 1}`);
    });
  }
  for (const item of options.env) add(item, '-e');

  // The container's user is root, so HOME is /root unless the user set it,
  // added last as docker and runc do.
  if (options.defaultHome !== false && !entries.has('HOME')) entries.set('HOME', '/root');

  return [...entries].map(([key, value]) => `${key}=${value}`);
}

/**
 * Returns an env file's lines with leading white space and a trailing CR
 * removed. Blank and `#` comment lines become empty strings, so that the
 * index plus one is the line number in errors.
 */
export function readEnvFile(file: string): string[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    let reason = code;
    if (code === 'ENOENT') reason = 'no such file';
    if (code === 'EISDIR') reason = 'it is a folder';
    throw new CliError(`cannot read env file ${JSON.stringify(file)}: ${reason} (${code}): check the path given to --env-file`, undefined, {
      cause: error,
    });
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new CliError(`env file ${file} is not valid UTF-8: save it as UTF-8 text`, undefined, { cause: error });
  }

  return text.split('\n').map((raw) => {
    const line = (raw.endsWith('\r') ? raw.slice(0, -1) : raw).trimStart();
    return line.startsWith('#') ? '' : line;
  });
}

// Returns [key, value], or undefined for a line to skip (blank, comment, or
// a KEY without `=` that the host does not set).
function parseEntry(item: string, source: string, hostEnv: NodeJS.ProcessEnv): [string, string] | undefined {
  if (item === '' && source !== '-e') return undefined;

  const equals = item.indexOf('=');
  const key = equals === -1 ? item : item.slice(0, equals);
  if (item === '') {
    throw new CliError(`invalid environment variable "" (${source}): give KEY=VALUE, or KEY to copy it from this environment`);
  }
  if (key === '') {
    throw new CliError(`invalid environment variable ${JSON.stringify(item)} (${source}): the name before '=' is empty`);
  }
  if (/\s/.test(key)) {
    throw new CliError(`invalid environment variable name ${JSON.stringify(key)} (${source}): names cannot contain whitespace`);
  }
  if (item.includes('\0')) {
    const part = key.includes('\0') ? 'name' : 'value';
    throw new CliError(
      `invalid environment variable ${JSON.stringify(key)} (${source}): its ${part} contains a NUL byte, which environment strings cannot hold`,
    );
  }

  if (equals === -1) {
    const value = hostEnv[key];
    return value === undefined ? undefined : [key, value];
  }
  return [key, item.slice(equals + 1)];
}
