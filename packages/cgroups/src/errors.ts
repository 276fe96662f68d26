/**
 * Machine-readable reason for a {@link CgroupError}. Callers branch on the
 * code, and the message is for people.
 */
export type CgroupErrorCode =
  /** An option value that docker would reject. The message names the option, the value and what is accepted. */
  | 'INVALID_VALUE'
  /** A controller or interface file that an option needs is not available in this cgroup hierarchy. */
  | 'CONTROLLER_MISSING'
  /** cgroup v2 cannot enable a controller for the children of a non-root cgroup that contains processes. */
  | 'INTERNAL_PROCESS'
  /** mkdir(2) or a write to a cgroup file failed. `path` and `value` name the file and the value. */
  | 'WRITE_FAILED'
  /** The container's cgroup directory exists already, so it may belong to another container. */
  | 'ALREADY_EXISTS'
  /** rmdir(2) of a cgroup failed, usually because processes are still in it. */
  | 'REMOVE_FAILED'
  /** /proc/self/mountinfo or /proc/self/cgroup has no usable cgroup mount or entry. */
  | 'LAYOUT_UNKNOWN';

/** Structured details of a {@link CgroupError}. Each code sets the fields that apply to it. */
export interface CgroupErrorDetails {
  /** The cgroup file or directory involved. */
  path?: string;
  /** docker's name of the option involved, such as `--memory`. */
  option?: string;
  /** The value that was rejected or that failed to be written. */
  value?: string;
  /** The underlying error, such as the errno error from `fs`. */
  cause?: unknown;
}

// Symbol.for gives the same symbol in every copy of this package that one
// process loads, so isInstance works where instanceof fails across copies.
const CGROUP_ERROR_BRAND = Symbol.for('@m-docker/cgroups/CgroupError');

/** Error for invalid resource options and for every failed cgroup operation. */
export class CgroupError extends Error {
  override readonly name = 'CgroupError';
  readonly code: CgroupErrorCode;
  declare readonly path?: string;
  declare readonly option?: string;
  declare readonly value?: string;

  constructor(code: CgroupErrorCode, message: string, details: CgroupErrorDetails = {}) {
    super(message, 'cause' in details ? { cause: details.cause } : undefined);
    this.code = code;
    Object.defineProperty(this, CGROUP_ERROR_BRAND, { value: true });

    if (details.path !== undefined) this.path = details.path;
    if (details.option !== undefined) this.option = details.option;
    if (details.value !== undefined) this.value = details.value;
  }

  /** Checks the brand, so errors from another copy of this package also match. */
  static isInstance(value: unknown): value is CgroupError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[CGROUP_ERROR_BRAND] === true
    );
  }
}

/** Returns the errno name of a Node fs error, such as `EBUSY`, or undefined for any other value. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Renders Node's `EINVAL: invalid argument, write` as `EINVAL (invalid argument)`. */
export function describeFsError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /^([A-Z0-9]+): ([^,]+)/.exec(message);
  if (match) return `${match[1]} (${match[2]})`;
  return errnoCode(error) ?? message;
}
