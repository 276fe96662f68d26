import type { ChildProcess } from 'node:child_process';

import { initEntryPath } from '@m-docker/init';
import type { Logger } from '@m-docker/log';
import { scriptArguments } from '@m-docker/runtime';
import { close, type NamespaceName, SyscallError, socketpair, spawnInNamespaces } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';
import { describeRuntime, selectInitRuntime } from '../runtime/init-runtime.js';
import type { Timeline } from './timeline.js';

/** The namespaces every container gets. */
export const CONTAINER_NAMESPACES: readonly NamespaceName[] = ['uts', 'ipc', 'net', 'mnt', 'pid'];

/**
 * Environment variable naming another init script to run in place of the
 * bundled one, for debugging the protocol and for tests that need an init
 * that misbehaves.
 */
export const INIT_PATH_VARIABLE = 'M_DOCKER_INIT_PATH';

/** The container's init: its process and the CLI's end of the socketpair whose other end is the init's fd 3. */
export interface InitProcess {
  child: ChildProcess;
  pipeFd: number;
}

export interface InitOptions {
  interactive: boolean;
  tty: boolean;
}

/**
 * Spawns the init in new namespaces with one end of a socketpair as its
 * fd 3. The CLI keeps the other end as a plain descriptor rather than a
 * 'pipe' in spawn's stdio: under Bun, such a pipe loads node:net and its
 * streams, about 6 ms of every start, and the CLI reads it synchronously
 * anyway.
 */
export function spawnInit(options: InitOptions, log: Logger, timeline: Timeline): InitProcess {
  const entry = process.env[INIT_PATH_VARIABLE] || initEntryPath();
  const runtime = selectInitRuntime();
  if (runtime.fallbackReason !== undefined) {
    log.debug('Bun is unavailable, so Node runs m-docker', { reason: runtime.fallbackReason });
  }

  const [pipeFd, initEnd] = socketpair();
  let child: ChildProcess;
  try {
    child = spawnInNamespaces(runtime.executable, scriptArguments(runtime.runtime, entry), {
      namespaces: CONTAINER_NAMESPACES,
      stdio: [options.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit', initEnd],
      // The init gets no environment of the host's; the command's comes in the config.
      env: {},
      // The root, so that no runtime reads configuration from the user's folder.
      cwd: '/',
      // Without -t the container gets its own session, as with docker, so
      // the terminal's Ctrl-C reaches it only through the CLI's forwarding.
      detached: !options.tty,
    });
  } catch (error) {
    close(pipeFd);
    throw spawnError(error);
  } finally {
    // The init has its own copy now. Without closing this one, the CLI would
    // never see the end of stream that means execve succeeded.
    close(initEnd);
  }

  timeline.mark('init spawned', { pid: child.pid, runtime: describeRuntime(runtime), entry });
  return { child, pipeFd };
}

function spawnError(error: unknown): CliError {
  if (SyscallError.isInstance(error) && error.code === 'EPERM') {
    return new CliError(`cannot create namespaces: ${error.message}: run m-docker as root with CAP_SYS_ADMIN`, undefined, {
      cause: error,
    });
  }
  return new CliError(`cannot start the container's init: ${(error as Error).message}`, undefined, { cause: error });
}

/** Waits for the init (and after execve, the command) to exit. */
export function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => {
      if (child.pid === undefined) {
        reject(new CliError(`cannot start the container's init: ${error.message}`, undefined, { cause: error }));
      }
    });
  });
}
