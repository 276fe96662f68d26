import { type ContainerTerminal, giveTerminalTo, openTerminal, ResolveError, resolveExecutable } from '@m-docker/init';
import type { Logger } from '@m-docker/log';
import { type ChildExit, close, reapChild, runInContainer, SyscallError, spawnOnTerminal } from '@m-docker/syscalls';

import { CliError, EXIT_STATUS } from '../cli-error.js';
import { forwardSignals } from '../run/signals.js';
import { TerminalRelay } from '../run/terminal.js';
import { type CgroupSwitch, forkRefused } from './container-cgroup-join.js';
import type { ExecRequest, ExecSettings } from './exec-container.js';

// `m-docker exec -t`: the command leads a new session with a pty of the
// container's own devpts as its controlling terminal, as runc gives one.
// The CLI's main thread:
//
//   1. enters the container's mount namespace (runInContainer), looks the
//      command up in the container's PATH, opens the container's
//      /dev/ptmx, unlocks the slave and gives it to the command's user
//   2. enters all of the container's namespaces and starts the command
//      with spawnOnTerminal, which opens the slave by its path in the
//      child after setsid(2), so that it becomes the controlling terminal
//
// The second step runs as little JavaScript as it can, because the runtime
// cannot create threads while the thread is in the container's PID
// namespace (see spawn-in-container.ts in @m-docker/syscalls).
//
// The master stays with the CLI, which copies between it and its own
// stdio as `run -t` does (TerminalRelay). The runtime did not start the
// command and does not watch it, so the CLI polls for its exit.

/** How often the CLI checks whether the command has exited, in ms. */
const EXIT_POLL_MS = 10;

/**
 * How long the CLI still copies output after the command exited, in ms. A
 * process that the command left in the background may keep the slave
 * open, and then the master never reports the end of output: the CLI
 * hangs the pty up instead. Normally the output ends within milliseconds.
 * The margin is for a loaded machine, where Bun runs two fs calls at a
 * time, so the master's read may wait behind others.
 */
const OUTPUT_AFTER_EXIT_MS = 2000;

/** Runs `exec -t`: returns the command's exit status, with run's statuses for failures. */
export async function execOnTerminal(pidfd: number, cgroups: CgroupSwitch, request: ExecRequest, settings: ExecSettings, log: Logger): Promise<number> {
  const command = request.argv[0] as string;
  const relay = new TerminalRelay({ interactive: request.interactive, log });
  let started: { pid: number; master: number };
  try {
    const prepared = runInContainer(pidfd, () => prepareTerminal(request, settings), (ready) => {
      close(ready.terminal.master);
      close(ready.terminal.slave);
    }, {
      namespaces: ['mnt'],
      cwd: settings.cwd,
    });
    started = runInContainer(pidfd, () => startOnTerminal(prepared, request, settings), (child) => process.kill(child.pid, 'SIGKILL'), {
      cwd: settings.cwd,
      aroundStart: { before: cgroups.enter, after: cgroups.leave },
      childCapabilities: settings.capabilities,
    });
  } catch (error) {
    relay.close();
    throw startFailure(command, error);
  }

  const stopForwarding = forwardSignals({ pid: started.pid, kill: (signal) => process.kill(started.pid, signal) }, log);
  try {
    relay.attach(started.master);
    relay.start();
    const exit = await waitForExit(started.pid);
    const drained = await Promise.race([relay.drained.then(() => true), delay(OUTPUT_AFTER_EXIT_MS).then(() => false)]);
    if (!drained) {
      log.debug('the pty is still open after the command exited; hanging it up', { pid: started.pid });
      relay.hangUp();
    }
    return exit.signal === null ? exit.code : 128 + exit.signal;
  } finally {
    stopForwarding();
    relay.close();
  }
}

/** The command's program and its pty, found and opened in the container's root. */
interface PreparedTerminal {
  path: string;
  terminal: ContainerTerminal;
}

// Runs with the thread in the container's mount namespace: paths resolve
// in its root.
function prepareTerminal(request: ExecRequest, settings: ExecSettings): PreparedTerminal {
  const path = resolveExecutable(request.argv[0] as string, settings.env);
  const terminal = openTerminal();
  try {
    if (settings.uid !== 0) giveTerminalTo(terminal, settings.uid);
  } catch (error) {
    close(terminal.master);
    close(terminal.slave);
    throw error;
  }
  return { path, terminal };
}

// Runs with the thread in all of the container's namespaces, the PID
// namespace included, so it does no more than the spawn. The CLI's copy of
// the slave is closed either way, so that the master reports the end of
// output once the container's processes close theirs.
function startOnTerminal(prepared: PreparedTerminal, request: ExecRequest, settings: ExecSettings): { pid: number; master: number } {
  const { terminal } = prepared;
  try {
    const pid = spawnOnTerminal({
      path: prepared.path,
      argv: request.argv,
      env: settings.env,
      terminal: terminal.path,
      user: { uid: settings.uid, gid: settings.gid, groups: settings.groups },
    });
    return { pid, master: terminal.master };
  } catch (error) {
    close(terminal.master);
    throw error;
  } finally {
    close(terminal.slave);
  }
}

function startFailure(command: string, error: unknown): CliError {
  const quoted = JSON.stringify(command);
  if (error instanceof ResolveError) {
    if (error.code === 'ENOENT') {
      return new CliError(`cannot run ${quoted}: executable file not found in the container: check the command name and the container's PATH`, EXIT_STATUS.notFound);
    }
    return new CliError(`cannot run ${quoted}: ${error.message}: check that it is an executable file`, EXIT_STATUS.cannotExecute);
  }
  if (SyscallError.isInstance(error) && error.syscall === 'posix_spawn') {
    if (error.code === 'EAGAIN') return new CliError(forkRefused(command), undefined, { cause: error });
    if (error.code === 'ENOENT') {
      return new CliError(`cannot run ${quoted}: ${error.message}: the file exists, so the interpreter named on its '#!' line is missing`, EXIT_STATUS.notFound);
    }
    return new CliError(`cannot run ${quoted}: ${error.message}: check that it is an executable file`, EXIT_STATUS.cannotExecute, { cause: error });
  }
  return new CliError(`cannot exec in the container: ${(error as Error).message}`, undefined, { cause: error });
}

// Any error of waitpid(2), such as ECHILD, ends the wait as a failure.
function waitForExit(pid: number): Promise<ChildExit> {
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

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
