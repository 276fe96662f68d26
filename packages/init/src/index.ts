import { createRequire } from 'node:module';

export { type ResolvedUser, resolveUser, UserError } from './container-user.js';
export { DEFAULT_SEARCH_PATH, ResolveError, resolveExecutable } from './resolve-executable.js';
export { type ContainerTerminal, giveTerminalTo, openTerminal } from './terminal.js';

/**
 * Returns the absolute path of the init's entry script, to spawn with fd 3
 * as its pipe. It is resolved through the package's `./main` export, so it
 * works from a bundle that inlines this module too.
 */
export function initEntryPath(from: string = import.meta.url): string {
  return createRequire(from).resolve('@m-docker/init/main');
}
