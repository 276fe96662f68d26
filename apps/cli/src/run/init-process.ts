import { initEntryPath } from '@m-docker/init';
import { type ProcessExit, type StartedProcess, type StdioEntry, scriptArguments, startProcess } from '@m-docker/runtime';
import { close, type NamespaceName, runInNamespaces, SyscallError, socketpair } from '@m-docker/syscalls';

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
  child: StartedProcess;
  pipeFd: number;
  /** Settles when the init (after execve, the command) exits. */
  exited: Promise<ProcessExit>;
  /** The reason Node runs the init although Bun was preferred, for one debug line. */
  fallbackReason: string | undefined;
  /** Closes the CLI's end of the pipe, once the start protocol is over. */
  closePipe(): void;
  /** Kills the init and closes the CLI's end of the pipe. */
  discard(): void;
}

export interface InitOptions {
  /** Whether the CLI's fd 0 is open, so the init can inherit it. */
  stdinOpen: boolean;
  /** The init's fds 0, 1 and 2, when they are not the CLI's own (a detached container's log sockets). */
  stdio?: readonly [StdioEntry, StdioEntry, StdioEntry];
}

/**
 * Spawns the init in new namespaces with one end of a socketpair as its
 * fd 3. The CLI keeps the other end as a plain descriptor rather than a
 * 'pipe' in spawn's stdio: under Bun, such a pipe loads node:net and its
 * streams, about 6 ms of every start, and the CLI reads it synchronously
 * anyway. The init inherits the CLI's stdio and session; it applies -i and
 * -t itself once the config arrives.
 */
export function spawnInit(options: InitOptions, timeline: Timeline): InitProcess {
  const entry = process.env[INIT_PATH_VARIABLE] || initEntryPath();
  const runtime = selectInitRuntime();

  const [pipeFd, initEnd] = socketpair();
  let child: StartedProcess;
  try {
    const start = () =>
      startProcess(runtime.executable, scriptArguments(runtime.runtime, entry), {
        stdio: [...(options.stdio ?? [options.stdinOpen ? 'inherit' : 'ignore', 'inherit', 'inherit']), initEnd],
        // The init gets no environment of the host's; the command's comes in the config.
        env: {},
        // The root, so that no runtime reads configuration from the user's folder.
        cwd: '/',
      });
    child = runInNamespaces(CONTAINER_NAMESPACES, start, (started) => started.kill('SIGKILL'));
  } catch (error) {
    close(pipeFd);
    throw spawnError(error);
  } finally {
    // The init has its own copy now. Without closing this one, the CLI would
    // never see the end of stream that means execve succeeded.
    close(initEnd);
  }
  timeline.mark('init spawned', { pid: child.pid, runtime: describeRuntime(runtime), entry });

  let pipeOpen = true;
  const closePipe = () => {
    if (pipeOpen) close(pipeFd);
    pipeOpen = false;
  };
  return {
    child,
    pipeFd,
    exited: child.exited,
    fallbackReason: runtime.fallbackReason,
    closePipe,
    discard: () => {
      if (!child.hasExited()) child.kill('SIGKILL');
      closePipe();
    },
  };
}

function spawnError(error: unknown): CliError {
  if (SyscallError.isInstance(error) && error.code === 'EPERM') {
    return new CliError(`cannot create namespaces: ${error.message}: run m-docker as root with CAP_SYS_ADMIN`, undefined, {
      cause: error,
    });
  }
  return new CliError(`cannot start the container's init: ${(error as Error).message}`, undefined, { cause: error });
}
