import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, statSync, writeSync } from 'node:fs';

// Every access to cgroupfs goes through these functions, so the tests of
// the v2 code can put a fake cgroup2 tree behind them. The calls are
// synchronous, because the CLI runs them between the init's `ready` and
// `start` messages.

/** Creates one cgroup directory with mkdir(2). Returns false when a directory of that name exists already. */
export function mkdirCgroup(path: string): boolean {
  try {
    mkdirSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' && statSync(path).isDirectory()) return false;
    throw error;
  }
}

/** Removes one cgroup directory with rmdir(2). The kernel allows it once the cgroup has no processes and no child cgroups. */
export function rmdirCgroup(path: string): void {
  rmdirSync(path);
}

/**
 * Writes a value to an interface file in a single write(2). The open has
 * no O_CREAT, so a missing file fails with ENOENT, as cgroupfs does.
 */
export function writeCgroupFile(path: string, value: string): void {
  const fd = openSync(path, constants.O_WRONLY);
  try {
    const bytes = Buffer.from(value);
    const written = writeSync(fd, bytes);
    if (written !== bytes.length) throw new Error(`short write to ${path}: ${written} of ${bytes.length} bytes`);
  } finally {
    closeSync(fd);
  }
}

export function readCgroupFile(path: string): string {
  return readFileSync(path, 'utf8');
}

export function cgroupFileExists(path: string): boolean {
  return existsSync(path);
}

/** Lists the names of the child cgroups of a cgroup directory. */
export function listChildCgroups(path: string): string[] {
  return readdirSync(path, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `milliseconds`; used between rmdir(2) retries, which must stay synchronous. */
export function sleepSync(milliseconds: number): void {
  Atomics.wait(sleepCell, 0, 0, milliseconds);
}
