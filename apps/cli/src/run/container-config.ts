import { type ContainerConfig, DEFAULT_MAX_FRAME_SIZE, validateConfig, WireFormatError } from '@m-docker/ipc';
import type { LogLevel } from '@m-docker/log';

import { CliError, EXIT_STATUS } from '../cli-error.js';
import { buildEnvironment } from './environment.js';
import type { CgroupRequest } from './resource-options.js';

/** The request of one `m-docker run`, after option parsing. */
export interface RunRequest {
  command: string;
  args: string[];
  interactive: boolean;
  tty: boolean;
  hostname?: string;
  env: string[];
  envFiles: string[];
  workdir: string;
  logLevel: LogLevel;
  /** The parent cgroup and the resource limits. */
  cgroup: CgroupRequest;
}

/** Checks what needs no process and no file, so that bad input creates nothing. */
export function validateRequest(request: RunRequest, hostname: string): void {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,63})$/.test(hostname)) {
    throw new CliError(
      `invalid hostname ${JSON.stringify(hostname)}: use 1 to 64 letters, digits, '-' and '.', starting with a letter or digit`,
    );
  }
  if (!request.workdir.startsWith('/')) {
    throw new CliError(`invalid working directory ${JSON.stringify(request.workdir)}: -w needs an absolute path`);
  }
  if (request.command === '') {
    throw new CliError('invalid command "": the command name is empty: give the program to run after the options');
  }
}

/** Builds and validates the config the init receives; env files are read here. */
export function buildConfig(request: RunRequest, id: string, hostname: string): ContainerConfig {
  const env = buildEnvironment({
    hostname,
    tty: request.tty,
    env: request.env,
    envFiles: request.envFiles,
    hostEnv: process.env,
  });
  const config = {
    id,
    argv: [request.command, ...request.args],
    env,
    hostname,
    cwd: request.workdir,
    interactive: request.interactive,
    terminal: request.tty,
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
