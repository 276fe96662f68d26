import { createRequire } from 'node:module';

// node:os and node:util are loaded only when an error is described: under
// Bun, importing them costs a few milliseconds of every container's start.
const requireLazily = createRequire(import.meta.url);

const BRAND = Symbol.for('@m-docker/syscalls/SyscallError');

/** Details of a failed system call, as stored on a `SyscallError`. */
export interface SyscallErrorDetails {
  /** The call's name as the man pages spell it: `mount`, `setns`. */
  syscall: string;
  /** errno as a number, 0 when the failure did not come from the kernel. */
  errno: number;
  /** The errno name (`EPERM`), or `ENOSYS` for an unsupported platform. */
  code: string;
  /** The file or mount point involved, when there is one. */
  path?: string;
  /** A short rendering of the other arguments: `flags=0x20000`. */
  args?: string;
}

/**
 * A Linux system call that failed. The message reads
 * `mount proc on /proc: EPERM (operation not permitted)`, so callers can
 * print it as it is and add what to do.
 */
export class SyscallError extends Error implements SyscallErrorDetails {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  readonly path?: string;
  readonly args?: string;
  readonly [BRAND] = true;

  constructor(details: SyscallErrorDetails, subject?: string, options?: ErrorOptions) {
    const prefix = subject ?? [details.syscall, details.path, details.args].filter(Boolean).join(' ');
    super(`${prefix}: ${details.code} (${describeErrno(details.errno, details.code)})`, options);
    this.name = 'SyscallError';
    this.syscall = details.syscall;
    this.errno = details.errno;
    this.code = details.code;
    if (details.path !== undefined) this.path = details.path;
    if (details.args !== undefined) this.args = details.args;
  }

  /** Checks the brand, so errors from another copy of this package match too. */
  static isInstance(value: unknown): value is SyscallError {
    return typeof value === 'object' && value !== null && BRAND in value;
  }
}

let errnoNames: Map<number, string> | undefined;
let errnoDescriptions: Map<number, [string, string]> | undefined;

/** Describes errno values that libuv's table lacks (ENOEXEC, ECHILD...); set by libc.ts once glibc is loaded. */
export const fallbackDescriber: { describe?: (errno: number) => string } = {};

/** Returns the errno name for a number, such as `EPERM` for 1, from Node's table of the platform's values. */
export function errnoName(errno: number): string {
  if (!errnoNames) {
    errnoNames = new Map();
    const { constants } = requireLazily('node:os') as typeof import('node:os');
    for (const [name, value] of Object.entries(constants.errno)) {
      if (!errnoNames.has(value)) errnoNames.set(value, name);
    }
  }
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

// libuv's descriptions are lowercase ("no such file or directory"); the few
// errno values it has no entry for come from glibc's strerror(3).
function describeErrno(errno: number, code: string): string {
  if (code === 'ENOSYS' && errno === 0) return 'not supported on this platform';
  errnoDescriptions ??= (requireLazily('node:util') as typeof import('node:util')).getSystemErrorMap();
  const description = errnoDescriptions.get(-errno)?.[1] ?? fallbackDescriber.describe?.(errno);
  if (!description) return 'unknown error';
  return description.charAt(0).toLowerCase() + description.slice(1);
}
