import { type ContainerTerminal, giveTerminalTo, openTerminal, ResolveError, resolveExecutable } from '@m-docker/init';
import { type ChildExit, close, prepareSpawn, reapChild, runInContainer, type SpawnOutcome, SyscallError } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';
import { errorFromInitFailure } from '../run/exit-status.js';
import { type CgroupSwitch, forkRefused } from './container-cgroup-join.js';
import type { ExecRequest, ExecSettings } from './exec-container.js';

// Starting an exec'd command takes two visits of the CLI's main thread to
// the container (runInContainer of @m-docker/syscalls):
//
//   1. into the mount namespace only: the command is looked up in the
//      container's PATH, and with -t a pty is opened from the container's
//      /dev/ptmx and given to the command's user
//   2. into every namespace, the PID namespace last: a spawn prepared
//      beforehand (prepareSpawn) starts the command with glibc's
//      posix_spawn, with the thread in the container's cgroups for the
//      fork alone
//
// The second visit runs as little JavaScript as it can. While the thread
// is in the container's PID namespace, the kernel refuses to create
// threads, and while it is in the container's cgroups, a thread that the
// runtime starts counts against the container's pids limit. A command that
// forks at once also finds the thread still counted for a moment, so the
// thread leaves right after posix_spawn returns.

/** How often the CLI checks whether the command has exited, in ms. */
const EXIT_POLL_MS = 10;

/** The command's program and, with -t, its pty, found and opened in the container's root. */
export interface PreparedCommand {
  path: string;
  terminal?: ContainerTerminal;
}

/** Looks the command up and, with -t, opens its pty, with the thread in the container's mount namespace. */
export function prepareCommand(pidfd: number, request: ExecRequest, settings: ExecSettings): PreparedCommand {
  try {
    return runInContainer(pidfd, () => findAndOpen(request, settings), closeTerminalOf, { namespaces: ['mnt'], cwd: settings.cwd });
  } catch (error) {
    throw startFailure(request, error);
  }
}

/**
 * Starts the prepared command in all of the container's namespaces and
 * cgroups and returns its pid. Closes the CLI's copy of the pty's slave
 * either way; the master stays with the caller.
 */
export function startCommand(pidfd: number, cgroups: CgroupSwitch, prepared: PreparedCommand, request: ExecRequest, settings: ExecSettings): number {
  const { terminal } = prepared;
  try {
    const spawn = prepareSpawn({
      path: prepared.path,
      argv: request.argv,
      env: settings.env,
      stdio: terminal ? { terminal: terminal.path } : { descriptors: [request.interactive ? 0 : null, 1, 2] },
      user: { uid: settings.uid, gid: settings.gid, groups: settings.groups },
    });
    try {
      const outcome = runInContainer(pidfd, spawn.start, killStarted, {
        cwd: settings.cwd,
        aroundStart: { before: cgroups.enter, after: cgroups.leave },
        childCapabilities: settings.capabilities,
      });
      return spawn.pidOf(outcome);
    } finally {
      spawn.release();
    }
  } catch (error) {
    throw startFailure(request, error);
  } finally {
    if (terminal !== undefined) close(terminal.slave);
  }
}

// A child that started before the thread could not go back is ended.
function killStarted(outcome: SpawnOutcome): void {
  if (outcome.pid !== undefined) process.kill(outcome.pid, 'SIGKILL');
}

/** Polls until the command `pid`, a child of this process, has exited; any error of waitpid(2) ends the wait as a failure. */
export function waitForExit(pid: number): Promise<ChildExit> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      try {
        const exit = reapChild(pid);
        if (exit === undefined) return;
        clearInterval(timer);
        resolve(exit);
      } catch (error) {
        clearInterval(timer);
        reject(error);
      }
    }, EXIT_POLL_MS);
  });
}

// Runs with the thread in the container's mount namespace: paths resolve
// in its root.
function findAndOpen(request: ExecRequest, settings: ExecSettings): PreparedCommand {
  const path = resolveExecutable(request.argv[0] as string, settings.env);
  if (!request.tty) return { path };

  const terminal = openTerminal();
  try {
    if (settings.uid !== 0) giveTerminalTo(terminal, settings.uid);
  } catch (error) {
    closeTerminalOf({ path, terminal });
    throw error;
  }
  return { path, terminal };
}

function closeTerminalOf(prepared: PreparedCommand): void {
  if (prepared.terminal === undefined) return;
  close(prepared.terminal.master);
  close(prepared.terminal.slave);
}

// The failures get run's messages and statuses: 127 for a command that is
// not found, 126 for one that cannot be executed.
function startFailure(request: ExecRequest, error: unknown): CliError {
  const command = request.argv[0] as string;
  if (error instanceof ResolveError) {
    return errorFromInitFailure({ stage: 'resolve', code: error.code, errno: error.errno, message: error.message, path: error.path }, command);
  }
  if (SyscallError.isInstance(error)) {
    if (error.syscall === 'posix_spawn' && error.code === 'EAGAIN') return new CliError(forkRefused(command), undefined, { cause: error });
    if (error.syscall === 'posix_spawn') {
      return errorFromInitFailure({ stage: 'exec', code: error.code, errno: error.errno, message: error.message }, command);
    }
    if (error.syscall === 'chdir') {
      return errorFromInitFailure({ stage: 'chdir', code: error.code, errno: error.errno, message: error.message, path: request.workdir ?? error.path ?? '' }, command);
    }
  }
  return new CliError(`cannot exec in the container: ${(error as Error).message}`, undefined, { cause: error });
}
