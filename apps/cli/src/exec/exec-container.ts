import { readFileSync, readlinkSync } from 'node:fs';

import { resolveUser, UserError } from '@m-docker/init';
import type { Logger } from '@m-docker/log';
import { close, pidfdOpen, SyscallError, spawnInContainer } from '@m-docker/syscalls';

import { CliError, EXIT_STATUS, requireRoot } from '../cli-error.js';
import { statusFromExit } from '../run/exit-status.js';
import { execCapabilities } from '../run/capability-options.js';
import { findContainer, isContainerRunning } from '../store/container-commands.js';
import { capabilityOptionsOf } from '../store/containers.js';
import { identityOf } from '../store/process-identity.js';
import { checkTerminalInput } from '../run/terminal.js';
import { FORWARDED_SIGNALS } from '../run/signals.js';
import { type CgroupSwitch, forkRefused, openCgroupSwitch, warnCgroupReturn } from './container-cgroup-join.js';
import { execOnTerminal } from './exec-terminal.js';

// `m-docker exec` runs a command in a running container, and no
// JavaScript process enters the container. The CLI pins the container's
// PID 1 with a pidfd and checks the record's start time against it. Then
// spawnInContainer joins PID 1's namespaces on the main thread through the
// pidfd, spawns the command and returns. The command
// gets the environment of PID 1, then -e; its working directory is -w or
// PID 1's; its user is -u or PID 1's. The CLI's main thread sits in the
// container's cgroups while it forks (container-cgroup-join.ts), so the
// command starts there. With -t, the command gets a pty of the container's
// own devpts as its controlling terminal (exec-terminal.ts).
//
// The command gets the container's capabilities, as with docker. Before
// it joins the namespaces, the main thread limits its bounding set to the
// container's set and empties its inheritable set (spawnInContainer's
// childCapabilities), so root's execve gives the command that set. No
// call raises a bounding set again, so the main thread keeps the smaller
// one until the CLI exits. That is harmless, because it spawns nothing
// afterwards, and its effective set, which moving back needs, stays whole.

/** The command and settings of one `exec` request. */
export interface ExecRequest {
  reference: string;
  argv: string[];
  interactive: boolean;
  tty: boolean;
  env: string[];
  workdir?: string;
  user?: string;
  /** --privileged: every capability that m-docker has, not only the container's. */
  privileged: boolean;
}

/** Runs the command in the container and returns its exit status, with run's statuses for failures. */
export async function execInContainer(root: string, request: ExecRequest, log: Logger): Promise<number> {
  requireRoot('m-docker exec needs root');
  if (request.tty) checkTerminalInput(request.interactive);
  const record = findContainer(root, request.reference);
  const init = record.init;
  if (!isContainerRunning(record) || init === undefined) {
    throw new CliError(`container ${request.reference} is not running: exec needs a running container (see 'm-docker ps')`);
  }

  const pidfd = openPinned(init.pid, init.startTime, request.reference);
  let cgroups: CgroupSwitch | undefined;
  try {
    const settings = { ...containerSettings(init.pid, request), capabilities: execCapabilities(capabilityOptionsOf(record), request.privileged) };
    cgroups = openContainerCgroups(init.pid, request.reference, log);
    log.debug('exec', { container: record.id.slice(0, 12), pid: init.pid, command: request.argv[0] ?? '' });
    if (request.tty) return await execOnTerminal(pidfd, cgroups, request, settings, log);
    return await spawnAndWait(pidfd, cgroups, request, settings, log);
  } finally {
    cgroups?.close();
    close(pidfd);
  }
}

/** What the command gets from the container and from the request. */
export interface ExecSettings {
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  /** Supplementary groups: the -u user's from the container's /etc/group, or PID 1's. */
  groups: number[];
  /** The container's capability set, or undefined with --privileged (see the comment at the top). */
  capabilities?: bigint | undefined;
}

// The pidfd refers to the process that had the pid when it was opened. The
// start time read after the open proves that this process is the
// container's PID 1, not a later process that got the same pid.
function openPinned(pid: number, startTime: string, reference: string): number {
  let pidfd: number;
  try {
    pidfd = pidfdOpen(pid);
  } catch (error) {
    if (SyscallError.isInstance(error) && error.code === 'ESRCH') {
      throw new CliError(`container ${reference} is not running: its PID 1 has exited`);
    }
    throw error;
  }
  if (identityOf(pid).startTime !== startTime) {
    close(pidfd);
    throw new CliError(`container ${reference} is not running: its PID 1 has exited`);
  }
  return pidfd;
}

function openContainerCgroups(pid: number, reference: string, log: Logger): CgroupSwitch {
  try {
    return openCgroupSwitch(pid, (error) => warnCgroupReturn(log, error));
  } catch (error) {
    throw new CliError(`cannot exec in container ${reference}: cannot open its cgroups: ${(error as Error).message}`, undefined, { cause: error });
  }
}

function containerSettings(pid: number, request: ExecRequest): ExecSettings {
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  const env = new Map(environ.map((entry) => [entry.slice(0, entry.indexOf('=')), entry] as const));
  for (const entry of request.env) {
    const equals = entry.indexOf('=');
    if (equals === 0 || entry === '') throw new CliError(`invalid -e ${JSON.stringify(entry)}: give KEY=VALUE, or KEY to copy it from this environment`);
    if (equals > 0) {
      env.set(entry.slice(0, equals), entry);
    } else if (process.env[entry] !== undefined) {
      // KEY alone copies the caller's value, as with run; an unset KEY is skipped.
      env.set(entry, `${entry}=${process.env[entry]}`);
    }
  }

  let uid: number;
  let gid: number;
  let groups: number[];
  if (request.user !== undefined) {
    try {
      const user = resolveUser({ spec: request.user }, `/proc/${pid}/root`);
      uid = user.uid;
      gid = user.gid;
      groups = user.groups;
      if (!request.env.some((entry) => entry.startsWith('HOME='))) env.set('HOME', `HOME=${user.home}`);
    } catch (error) {
      if (error instanceof UserError) throw new CliError(error.message, undefined, { cause: error });
      throw error;
    }
  } else {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    gid = Number(/^Gid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    groups = (/^Groups:(.*)$/m.exec(status)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  }

  const cwd = request.workdir ?? readlinkSync(`/proc/${pid}/cwd`);
  return { env: [...env.values()], cwd, uid, gid, groups };
}

function spawnAndWait(pidfd: number, cgroups: CgroupSwitch, request: ExecRequest, settings: ExecSettings, log: Logger): Promise<number> {
  const [command, ...args] = request.argv as [string, ...string[]];
  const env = Object.fromEntries(settings.env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));

  let child: ReturnType<typeof spawnInContainer>;
  try {
    child = spawnInContainer(pidfd, command, args, {
      cwd: settings.cwd,
      env,
      uid: settings.uid,
      gid: settings.gid,
      stdio: [request.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'],
      aroundStart: { before: cgroups.enter, after: cgroups.leave },
      childCapabilities: settings.capabilities,
    });
  } catch (error) {
    throw new CliError(`cannot exec in the container: ${(error as Error).message}`, undefined, { cause: error });
  }

  return new Promise((resolve, reject) => {
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    child.once('error', (error: NodeJS.ErrnoException) => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      if (error.code === 'ENOENT') {
        reject(new CliError(`cannot run ${JSON.stringify(command)}: executable file not found in the container: check the command name and the container's PATH`, EXIT_STATUS.notFound));
      } else if (error.code === 'EACCES') {
        reject(new CliError(`cannot run ${JSON.stringify(command)}: permission denied: check that it is an executable file`, EXIT_STATUS.cannotExecute));
      } else if (error.code === 'EAGAIN') {
        reject(new CliError(forkRefused(command)));
      } else {
        reject(new CliError(`cannot run ${JSON.stringify(command)} in the container: ${error.message}`, undefined, { cause: error }));
      }
    });
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    child.once('exit', (code, signal) => {
      for (const name of FORWARDED_SIGNALS) process.off(name, forward);
      resolve(statusFromExit(code, signal));
    });
  });
}

