import { readFileSync, readlinkSync } from 'node:fs';
import { type MigrationWarmUp, warmUpMigration } from '@m-docker/cgroups/migration-warm-up';
import { resolveUser, UserError } from '@m-docker/init';
import type { Logger } from '@m-docker/log';
import { close, pidfdOpen, SyscallError } from '@m-docker/syscalls';

import { CliError, requireRoot } from '../cli-error.js';
import { execCapabilities } from '../run/capability-options.js';
import { TERMINAL_TYPE } from '../run/environment.js';
import { forwardSignals } from '../run/signals.js';
import { checkTerminalInput, TerminalRelay } from '../run/terminal.js';
import { findContainer, isContainerRunning } from '../store/container-commands.js';
import { capabilityOptionsOf } from '../store/containers.js';
import { identityOf } from '../store/process-identity.js';
import { type CgroupSwitch, openCgroupSwitch, warnCgroupReturn } from './container-cgroup-join.js';
import { prepareCommand, startCommand, waitForExit } from './exec-command.js';

// `m-docker exec` runs a command in a running container, and no
// JavaScript process enters the container. The CLI pins the container's
// PID 1 with a pidfd and checks the record's start time against it. Then
// its main thread joins PID 1's namespaces through the pidfd, starts the
// command with glibc's posix_spawn and comes back (exec-command.ts). The
// command gets the environment of PID 1, then -e; its working directory is
// -w or PID 1's; its user is -u or PID 1's. The main thread sits in the
// container's cgroups while it forks (container-cgroup-join.ts), so the
// command starts there. With -t, the command leads a new session with a
// pty of the container's own devpts as its controlling terminal, and the
// CLI relays as for `run -t`.
//
// The command gets the container's capabilities, as with docker. Before
// it joins the namespaces, the main thread limits its bounding set to the
// container's set and empties its inheritable set (runInContainer's
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
  if (request.tty) checkTerminalInput(request.interactive, 'exec');
  // The first cgroup move after a pause waits for an RCU grace period (10
  // to 25 ms here), so a move that changes nothing starts now, on the
  // thread pool, and the real one follows it closely.
  const warmUp = warmUpMigration();
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
    return await runCommand(pidfd, cgroups, request, settings, warmUp, log);
  } finally {
    cgroups?.close();
    close(pidfd);
  }
}

// With -t, the relay takes the pty's master before the command starts, so
// the command finds the client's window size from its first instruction.
async function runCommand(
  pidfd: number,
  cgroups: CgroupSwitch,
  request: ExecRequest,
  settings: ExecSettings,
  warmUp: Promise<MigrationWarmUp>,
  log: Logger,
): Promise<number> {
  const prepared = prepareCommand(pidfd, request, settings);
  const warmed = await warmUp;
  if (warmed.error) log.debug('the cgroup warm-up write failed, so moving into the container cgroups may wait for an RCU grace period', { error: warmed.error.message });
  const relay = prepared.terminal ? new TerminalRelay({ interactive: request.interactive, log }) : undefined;
  let pid: number;
  try {
    if (prepared.terminal) relay?.attach(prepared.terminal.master);
    pid = startCommand(pidfd, cgroups, prepared, request, settings);
  } catch (error) {
    relay?.close();
    throw error;
  }

  const stopForwarding = forwardSignals({ pid, kill: (signal) => process.kill(pid, signal) }, log);
  try {
    relay?.start();
    const exit = await waitForExit(pid);
    if (relay) await drainOrHangUp(relay, pid, log);
    return exit.signal === null ? exit.code : 128 + exit.signal;
  } finally {
    stopForwarding();
    relay?.close();
  }
}

/**
 * How long the CLI still copies a pty's output after the command exited,
 * in ms. A process that the command left in the background may keep the
 * slave open, and then the master never reports the end of output: the
 * CLI hangs the pty up instead. Normally the output ends within
 * milliseconds. The margin is for a loaded machine, where Bun runs two fs
 * calls at a time, so the master's read may wait behind others.
 */
const OUTPUT_AFTER_EXIT_MS = 2000;

async function drainOrHangUp(relay: TerminalRelay, pid: number, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), OUTPUT_AFTER_EXIT_MS);
  });
  const drained = await Promise.race([relay.drained.then(() => true), late]);
  clearTimeout(timer);
  if (drained) return;
  log.debug('the pty is still open after the command exited; hanging it up', { pid });
  relay.hangUp();
}

/** The command's environment, working directory and ids, from the container and the request. */
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

  // docker's exec -t sets TERM for a container whose environment has none.
  if (request.tty && !env.has('TERM')) env.set('TERM', `TERM=${TERMINAL_TYPE}`);

  const cwd = request.workdir ?? readlinkSync(`/proc/${pid}/cwd`);
  return { env: [...env.values()], cwd, uid, gid, groups };
}


