import { mkdir } from 'node:fs/promises';
import lockfile from 'proper-lockfile';

import { ImageError } from './errors.js';
import type { StorePaths } from './store-paths.js';

/** How long a process waits for the store's lock and when it treats a holder as dead. */
export interface LockTiming {
  /**
   * Age in ms after which a lock whose holder stopped refreshing it is
   * taken over. The holder refreshes it every stale/2 ms, so only a killed
   * or frozen holder loses it. proper-lockfile's minimum is 2000.
   */
  staleMs: number;
  /** How long to wait for the lock before failing with LOCKED, in ms. */
  waitMs: number;
}

export const DEFAULT_LOCK_TIMING: LockTiming = { staleMs: 10_000, waitMs: 60_000 };

/** Interval between two attempts to take the lock, in ms. */
const RETRY_INTERVAL_MS = 100;

/**
 * Runs `critical` while holding the store's lock: the directory
 * `<root>/lock`, created with mkdir(2) by proper-lockfile, which works
 * across processes and between calls in one process. Callers keep the
 * critical part short (renames and small JSON files) and unpack and delete
 * outside it. A lock that was lost while `critical` ran (it took longer
 * than `staleMs` without the event loop refreshing the lock) fails the
 * call with LOCKED after `critical` returns. An error of `critical` is
 * thrown as it is, after the lock is released.
 */
export async function withStoreLock<T>(paths: StorePaths, timing: LockTiming, critical: () => Promise<T>): Promise<T> {
  await mkdir(paths.root, { recursive: true, mode: 0o700 });

  let compromised: Error | undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(paths.root, {
      lockfilePath: paths.lock,
      realpath: false,
      stale: timing.staleMs,
      retries: { retries: Math.ceil(timing.waitMs / RETRY_INTERVAL_MS), factor: 1, minTimeout: RETRY_INTERVAL_MS, maxTimeout: RETRY_INTERVAL_MS },
      onCompromised: (error) => {
        compromised = error;
      },
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw new ImageError(
        'LOCKED',
        `the image store ${paths.root} is locked by another m-docker process for more than ${timing.waitMs / 1000} s: wait for it to finish, or remove ${paths.lock} if no m-docker process runs`,
        { path: paths.lock, cause: error },
      );
    }
    throw new ImageError('STORE_FAILED', `cannot lock ${paths.lock}: ${(error as Error).message}`, { path: paths.lock, cause: error });
  }

  let result: T;
  try {
    result = await critical();
  } finally {
    // Releasing a lock that was lost fails, and the loss is reported below.
    await release().catch(() => {});
  }
  if (compromised !== undefined) {
    throw new ImageError('LOCKED', `lost the lock of the image store ${paths.root} while changing it: ${compromised.message}: check the result with 'm-docker image ls' and run the command again`, {
      path: paths.lock,
      cause: compromised,
    });
  }
  return result;
}
