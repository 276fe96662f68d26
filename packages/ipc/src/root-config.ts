import {
  checkCString,
  checkCStringArray,
  checkObjectFields,
  describeType,
  invalidField,
  renderValue,
  type ShapeContext,
} from './shape.js';

/**
 * The container's own root file system: an overlayfs that the init mounts
 * on `target`, in the container's mount namespace, and then makes its root
 * with pivot_root(2).
 */
export interface RootConfig {
  /** Empty directory on the host where the init mounts the overlay. Absolute. */
  target: string;
  /** overlayfs lower directories, top-most first as `lowerdir=` takes them: the image's layers or a --rootfs directory. */
  lowerDirs: string[];
  /** overlayfs upper directory: the container's writable layer. Absolute. */
  upperDir: string;
  /** overlayfs work directory, empty, on the same file system as `upperDir`. Absolute. */
  workDir: string;
  /** Whether the root is mounted read-only once every mount is in place (--read-only). */
  readonly: boolean;
  /** Size of the tmpfs at /dev/shm in bytes, as --shm-size sets it. */
  shmSize: number;
}

/** One mount that the init adds below the container's root, in order. */
export interface MountConfig {
  /** `bind` for a host path (volumes, generated /etc files) or `tmpfs`. */
  type: 'bind' | 'tmpfs';
  /** Absolute host path for `bind`; `tmpfs` for `tmpfs`. */
  source: string;
  /** Absolute path inside the container, resolved inside its root. */
  destination: string;
  readonly: boolean;
  /**
   * Options for `tmpfs`, such as `noexec,nosuid,size=65536k,mode=1777`:
   * the words noexec, nosuid and nodev are mount flags, the rest is mount(2)
   * data. '' for `bind`.
   */
  data: string;
}

/** The user the command runs as, as `-u` gives it, resolved by the init from the container's /etc/passwd and /etc/group. */
export interface UserConfig {
  /** `USER`, `UID`, `USER:GROUP` or `UID:GID`. */
  spec: string;
  /** Whether the init replaces HOME with the user's home directory, because no HOME was given. */
  setHome: boolean;
}

const ROOT_FIELDS = ['target', 'lowerDirs', 'upperDir', 'workDir', 'readonly', 'shmSize'] as const;
const MOUNT_FIELDS = ['type', 'source', 'destination', 'readonly', 'data'] as const;
const USER_FIELDS = ['spec', 'setHome'] as const;
const MOUNT_TYPES = ['bind', 'tmpfs'] as const;

/** Checks the `root` field: null for the host's root file system, or a RootConfig. */
export function validateRoot(value: unknown, context: ShapeContext): RootConfig | null {
  if (value === null) return null;
  const rootContext = { ...context, name: 'root', fieldPrefix: 'root.' };
  const fields = checkObjectFields(value, rootContext, ROOT_FIELDS);

  const lowerDirs = checkCStringArray(fields.lowerDirs, context, 'root.lowerDirs').map((dir, index) =>
    checkAbsolute(dir, context, `root.lowerDirs[${index}]`),
  );
  if (lowerDirs.length === 0) {
    throw invalidField(context, 'root.lowerDirs', 'must not be empty (expected at least one lower directory)');
  }

  return {
    target: checkAbsolute(fields.target, context, 'root.target'),
    lowerDirs,
    upperDir: checkAbsolute(fields.upperDir, context, 'root.upperDir'),
    workDir: checkAbsolute(fields.workDir, context, 'root.workDir'),
    readonly: checkBoolean(fields.readonly, context, 'root.readonly'),
    shmSize: checkSize(fields.shmSize, context, 'root.shmSize'),
  };
}

/** Checks the `mounts` field, an array of MountConfig. */
export function validateMounts(value: unknown, context: ShapeContext): MountConfig[] {
  if (!Array.isArray(value)) {
    throw invalidField(context, 'mounts', `must be an array, got ${describeType(value)}`);
  }
  return value.map((element, index) => validateMount(element, context, `mounts[${index}]`));
}

/** Checks the `user` field: null for root, or a UserConfig. */
export function validateUser(value: unknown, context: ShapeContext): UserConfig | null {
  if (value === null) return null;
  const fields = checkObjectFields(value, { ...context, name: 'user', fieldPrefix: 'user.' }, USER_FIELDS);
  const spec = checkCString(fields.spec, context, 'user.spec');
  if (spec === '') throw invalidField(context, 'user.spec', 'must not be empty (expected USER or UID, optionally :GROUP)');
  return { spec, setHome: checkBoolean(fields.setHome, context, 'user.setHome') };
}

function validateMount(value: unknown, context: ShapeContext, field: string): MountConfig {
  const fields = checkObjectFields(value, { ...context, name: field, fieldPrefix: `${field}.` }, MOUNT_FIELDS);
  const type = MOUNT_TYPES.find((candidate) => candidate === fields.type);
  if (type === undefined) {
    throw invalidField(context, `${field}.type`, `${renderValue(fields.type)} must be one of ${MOUNT_TYPES.join(', ')}`);
  }

  const source = checkCString(fields.source, context, `${field}.source`);
  if (type === 'bind') checkAbsolute(source, context, `${field}.source`);
  return {
    type,
    source,
    destination: checkAbsolute(fields.destination, context, `${field}.destination`),
    readonly: checkBoolean(fields.readonly, context, `${field}.readonly`),
    data: checkCString(fields.data, context, `${field}.data`),
  };
}

function checkAbsolute(value: unknown, context: ShapeContext, field: string): string {
  const path = checkCString(value, context, field);
  if (!path.startsWith('/')) {
    throw invalidField(context, field, `${renderValue(path)} must be an absolute path (starting with '/')`);
  }
  return path;
}

function checkBoolean(value: unknown, context: ShapeContext, field: string): boolean {
  if (typeof value !== 'boolean') throw invalidField(context, field, `${renderValue(value)} must be true or false`);
  return value;
}

function checkSize(value: unknown, context: ShapeContext, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw invalidField(context, field, `${renderValue(value)} must be a positive whole number of bytes`);
  }
  return value;
}
