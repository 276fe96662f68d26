import { existsSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';

import { CliError } from '../cli-error.js';
import { isOlderThan } from './file-age.js';

// Container names are unique in a store. Each name is a symbolic link
// <root>/names/<name> -> <container id>: symlink(2) fails with EEXIST when
// the name exists, so two runs started at once can never both get it, and
// no lock is needed. A link whose container directory is gone belongs to a
// run that was killed before it removed it, and is taken over.

/** docker's rule for container names. */
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Words of generated names, as docker makes names such as `brave_turing` from two lists. */
const ADJECTIVES = ['agile', 'bold', 'brave', 'calm', 'clever', 'eager', 'fair', 'gentle', 'happy', 'keen', 'kind', 'lucid', 'merry', 'nimble', 'proud', 'quiet', 'sharp', 'steady', 'swift', 'vivid', 'wise', 'witty', 'zen', 'jolly'];
const SURNAMES = ['babbage', 'curie', 'dijkstra', 'euler', 'fermat', 'gauss', 'hopper', 'kepler', 'knuth', 'lamport', 'liskov', 'lovelace', 'noether', 'pascal', 'ritchie', 'shannon', 'thompson', 'torvalds', 'turing', 'wirth'];

/** Age in ms after which a name whose container directory is missing counts as left over by a killed run. */
const LEFT_OVER_AGE_MS = 60_000;

/** Attempts at a free generated name before a random suffix is added. */
const GENERATED_ATTEMPTS = 10;

function namesDir(root: string): string {
  return `${root}/names`;
}

/**
 * Reserves `requested`, or a generated name when it is undefined, for the
 * container `id`, and returns it. A requested name that another container
 * has is rejected.
 */
export function reserveName(root: string, id: string, requested?: string): string {
  mkdirSync(namesDir(root), { recursive: true, mode: 0o700 });
  if (requested !== undefined) {
    if (!NAME_PATTERN.test(requested)) {
      throw new CliError(`invalid container name ${JSON.stringify(requested)}: use letters, digits, '_', '.' and '-', starting with a letter or digit`);
    }
    if (!tryReserve(root, requested, id)) {
      const owner = readOwner(root, requested) ?? '';
      throw new CliError(
        `the container name ${JSON.stringify(requested)} is already in use by container ${owner.slice(0, 12)}: remove that container or choose another name`,
      );
    }
    return requested;
  }

  for (let attempt = 0; ; attempt++) {
    let name = `${pick(ADJECTIVES)}_${pick(SURNAMES)}`;
    if (attempt >= GENERATED_ATTEMPTS) name += `_${attempt}${Math.floor(Math.random() * 1000)}`;
    if (tryReserve(root, name, id)) return name;
  }
}

/** Releases `name` when it still belongs to `id`. */
export function releaseName(root: string, name: string, id: string): void {
  if (readOwner(root, name) !== id) return;
  try {
    unlinkSync(`${namesDir(root)}/${name}`);
  } catch {
    // Released by another command at the same time.
  }
}

/** Returns the id of the container named `name`, or undefined. */
export function readOwner(root: string, name: string): string | undefined {
  try {
    return readlinkSync(`${namesDir(root)}/${name}`);
  } catch {
    return undefined;
  }
}

function tryReserve(root: string, name: string, id: string): boolean {
  const link = `${namesDir(root)}/${name}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      symlinkSync(id, link);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // A name whose container directory is gone is left over: take it over
    // once. A run reserves its name before it creates its directory, so a
    // link younger than LEFT_OVER_AGE_MS is never taken over. NOTE: two runs
    // that take over the same left-over name at the same moment can race
    // between the check and the unlink.
    const owner = readOwner(root, name);
    if (owner === undefined || existsSync(`${root}/containers/${owner}`) || !isOlderThan(link, LEFT_OVER_AGE_MS)) return false;
    try {
      unlinkSync(link);
    } catch {
      return false;
    }
  }
  return false;
}

function pick(words: readonly string[]): string {
  return words[Math.floor(Math.random() * words.length)] as string;
}
