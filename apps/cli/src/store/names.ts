import { existsSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';

import { CliError } from '../cli-error.js';
import { holdsStoreLock, withStoreLock } from './store-lock.js';

// Container names are unique in a store. Each name is a symbolic link
// <root>/names/<name> -> <container id>, created and removed under the
// store's lock in the same section that creates or removes the container's
// directory (containers.ts). So under the lock, a link whose container
// directory is missing was left by a command that was killed in between,
// and is taken over or removed.

/** docker's rule for container names. */
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Words of generated names, as docker makes names such as `brave_turing` from two lists. */
const ADJECTIVES = ['agile', 'bold', 'brave', 'calm', 'clever', 'eager', 'fair', 'gentle', 'happy', 'keen', 'kind', 'lucid', 'merry', 'nimble', 'proud', 'quiet', 'sharp', 'steady', 'swift', 'vivid', 'wise', 'witty', 'zen', 'jolly'];
const SURNAMES = ['babbage', 'curie', 'dijkstra', 'euler', 'fermat', 'gauss', 'hopper', 'kepler', 'knuth', 'lamport', 'liskov', 'lovelace', 'noether', 'pascal', 'ritchie', 'shannon', 'thompson', 'torvalds', 'turing', 'wirth'];

/** The maximum length of a container name: NAME_MAX, the maximum length of a file name on Linux. */
const MAX_NAME_LENGTH = 255;

/** Attempts at a free generated name before a random suffix is added. */
const GENERATED_ATTEMPTS = 10;

function namesDir(root: string): string {
  return `${root}/names`;
}

/** Throws when `name` breaks docker's rule for container names, so that a run can reject it before it starts anything. */
export function checkName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new CliError(`invalid container name ${JSON.stringify(name)}: use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
  // The name is a file name in the store (a symbolic link in names/).
  if (name.length > MAX_NAME_LENGTH) {
    throw new CliError(`invalid container name of ${name.length} characters: use at most ${MAX_NAME_LENGTH}`);
  }
}

/**
 * Reserves `requested`, or a generated name when it is undefined, for the
 * container `id`, and returns it. A requested name that another container
 * has is rejected. The caller holds the store's lock.
 */
export function reserveName(root: string, id: string, requested?: string): string {
  requireLock(root, 'reserveName');
  mkdirSync(namesDir(root), { recursive: true, mode: 0o700 });
  if (requested !== undefined) {
    checkName(requested);
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

/** Releases `name` when it still belongs to `id`. The caller holds the store's lock. */
export function releaseName(root: string, name: string, id: string): void {
  requireLock(root, 'releaseName');
  if (readOwner(root, name) !== id) return;
  unlinkSync(`${namesDir(root)}/${name}`);
}

/**
 * Removes the names whose container directory is missing. A command killed
 * inside a section leaves one between symlink(2) and mkdir(2) of a new
 * container, or between rename(2) and unlink(2) of a removed one. They are
 * found without the lock and checked again under it, so the lock is taken
 * only when there is one. Returns the removed names.
 */
export function removeLeftOverNames(root: string): string[] {
  const candidates = listNames(root).filter((name) => isLeftOver(root, name));
  if (candidates.length === 0) return [];

  return withStoreLock(root, () =>
    candidates.filter((name) => {
      if (!isLeftOver(root, name)) return false;
      unlinkSync(`${namesDir(root)}/${name}`);
      return true;
    }),
  );
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
  try {
    symlinkSync(id, link);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if (!isLeftOver(root, name)) return false;
  unlinkSync(link);
  symlinkSync(id, link);
  return true;
}

// A link whose container directory does not exist. Under the lock it is
// always left over; without the lock it may belong to a container whose
// creation is in progress.
function isLeftOver(root: string, name: string): boolean {
  const owner = readOwner(root, name);
  return owner !== undefined && !existsSync(`${root}/containers/${owner}`);
}

function listNames(root: string): string[] {
  try {
    return readdirSync(namesDir(root));
  } catch {
    return [];
  }
}

function requireLock(root: string, caller: string): void {
  if (!holdsStoreLock(root)) throw new Error(`${caller} needs the store's lock: call it inside withStoreLock`);
}

function pick(words: readonly string[]): string {
  return words[Math.floor(Math.random() * words.length)] as string;
}
