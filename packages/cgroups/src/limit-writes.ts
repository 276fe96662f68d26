import { join } from 'node:path';
import { cgroupFileExists, writeCgroupFile } from './cgroupfs.js';
import { CgroupError, describeFsError } from './errors.js';
import { OPTION_NAMES, type ResourceLimits } from './limits.js';

/** One value to write to an interface file of the container's cgroup. */
export interface LimitWrite {
  /** The v1 controller whose directory contains the file, or `''` on v2. */
  controller: string;
  file: string;
  value: string;
  field: keyof ResourceLimits;
  /** Whether a missing file is skipped without error: true for docker's default swap limit and for unlimited swap. */
  skipIfMissing?: boolean;
  /** Advice for a missing file, appended to the error message. */
  hint?: string;
}

/**
 * Writes each value in order into the directory of its controller. A file
 * that does not exist throws CONTROLLER_MISSING (or is skipped, see
 * `skipIfMissing`), and a failed write throws WRITE_FAILED.
 */
export function applyLimitWrites(writes: readonly LimitWrite[], paths: Readonly<Record<string, string>>): void {
  for (const write of writes) {
    const option = OPTION_NAMES[write.field];
    const directory = paths[write.controller];
    const path = directory === undefined ? undefined : join(directory, write.file);

    if (path === undefined || !cgroupFileExists(path)) {
      if (write.skipIfMissing) continue;
      const where = path ?? `the ${write.controller} hierarchy`;
      const hint = write.hint ? `: ${write.hint}` : '';
      throw new CgroupError('CONTROLLER_MISSING', `${option} needs ${write.file}, which does not exist in ${where}${hint}`, {
        option,
        value: write.value,
        ...(path === undefined ? {} : { path }),
      });
    }

    writeOrThrow(path, write.value, option);
  }
}

/** Writes one cgroup file, turning a failure into WRITE_FAILED that names the file, the value and the option. */
export function writeOrThrow(path: string, value: string, option?: string): void {
  try {
    writeCgroupFile(path, value);
  } catch (error) {
    const purpose = option ? ` for ${option}` : '';
    throw new CgroupError('WRITE_FAILED', `writing "${value}" to ${path}${purpose} failed: ${describeFsError(error)}`, {
      path,
      value,
      ...(option ? { option } : {}),
      cause: error,
    });
  }
}
