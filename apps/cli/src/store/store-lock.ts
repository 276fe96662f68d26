import { mkdirSync } from 'node:fs';

import { withFileLock } from '@m-docker/syscalls';

// One exclusive flock(2) lock, <root>/containers.lock, guards every change
// to container directories and records (containers/<id>/) and to the names
// registry (names/). Commands that only read, such as ps, inspect and
// logs, take no lock: each record is replaced by rename(2), so a reader
// sees the old or the new file, never a part of one.
//
// Why one lock for the whole store, not one per container plus one for
// names: creating a container reserves its name, and removing it releases
// the name, so nearly every section needs the names lock as well. Locks
// per container would then have to be taken in a fixed order with the
// names lock on every path. Their files would also have to be deleted with
// the containers, which races with a process that has one open and waits. The sections under the lock are short: a few small JSON
// writes, mkdir(2), rename(2) and symlink(2) calls, never a wait for a
// container. A removed container's directory is renamed under the lock and
// deleted after it is released, so a large writable layer never holds up
// other commands.
//
// A command that dies while holding the lock loses it when the kernel
// closes its descriptors. The only possible deadlock is a section that
// takes the lock again, which would wait for itself (flock(2) detects no
// deadlock), so a nested call runs inside the outer section instead. The
// image store's lock (@m-docker/images) is a different file, and the
// sections here never wait for it.

/** Returns the path of the store's lock file, which the first command that changes containers creates with mode 0600. */
export function storeLockPath(root: string): string {
  return `${root}/containers.lock`;
}

// The root of the store whose lock this process holds. Sections are
// synchronous, so no other code of this process runs while it is set.
let heldRoot: string | undefined;

/**
 * Runs `section` while holding the store's lock and returns its result.
 * Waits for as long as another m-docker command holds the lock. A call
 * made inside `section` for the same store runs at once, without taking
 * the lock a second time.
 */
export function withStoreLock<T>(root: string, section: () => T): T {
  if (heldRoot === root) return section();
  if (heldRoot !== undefined) {
    throw new Error(`the lock of store ${heldRoot} is held, so the lock of store ${root} cannot be taken: take one store's lock at a time`);
  }

  mkdirSync(root, { recursive: true, mode: 0o700 });
  heldRoot = root;
  try {
    return withFileLock(storeLockPath(root), section);
  } finally {
    heldRoot = undefined;
  }
}

/** Returns whether this process holds the lock of store `root`, for functions that callers must run under it. */
export function holdsStoreLock(root: string): boolean {
  return heldRoot === root;
}
