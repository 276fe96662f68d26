import { LOG_LEVELS, type LogLevel } from '@m-docker/log';

import {
  checkCString,
  checkCStringArray,
  checkObjectFields,
  invalidField,
  renderValue,
  type ShapeContext,
} from './shape.js';
import { type MountConfig, type RootConfig, type UserConfig, validateMounts, validateRoot, validateUser } from './root-config.js';

export type { MountConfig, RootConfig, UserConfig };

// The init logs at the CLI's level, so both use the logger's list of levels.
export { LOG_LEVELS, type LogLevel };

/** Container settings that the CLI sends the init: the command, its environment, host name and working directory. */
export interface ContainerConfig {
  /** Container id: 64 lowercase hex characters. */
  id: string;
  /** Command and its arguments. Non-empty, argv[0] non-empty, no NUL in any string. */
  argv: string[];
  /** Environment as `KEY=VALUE` strings. KEY is non-empty and has no '='. No NUL anywhere. */
  env: string[];
  /** Host name in the container's UTS namespace: 1 to 64 bytes of UTF-8, no NUL, no '/'. */
  hostname: string;
  /** Absolute working directory inside the container, no NUL. */
  cwd: string;
  /** Whether the command keeps the standard input it was started with; otherwise it reads /dev/null. */
  interactive: boolean;
  /** Whether the command stays in the caller's session and terminal; otherwise it gets a new session (setsid). */
  terminal: boolean;
  /** The container's own root file system, or null to keep the host's. */
  root: RootConfig | null;
  /** Mounts added below the container's root, in order; empty when `root` is null. */
  mounts: MountConfig[];
  /** The user the command runs as, or null for root. */
  user: UserConfig | null;
  /**
   * The capabilities the command may have, by name (`CAP_CHOWN`): its
   * bounding set, and as root its effective and permitted sets too. A
   * received config without the field gets DEFAULT_CAPABILITIES.
   */
  capabilities: string[];
  logLevel: LogLevel;
}

/**
 * docker's default capabilities (moby's oci/caps/defaults.go, Docker Engine
 * 20.10): what a container keeps without --cap-add, --cap-drop or
 * --privileged, in the order of their numbers. CapBnd 0xa80425fb.
 */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_RAW',
  'CAP_SYS_CHROOT',
  'CAP_MKNOD',
  'CAP_AUDIT_WRITE',
  'CAP_SETFCAP',
] as const;

/** Maximum host name length in bytes that sethostname(2) accepts on Linux (HOST_NAME_MAX). */
export const HOSTNAME_MAX_BYTES = 64;

const CONFIG_FIELDS = [
  'id',
  'argv',
  'env',
  'hostname',
  'cwd',
  'interactive',
  'terminal',
  'root',
  'mounts',
  'user',
  'logLevel',
] as const satisfies readonly (keyof ContainerConfig)[];

// Fields that a config may lack. A sender built before a field existed
// leaves it out, and the receiver fills in its default, so the frame
// version stays 1.
const OPTIONAL_CONFIG_FIELDS = ['capabilities'] as const satisfies readonly (keyof ContainerConfig)[];

const CAPABILITY_NAME_PATTERN = /^CAP_[A-Z0-9_]+$/;

const CONTEXT: ShapeContext = { name: 'config', fieldPrefix: '', code: 'INVALID_CONFIG' };

const CONTAINER_ID_PATTERN = /^[0-9a-f]{64}$/;

/**
 * Validates a parsed config and returns a copy with exactly the config fields.
 * Throws INVALID_CONFIG on the first problem, with a message that names the
 * field, the array index and a short rendering of the bad value, such as
 * `env[3] "=x" has an empty key (expected KEY=VALUE)`. Unknown and missing
 * fields are rejected. No size limit applies here beyond the frame limit.
 */
export function validateConfig(value: unknown): ContainerConfig {
  const fields = checkObjectFields(value, CONTEXT, CONFIG_FIELDS, OPTIONAL_CONFIG_FIELDS);

  return {
    id: validateId(fields.id),
    argv: validateArgv(fields.argv),
    env: validateEnv(fields.env),
    hostname: validateHostname(fields.hostname),
    cwd: validateCwd(fields.cwd),
    interactive: validateBoolean(fields.interactive, 'interactive'),
    terminal: validateBoolean(fields.terminal, 'terminal'),
    root: validateRoot(fields.root, CONTEXT),
    mounts: validateMounts(fields.mounts, CONTEXT),
    user: validateUser(fields.user, CONTEXT),
    capabilities: Object.hasOwn(fields, 'capabilities') ? validateCapabilities(fields.capabilities) : [...DEFAULT_CAPABILITIES],
    logLevel: validateLogLevel(fields.logLevel),
  };
}

function validateId(value: unknown): string {
  const id = checkCString(value, CONTEXT, 'id');
  if (!CONTAINER_ID_PATTERN.test(id)) {
    throw invalidField(CONTEXT, 'id', `${renderValue(id)} must be 64 lowercase hex characters`);
  }
  return id;
}

function validateArgv(value: unknown): string[] {
  const argv = checkCStringArray(value, CONTEXT, 'argv');
  if (argv.length === 0) {
    throw invalidField(CONTEXT, 'argv', 'must not be empty (expected at least the program to run)');
  }
  if (argv[0] === '') {
    throw invalidField(CONTEXT, 'argv[0]', '"" must not be empty (expected the program to run)');
  }
  return argv;
}

function validateEnv(value: unknown): string[] {
  const env = checkCStringArray(value, CONTEXT, 'env');

  env.forEach((entry, index) => {
    const field = `env[${index}]`;
    const separator = entry.indexOf('=');

    if (separator === -1) {
      throw invalidField(CONTEXT, field, `${renderValue(entry)} has no '=' (expected KEY=VALUE)`);
    }
    if (separator === 0) {
      throw invalidField(CONTEXT, field, `${renderValue(entry)} has an empty key (expected KEY=VALUE)`);
    }
  });
  return env;
}

function validateHostname(value: unknown): string {
  const hostname = checkCString(value, CONTEXT, 'hostname');
  const bytes = Buffer.byteLength(hostname, 'utf8');

  if (bytes === 0 || bytes > HOSTNAME_MAX_BYTES) {
    throw invalidField(
      CONTEXT,
      'hostname',
      `${renderValue(hostname)} has ${bytes} bytes (expected 1 to ${HOSTNAME_MAX_BYTES})`,
    );
  }
  if (hostname.includes('/')) {
    throw invalidField(CONTEXT, 'hostname', `${renderValue(hostname)} contains '/'`);
  }
  return hostname;
}

function validateCwd(value: unknown): string {
  const cwd = checkCString(value, CONTEXT, 'cwd');
  if (!cwd.startsWith('/')) {
    throw invalidField(CONTEXT, 'cwd', `${renderValue(cwd)} must be an absolute path (starting with '/')`);
  }
  return cwd;
}

function validateBoolean(value: unknown, field: 'interactive' | 'terminal'): boolean {
  if (typeof value !== 'boolean') {
    throw invalidField(CONTEXT, field, `${renderValue(value)} must be true or false`);
  }
  return value;
}

// Names are checked for their form only. The init has the table of
// capabilities and rejects a name that is not in it.
function validateCapabilities(value: unknown): string[] {
  const names = checkCStringArray(value, CONTEXT, 'capabilities');
  names.forEach((name, index) => {
    const field = `capabilities[${index}]`;
    if (!CAPABILITY_NAME_PATTERN.test(name)) {
      throw invalidField(CONTEXT, field, `${renderValue(name)} must be a capability name such as CAP_CHOWN`);
    }
    if (names.indexOf(name) !== index) {
      throw invalidField(CONTEXT, field, `${renderValue(name)} is listed twice`);
    }
  });
  return names;
}

function validateLogLevel(value: unknown): LogLevel {
  const level = LOG_LEVELS.find((candidate) => candidate === value);
  if (level === undefined) {
    throw invalidField(CONTEXT, 'logLevel', `${renderValue(value)} must be one of ${LOG_LEVELS.join(', ')}`);
  }
  return level;
}
