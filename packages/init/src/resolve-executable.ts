import { canAccess, F_OK, isDirectory, X_OK } from '@m-docker/syscalls';

/**
 * The PATH searched when the container's environment has none. glibc's
 * execvp(3) falls back to confstr(_CS_PATH), "/bin:/usr/bin", instead. This
 * list also covers the sbin and /usr/local folders.
 */
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
 * container's PATH (taken from `env`) the way execvp(3) does. A name with a
 * slash is used as it is. Otherwise the first match in PATH order that is not
 * a folder and has execute permission wins, and an empty PATH entry means the
 * working directory. Throws ResolveError with ENOENT when nothing named
 * `command` exists. When only folders or files without execute permission
 * match, it throws EISDIR or EACCES for the first of them in PATH order.
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
  // The first PATH entry wins, as with getenv(3).
  const entry = env.find((item) => item.startsWith('PATH='));
  return (entry === undefined ? DEFAULT_SEARCH_PATH : entry.slice('PATH='.length)).split(':');
}

// access(2) and open(2) through libc rather than node:fs, whose import costs
// about 3 ms of every start under Bun. All three follow symbolic links.
function checkExecutable(path: string): void {
  if (!canAccess(path, F_OK)) {
    throw new ResolveError('ENOENT', 2, path, `${JSON.stringify(path)}: no such file or directory`);
  }
  if (isDirectory(path)) {
    throw new ResolveError('EISDIR', 21, path, `${JSON.stringify(path)} is a directory`);
  }
  if (!canAccess(path, X_OK)) {
    throw new ResolveError('EACCES', 13, path, `${JSON.stringify(path)}: permission denied`);
  }
}

