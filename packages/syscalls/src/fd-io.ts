import { errnoName, SyscallError } from './errors.js';
import { lastErrno, loadLibc } from './libc.js';

// Plain file-descriptor I/O through libc. Under Bun, importing node:fs costs
// about 3 ms, so the processes on a container's start path (the CLI's first
// chunk and the init) read, write and open files through these instead.

/** open(2) flags used by m-docker that x86_64 and aarch64 share (asm-generic values). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_CLOEXEC = 0o2000000;

// aarch64 keeps 32-bit ARM's values for these two (arch/arm64's
// uapi/asm/fcntl.h), while x86_64 takes asm-generic's.
const ARM64 = process.arch === 'arm64';

/** open(2) flag: fail with ENOTDIR unless the path is a directory. */
export const O_DIRECTORY = ARM64 ? 0o40000 : 0o200000;
/** open(2) flag: fail with ELOOP when the last component is a symbolic link. */
export const O_NOFOLLOW = ARM64 ? 0o100000 : 0o400000;

/** access(2) modes. */
export const F_OK = 0;
export const X_OK = 1;

const EINTR = 4;

function fail(syscall: string, errno: number, path?: string, args?: string): SyscallError {
  return new SyscallError({
    syscall,
    errno,
    code: errnoName(errno),
    ...(path !== undefined ? { path } : {}),
    ...(args !== undefined ? { args } : {}),
  });
}

/**
 * Reads up to `length` bytes from `fd` into `buffer` at `offset` (read(2));
 * returns the count, 0 at end of file. Retries EINTR. Throws a SyscallError
 * whose `code` names the errno, as node:fs errors do.
 */
export function readFd(fd: number, buffer: Uint8Array, offset = 0, length = buffer.byteLength - offset): number {
  const view = buffer.subarray(offset, offset + length);
  for (;;) {
    const count = loadLibc().read(fd, view);
    if (count >= 0) return count;
    const errno = lastErrno();
    if (errno !== EINTR) throw fail('read', errno, undefined, `fd=${fd}`);
  }
}

/** Writes up to `length` bytes of `buffer` from `offset` to `fd` (write(2)); returns the count. Retries EINTR. */
export function writeFd(fd: number, buffer: Uint8Array, offset = 0, length = buffer.byteLength - offset): number {
  const view = buffer.subarray(offset, offset + length);
  for (;;) {
    const count = loadLibc().write(fd, view);
    if (count >= 0) return count;
    const errno = lastErrno();
    if (errno !== EINTR) throw fail('write', errno, undefined, `fd=${fd}`);
  }
}

/** Opens `path` (open(2)) and returns the descriptor; O_CLOEXEC is always added. */
export function openFile(path: string, flags = O_RDONLY, mode = 0): number {
  const fd = loadLibc().open(path, flags | O_CLOEXEC, mode);
  if (fd === -1) {
    const errno = lastErrno();
    throw fail('open', errno, path);
  }
  return fd;
}

/** Returns whether `path` is accessible with `mode` (access(2)); any failure counts as no. */
export function canAccess(path: string, mode: number): boolean {
  return loadLibc().access(path, mode) === 0;
}

/**
 * Returns whether `path` is a folder, following symbolic links: open(2)
 * with O_DIRECTORY succeeds only for one. It builds no error object on the
 * way, since describing an errno loads node:os and node:util.
 */
export function isDirectory(path: string): boolean {
  const fd = loadLibc().open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd === -1) return false;
  loadLibc().close(fd);
  return true;
}

/** Reads a whole small file such as one under /proc, as text. */
export function readTextFile(path: string, limit = 64 * 1024): string {
  const fd = openFile(path);
  try {
    const buffer = Buffer.allocUnsafe(limit);
    let filled = 0;
    while (filled < limit) {
      const count = readFd(fd, buffer, filled);
      if (count === 0) break;
      filled += count;
    }
    return buffer.toString('utf8', 0, filled);
  } finally {
    loadLibc().close(fd);
  }
}

/** The read and write functions in the shape that @m-docker/ipc's sync channel takes. */
export const fdIo = { read: readFd, write: writeFd };
