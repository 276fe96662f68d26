import { lstatSync } from 'node:fs';

/** Returns whether `path` (not what a symbolic link at it points to) was last changed more than `ms` ago; false when it is gone. */
export function isOlderThan(path: string, ms: number): boolean {
  try {
    return Date.now() - lstatSync(path).mtimeMs > ms;
  } catch {
    return false;
  }
}
