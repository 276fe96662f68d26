import { canAccess, F_OK, isDirectory } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';

/** The directory of images, layers, containers and volumes unless --root or M_DOCKER_ROOT sets another one. */
export const DEFAULT_ROOT = '/var/lib/m-docker';

/**
 * Returns the store's root directory: `--root` first, then the
 * M_DOCKER_ROOT variable, then the default. A relative path is taken from
 * the working directory, as docker's --data-root is.
 */
export function resolveRootDir(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  // An empty --root would mean the working directory, which a script with
  // an unset variable would reach by mistake.
  if (option === '') throw new CliError('invalid --root "": the value is empty: give the store\'s directory or leave --root out');
  const chosen = option ?? (env.M_DOCKER_ROOT || DEFAULT_ROOT);
  const absolute = (chosen.startsWith('/') ? chosen : `${process.cwd()}/${chosen}`).replace(/\/+$/, '') || '/';
  if (canAccess(absolute, F_OK) && !isDirectory(absolute)) {
    throw new CliError(
      `invalid store root ${JSON.stringify(absolute)}: it is not a directory: point --root or M_DOCKER_ROOT at a directory, or at a path that does not exist yet`,
    );
  }
  return absolute;
}
