import { readFileSync } from 'node:fs';
import { realpath, rm } from 'node:fs/promises';

import { ImageError } from './errors.js';

/**
 * Returns the mount points at or below `path`, from /proc/self/mountinfo
 * text (proc(5): the fifth field, with spaces and other bytes escaped as
 * `\ooo` octal). `path` must be absolute and free of symlinks.
 */
export function mountsBelow(path: string, mountinfo: string = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  const found: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const mountPoint = field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
    if (mountPoint === path || mountPoint.startsWith(prefix)) found.push(mountPoint);
  }
  return found;
}

/**
 * Removes the directory tree at `path`, which may hold device files, files
 * of any owner and xattrs, without following symlinks (fs.rm does not).
 * Throws STORE_FAILED, and removes nothing, when a file system is mounted
 * at or below `path` in this process's mount namespace, because deleting
 * through it would delete the mounted files. A missing `path` is no error.
 *
 * NOTE: mounts in other mount namespaces, such as a container's, are not
 * visible here. Callers keep trees that containers use out of reach by
 * other means, such as the `usedBy` check of `remove`.
 */
export async function removeTree(path: string): Promise<void> {
  let resolved: string;
  try {
    resolved = await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ImageError('STORE_FAILED', `cannot remove ${path}: ${(error as Error).message}`, { path, cause: error });
  }

  const mounts = mountsBelow(resolved);
  if (mounts.length > 0) {
    throw new ImageError(
      'STORE_FAILED',
      `cannot remove ${path}: ${mounts.join(', ')} is mounted there, and removing would delete the mounted files: unmount it first`,
      { path: mounts[0] as string },
    );
  }

  try {
    await rm(resolved, { recursive: true, force: true });
  } catch (error) {
    throw new ImageError('STORE_FAILED', `cannot remove ${path}: ${(error as Error).message}`, { path, cause: error });
  }
}
