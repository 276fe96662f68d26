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
  const absolute = chosen.startsWith('/') ? chosen : `${process.cwd()}/${chosen}`;
  return absolute.replace(/\/+$/, '') || '/';
}
