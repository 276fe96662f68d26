import { errnoName, SyscallError } from './errors.js';
import { lastErrno, loadLibc } from './libc.js';

// Calls that create file system entries. The init builds a container's /dev
// and its mount points with them, through libc rather than node:fs, whose
// import costs about 3 ms under Bun on every start.

/** File type bits of `mode` for mknod(2), from sys/stat.h. */
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** errno values that callers of these functions branch on. */
export const ENOENT = 2;
export const EEXIST = 17;
export const EINVAL = 22;

const PATH_MAX = 4096;

function fail(syscall: string, errno: number, path: string, args?: string): SyscallError {
  return new SyscallError({ syscall, errno, code: errnoName(errno), path, ...(args !== undefined ? { args } : {}) });
}

/** Builds a dev_t from a major and minor number, as glibc's makedev(3) does. */
export function makedev(major: number, minor: number): bigint {
  const high = BigInt(major);
  const low = BigInt(minor);
  return ((high & 0xfffff000n) << 32n) | ((high & 0xfffn) << 8n) | ((low & 0xffffff00n) << 12n) | (low & 0xffn);
}

/** Creates a directory (mkdir(2)); the process umask still applies to `mode`. */
export function mkdir(path: string, mode = 0o755): void {
  if (loadLibc().mkdir(path, mode) === -1) {
    const errno = lastErrno();
    throw fail('mkdir', errno, path, `mode=0${mode.toString(8)}`);
  }
}

/** Sets the permission bits of `path` (chmod(2)), which the umask does not reduce. */
export function chmod(path: string, mode: number): void {
  if (loadLibc().chmod(path, mode) === -1) {
    const errno = lastErrno();
    throw fail('chmod', errno, path, `mode=0${mode.toString(8)}`);
  }
}

/** Unchanged owner or group for fchown: -1 as uid_t and gid_t. */
export const UNCHANGED_ID = 0xffffffff;

/** Sets the owner and group of the file open at `fd` (fchown(2)); UNCHANGED_ID keeps one of them. */
export function fchown(fd: number, uid: number, gid: number): void {
  if (loadLibc().fchown(fd, uid, gid) === -1) {
    const errno = lastErrno();
    throw new SyscallError({ syscall: 'fchown', errno, code: errnoName(errno), args: `fd=${fd} uid=${uid} gid=${gid}` });
  }
}

/** Creates a device node or FIFO (mknod(2)); `mode` contains the file type and the permission bits. */
export function mknod(path: string, mode: number, device = 0n): void {
  if (loadLibc().mknod(path, mode, device) === -1) {
    const errno = lastErrno();
    throw fail('mknod', errno, path, `mode=0${mode.toString(8)}`);
  }
}

/** Creates the symbolic link `linkPath` pointing to `target` (symlink(2)); `target` is stored as it is. */
export function symlink(target: string, linkPath: string): void {
  if (loadLibc().symlink(target, linkPath) === -1) {
    const errno = lastErrno();
    throw fail('symlink', errno, linkPath, `target=${target}`);
  }
}

/**
 * Returns the target of the symbolic link `path`, or undefined when `path`
 * exists and is not a symbolic link (readlink(2) fails with EINVAL). Other
 * failures, such as ENOENT, throw.
 */
export function readlink(path: string): string | undefined {
  const buffer = Buffer.allocUnsafe(PATH_MAX);
  const length = loadLibc().readlink(path, buffer);
  if (length === -1) {
    const errno = lastErrno();
    if (errno === EINVAL) return undefined;
    throw fail('readlink', errno, path);
  }
  return buffer.toString('utf8', 0, length);
}
