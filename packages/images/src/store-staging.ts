import { readFileSync } from 'node:fs';
import { mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';

import { ImageError } from './errors.js';
import type { StorePaths } from './store-paths.js';
import { removeTree } from './store-remove-tree.js';

// Every entry of <root>/tmp is named `<kind>-<pid>-<starttime>-<random>`,
// after the process that owns it. The start time (field 22 of
// /proc/PID/stat, in clock ticks since boot) distinguishes a live owner
// from a later process that reuses its pid. An entry whose owner is gone is left
// over from a killed import or removal, and cleanStale removes it.
//
// NOTE: pids are those of this process's PID namespace. Two m-docker
// processes in different PID namespaces that share one store could
// misjudge each other's entries.

const ENTRY_NAME = /^([a-z]+)-(\d+)-(\d+)-([0-9a-f]+)(?:\.json)?$/;

let ownStartTime: string | undefined;

/** Returns the start time of process `pid` (field 22 of /proc/PID/stat), or undefined when no such process exists. */
export function processStartTime(pid: number | 'self'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2, the command name, is in parentheses and may contain spaces
  // and parentheses itself, so the fields are counted after the last ")".
  // The text after it starts with field 3, so field 22 is the 20th there.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

// The Web Crypto API rather than node:crypto: the lookup entry that every
// `run --image` loads reaches this module, and node:crypto costs several
// milliseconds to load under Bun.

/** Returns a fresh name for an entry of <root>/tmp owned by this process, such as `import-4242-987654-1a2b3c4d`. */
export function ownedName(kind: string): string {
  ownStartTime ??= processStartTime('self') ?? '0';
  return `${kind}-${process.pid}-${ownStartTime}-${Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString('hex')}`;
}

/** Creates a staging directory of this process in <root>/tmp and returns its path. */
export async function createStagingDir(paths: StorePaths, kind: string): Promise<string> {
  await mkdir(paths.tmp, { recursive: true, mode: 0o700 });
  const directory = join(paths.tmp, ownedName(kind));
  await mkdir(directory, { mode: 0o700 });
  return directory;
}

/** Returns whether the owner of a <root>/tmp entry still runs. Names of another form count as alive, so they are kept. */
export function isOwnerAlive(name: string): boolean {
  const match = ENTRY_NAME.exec(name);
  if (match === null) return true;
  return processStartTime(Number(match[2])) === match[3];
}

/**
 * Removes the entries of <root>/tmp whose owner process is gone and
 * returns their paths. Each entry is first renamed to a name owned by this
 * process, so that two cleaners never remove the same tree at once, and a
 * cleaner that is killed halfway leaves an entry that the next one removes.
 */
export async function cleanStale(paths: StorePaths): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(paths.tmp);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ImageError('STORE_FAILED', `cannot list ${paths.tmp}: ${(error as Error).message}`, { path: paths.tmp, cause: error });
  }

  const removed: string[] = [];
  for (const name of names) {
    if (isOwnerAlive(name)) continue;
    const stale = join(paths.tmp, name);
    const claimed = join(paths.tmp, ownedName('clean'));
    try {
      await rename(stale, claimed);
    } catch (error) {
      // Another cleaner claimed it first.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new ImageError('STORE_FAILED', `cannot claim ${stale} for removal: ${(error as Error).message}`, { path: stale, cause: error });
    }
    await removeTree(claimed);
    removed.push(stale);
  }
  return removed;
}
