import { accessSync, constants, statSync } from 'node:fs';

/** The PATH an init uses when the container's environment has none, as execvp(3) does. */
export const DEFAULT_SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Why a command could not be resolved: the errno name for the init's error message. */
export class ResolveError extends Error {
  constructor(
    readonly code: 'ENOENT' | 'EACCES' | 'EISDIR',
    readonly errno: number,
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'ResolveError';
  }
}

/**
 * Returns the file that execve(2) should run for `command`, searching the
 * container's PATH (taken from `env`) the way execvp(3) does: a name with a
 * slash is used as it is; otherwise the first executable regular file named
 * `command` in a PATH folder wins, and an empty PATH entry means the working
 * directory. Throws ResolveError with ENOENT when no file exists, EACCES when
 * files exist but none may be executed, EISDIR for a folder named directly.
 */
export function resolveExecutable(command: string, env: readonly string[]): string {
  if (command.includes('/')) {
    checkExecutable(command);
    return command;
  }

  let denied: ResolveError | undefined;
  for (const folder of searchPath(env)) {
    const candidate = `${folder === '' ? '.' : folder}/${command}`;
    try {
      checkExecutable(candidate);
      return candidate;
    } catch (error) {
      if (!(error instanceof ResolveError) || error.code === 'ENOENT') continue;
      denied ??= error;
    }
  }
  if (denied) throw denied;
  throw new ResolveError('ENOENT', 2, command, `executable file ${JSON.stringify(command)} not found in $PATH`);
}

function searchPath(env: readonly string[]): string[] {
  const entry = env.findLast((item) => item.startsWith('PATH='));
  return (entry === undefined ? DEFAULT_SEARCH_PATH : entry.slice('PATH='.length)).split(':');
}

function checkExecutable(path: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    throw new ResolveError('ENOENT', 2, path, `${JSON.stringify(path)}: no such file or directory`);
  }
  if (isDirectory) {
    throw new ResolveError('EISDIR', 21, path, `${JSON.stringify(path)} is a directory`);
  }
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new ResolveError('EACCES', 13, path, `${JSON.stringify(path)}: permission denied`);
  }
}
