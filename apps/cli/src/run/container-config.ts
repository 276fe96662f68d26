import {
  type ContainerConfig,
  DEFAULT_MAX_FRAME_SIZE,
  type MountConfig,
  type RootConfig,
  validateConfig,
  WireFormatError,
} from '@m-docker/ipc';
import type { LogLevel } from '@m-docker/log';

import { CliError, EXIT_STATUS } from '../cli-error.js';
import { type CapabilityOptions, containerCapabilities } from './capability-options.js';
import { findTini, withInit } from './docker-init.js';
import { buildEnvironment } from './environment.js';
import type { CgroupRequest } from './resource-options.js';

/** The request of one `m-docker run`, after option parsing. */
export interface RunRequest {
  /** COMMAND, or undefined to run the image's command. */
  command: string | undefined;
  args: string[];
  interactive: boolean;
  tty: boolean;
  hostname?: string;
  /** --name: unique in the store; generated when undefined. */
  name?: string;
  /** -d: run in the background under a monitor process and print the id. */
  detach: boolean;
  env: string[];
  envFiles: string[];
  workdir?: string;
  image?: string;
  rootfs?: string;
  entrypoint?: string;
  user?: string;
  volumes: string[];
  tmpfs: string[];
  shmSize?: string;
  readOnly: boolean;
  remove: boolean;
  /** Whether tini runs as PID 1 and starts COMMAND (--init). */
  init: boolean;
  /** The store's root directory. */
  root: string;
  logLevel: LogLevel;
  /** The parent cgroup and the resource limits. */
  cgroup: CgroupRequest;
  /** --cap-add, --cap-drop and --privileged. */
  capabilities: CapabilityOptions;
}

/** The parts of the config that the container's root file system sets; on the host's root they are the defaults. */
export interface RootSettings {
  argv: string[];
  /** Variables from the image, applied before --env-file and -e. */
  imageEnv: string[];
  cwd: string;
  root: RootConfig | null;
  mounts: MountConfig[];
  user: string | undefined;
}

/** Options that need a root file system of the container's own. */
const ROOT_OPTIONS = [
  ['volumes', '-v'],
  ['tmpfs', '--tmpfs'],
  ['readOnly', '--read-only'],
  ['shmSize', '--shm-size'],
  ['entrypoint', '--entrypoint'],
] as const;

/** Checks what needs no process and no file, so that bad input creates nothing. */
export function validateRequest(request: RunRequest, hostname: string): void {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,63})$/.test(hostname)) {
    throw new CliError(
      `invalid hostname ${JSON.stringify(hostname)}: use 1 to 64 letters, digits, '-' and '.', starting with a letter or digit`,
    );
  }
  if (request.workdir !== undefined && !request.workdir.startsWith('/')) {
    throw new CliError(`invalid working directory ${JSON.stringify(request.workdir)}: -w needs an absolute path`);
  }
  if (request.command === '') {
    throw new CliError('invalid command "": the command name is empty: give the program to run after the options');
  }
  for (const [value, option] of [
    [request.rootfs, '--rootfs'],
    [request.image, '--image'],
    [request.user, '-u'],
  ] as const) {
    if (value === '') throw new CliError(`invalid ${option} "": the value is empty: give a value or leave ${option} out`);
  }
  if (request.image !== undefined && request.rootfs !== undefined) {
    throw new CliError('--image and --rootfs both choose the root file system: give only one of them');
  }
  if (request.image === undefined && request.rootfs === undefined) {
    for (const [field, option] of ROOT_OPTIONS) {
      const value = request[field];
      if (value === undefined || value === false || (Array.isArray(value) && value.length === 0)) continue;
      throw new CliError(`${option} needs a root file system of the container's own: add --image NAME or --rootfs DIR`);
    }
  }
}

/** Returns the settings of a run on the host's root file system. */
export function hostRootSettings(request: RunRequest): RootSettings {
  let argv = [request.command as string, ...request.args];
  if (request.init) argv = withInit(findTini(process.env, false), argv);
  return {
    argv,
    imageEnv: [],
    cwd: request.workdir ?? '/',
    root: null,
    mounts: [],
    user: request.user,
  };
}

/** Builds and validates the config the init receives; env files are read here. */
export function buildConfig(request: RunRequest, id: string, hostname: string, settings: RootSettings): ContainerConfig {
  const env = buildEnvironment({
    hostname,
    tty: request.tty,
    imageEnv: settings.imageEnv,
    env: request.env,
    envFiles: request.envFiles,
    hostEnv: process.env,
    defaultHome: false,
  });
  // HOME=/root comes last unless set, as docker and runc do; with a user,
  // the init replaces it with the user's home directory.
  const homeGiven = env.some((entry) => entry.startsWith('HOME='));
  if (!homeGiven) env.push('HOME=/root');
  const config = {
    id,
    argv: settings.argv,
    env,
    hostname,
    cwd: settings.cwd,
    interactive: request.interactive,
    terminal: request.tty,
    root: settings.root,
    mounts: settings.mounts,
    user: settings.user === undefined ? null : { spec: settings.user, setHome: !homeGiven },
    capabilities: containerCapabilities(request.capabilities),
    logLevel: request.logLevel,
  };
  checkSize(config);
  try {
    return validateConfig(config);
  } catch (error) {
    if (WireFormatError.isInstance(error)) throw new CliError(`invalid container configuration: ${error.message}`);
    throw error;
  }
}

// execve(2) takes at most ARG_MAX bytes (2 MiB with the default 8 MiB stack),
// far below the frame limit, so a config over the limit cannot run anyway.
function checkSize(config: ContainerConfig): void {
  let bytes = 0;
  for (const item of [...config.argv, ...config.env]) bytes += Buffer.byteLength(item) + 1;
  if (bytes > DEFAULT_MAX_FRAME_SIZE) {
    throw new CliError(
      `cannot run ${JSON.stringify(config.argv[0])}: argument list too long (${bytes} bytes of arguments and environment)`,
      EXIT_STATUS.cannotExecute,
    );
  }
}
