import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

import { initEntryPath } from '@m-docker/init';
import {
  type ContainerConfig,
  DEFAULT_MAX_FRAME_SIZE,
  type InitFailure,
  type Message,
  MessageChannel,
  validateConfig,
  WireFormatError,
} from '@m-docker/ipc';
import type { Logger, LogLevel } from '@m-docker/log';
import { scriptArguments } from '@m-docker/runtime';
import { type NamespaceName, SyscallError, spawnInNamespaces } from '@m-docker/syscalls';

import { CliError, EXIT_STATUS } from '../cli-error.js';
import { buildEnvironment } from './environment.js';
import { errorFromInitFailure, statusFromExit } from './exit-status.js';
import { describeRuntime, selectInitRuntime } from '../runtime/init-runtime.js';
import { forwardSignals } from './signals.js';
import { Timeline } from './timeline.js';

/** The namespaces every container gets. */
export const CONTAINER_NAMESPACES: readonly NamespaceName[] = ['uts', 'ipc', 'net', 'mnt', 'pid'];

/** What `m-docker run` was asked to do, after option parsing. */
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
}

// How the parent drives one container (the init's side is in @m-docker/init):
// spawn the init in new namespaces first, so that its start-up overlaps the
// rest of the CLI's work; then send the config, wait for ready, send start,
// and read fd 3 until end of stream (execve succeeded) or an error message.
// Every failure path ends the init with SIGKILL and waits for it, so no
// process is left behind.

/** Runs one container to its end and returns the exit status for the CLI. */
export async function runContainer(request: RunRequest, parentLog: Logger, started: number): Promise<number> {
  requireRoot();
  const id = randomBytes(32).toString('hex');
  const hostname = request.hostname ?? id.slice(0, 12);
  validateRequest(request, hostname);
  const log = parentLog.child({ id: id.slice(0, 12) });
  const timeline = new Timeline(log);
  timeline.mark('cli started', undefined, started);

  const init = spawnInit(request, log, timeline);
  const exited = waitForExit(init);
  const stopForwarding = forwardSignals(init, request.tty, log);
  try {
    const config = buildConfig(request, id, hostname);
    await startContainer(init, config, timeline);
    const { code, signal } = await exited;
    timeline.mark('container exited', { code: code ?? undefined, signal: signal ?? undefined });
    return statusFromExit(code, signal);
  } catch (error) {
    if (init.exitCode === null && init.signalCode === null) init.kill('SIGKILL');
    await exited.catch(() => undefined);
    throw error;
  } finally {
    stopForwarding();
    log.debug(`timeline in ms since the CLI process started: ${timeline.summary()}`);
  }
}

function requireRoot(): void {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new CliError(`m-docker run needs root, but it runs as uid ${uid}: run it as root, for example with sudo`);
  }
}

// Checks that need no process, so that bad input creates nothing.
function validateRequest(request: RunRequest, hostname: string): void {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,63})$/.test(hostname)) {
    throw new CliError(
      `invalid hostname ${JSON.stringify(hostname)}: use 1 to 64 letters, digits, '-' and '.', starting with a letter or digit`,
    );
  }
  if (!request.workdir.startsWith('/')) {
    throw new CliError(`invalid working directory ${JSON.stringify(request.workdir)}: -w needs an absolute path`);
  }
  if (request.command === '') {
    throw new CliError('invalid command "": the command name is empty');
  }
}

/**
 * Environment variable naming another init script to run in place of the
 * bundled one, for debugging the protocol and for tests that need an init
 * that misbehaves.
 */
export const INIT_PATH_VARIABLE = 'M_DOCKER_INIT_PATH';

function spawnInit(request: RunRequest, log: Logger, timeline: Timeline): ChildProcess {
  const entry = process.env[INIT_PATH_VARIABLE] || initEntryPath();
  const runtime = selectInitRuntime();
  if (runtime.fallbackReason !== undefined) {
    log.debug('Bun is unavailable, so Node runs m-docker', { reason: runtime.fallbackReason });
  }

  let init: ChildProcess;
  try {
    init = spawnInNamespaces(runtime.executable, scriptArguments(runtime.runtime, entry), {
      namespaces: CONTAINER_NAMESPACES,
      stdio: [request.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit', 'pipe'],
      // The init gets no environment of the host's; the command's comes in the config.
      env: {},
      // The root, so that no runtime reads configuration from the user's folder.
      cwd: '/',
      // Without -t the container gets its own session, as with docker, so
      // the terminal's Ctrl-C reaches it only through the CLI's forwarding.
      detached: !request.tty,
    });
  } catch (error) {
    if (SyscallError.isInstance(error) && error.code === 'EPERM') {
      throw new CliError(`cannot create namespaces: ${error.message}: run m-docker as root with CAP_SYS_ADMIN`, undefined, {
        cause: error,
      });
    }
    throw new CliError(`cannot start the container's init: ${(error as Error).message}`, undefined, { cause: error });
  }
  timeline.mark('init spawned', { pid: init.pid, runtime: describeRuntime(runtime), entry });
  return init;
}

function buildConfig(request: RunRequest, id: string, hostname: string): ContainerConfig {
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
// far below the frame limit; a config over the limit cannot run anyway.
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

async function startContainer(init: ChildProcess, config: ContainerConfig, timeline: Timeline): Promise<void> {
  const channel = new MessageChannel(init.stdio[3] as Duplex);
  try {
    await sendToInit(channel, { type: 'config', config });
    timeline.mark('config sent');

    const ready = await receiveFromInit(channel, 'ready');
    if (ready.type === 'error') throw errorFromInitFailure(ready.error, config.argv[0] as string);
    timeline.mark('ready received');

    await sendToInit(channel, { type: 'start' });
    timeline.mark('start sent');

    const outcome = await receiveFromInit(channel, 'exec');
    if (outcome.type === 'error') throw errorFromInitFailure(outcome.error, config.argv[0] as string);
    timeline.mark('exec confirmed', { by: 'end of stream on fd 3' });
  } finally {
    channel.close();
  }
}

// A send fails when the init died before it read the message: EPIPE, or
// ECONNRESET when it left data unread.
async function sendToInit(channel: MessageChannel, message: Message): Promise<void> {
  try {
    await channel.send(message);
  } catch (error) {
    throw new CliError(`lost contact with the container's init while sending ${message.type}: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
}

type InitOutcome = { type: 'ready' } | { type: 'exec' } | { type: 'error'; error: InitFailure };

// Returns `expected` once the init confirms it: for 'ready' a ready message,
// for 'exec' the end of stream. An error message or an early end of stream
// becomes the failure to report.
async function receiveFromInit(channel: MessageChannel, expected: 'ready' | 'exec'): Promise<InitOutcome> {
  let message: Message | undefined;
  try {
    message = await channel.receive();
  } catch (error) {
    throw new CliError(`lost contact with the container's init while waiting for ${expected}: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }

  if (message === undefined) {
    if (expected === 'exec') return { type: 'exec' };
    throw new CliError("the container's init exited before it was ready");
  }
  if (message.type === 'error') return message;
  if (message.type === expected) return { type: expected };
  throw new CliError(`unexpected ${message.type} message from the container's init while waiting for ${expected}`);
}

function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => {
      if (child.pid === undefined) reject(new CliError(`cannot start the container's init: ${error.message}`, undefined, { cause: error }));
    });
  });
}
