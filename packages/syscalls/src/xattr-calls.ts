import { errnoName, SyscallError } from './errors.js';
import { lastErrno, loadLibc } from './libc.js';

// Extended attributes of a path itself: the l* calls act on a symbolic link
// and never on its target, so writing an attribute cannot leave a directory
// through a link planted in it.

/** Flags of lsetxattr(2), from sys/xattr.h: fail if the attribute exists, or if it does not. */
export const XATTR_CREATE = 0x1;
export const XATTR_REPLACE = 0x2;

/** errno of lgetxattr(2) for an attribute that is not set (ENODATA, also spelled ENOATTR). */
export const ENODATA = 61;

const ERANGE = 34;

function fail(syscall: string, errno: number, path: string, name: string): SyscallError {
  return new SyscallError({ syscall, errno, code: errnoName(errno), path, args: `name=${name}` });
}

/**
 * Sets the extended attribute `name` (such as `user.comment` or
 * `trusted.overlay.opaque`) of `path` to `value` (lsetxattr(2)). A string
 * value is written as UTF-8 bytes. The kernel rejects `user.*` attributes on
 * symbolic links with EPERM, and `trusted.*` ones without CAP_SYS_ADMIN.
 */
export function lsetxattr(path: string, name: string, value: Uint8Array | string, flags = 0): void {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  if (loadLibc().lsetxattr(path, name, bytes, flags) === -1) {
    const errno = lastErrno();
    throw fail('lsetxattr', errno, path, name);
  }
}

/**
 * Returns the value of the extended attribute `name` of `path` itself
 * (lgetxattr(2)). An attribute that is not set throws a SyscallError with
 * code ENODATA.
 */
export function lgetxattr(path: string, name: string): Buffer {
  const libc = loadLibc();

  // Another process can enlarge the value between the call that measures it
  // and the call that reads it. The read then fails with ERANGE, so the loop
  // measures again.
  for (;;) {
    const length = libc.lgetxattr(path, name, new Uint8Array(0));
    if (length === -1) {
      const errno = lastErrno();
      throw fail('lgetxattr', errno, path, name);
    }

    const buffer = Buffer.alloc(length);
    const read = libc.lgetxattr(path, name, buffer);
    if (read !== -1) return buffer.subarray(0, read);

    const errno = lastErrno();
    if (errno !== ERANGE) throw fail('lgetxattr', errno, path, name);
  }
}
