import type { Logger } from '@m-docker/log';
import { canAccess, F_OK } from '@m-docker/syscalls';

import { CliError, requireRoot } from '../cli-error.js';
import { containerCgroup, type RunCgroup } from './container-cgroup.js';
import { startMigrationWarmUp } from './container-cgroup-warm-up.js';
import { buildConfig, hostRootSettings, type RootSettings, type RunRequest, validateRequest } from './container-config.js';
import type { PreparedRoot } from './container-root.js';
import { type HostContainer, registerHostContainer, startIdentity } from './container-state.js';
import type { MonitorHooks } from './detach.js';
import type { TerminalEnd } from './detached-terminal.js';
import type { EarlyInit } from './early-init.js';
import { statusFromExit } from './exit-status.js';
import { type InitProcess, spawnInit } from './init-process.js';
import { forwardSignals } from './signals.js';
import { startContainer } from './start-protocol.js';
import { checkTerminalInput, TerminalRelay } from './terminal.js';
import { Timeline } from './timeline.js';

export type { RunRequest } from './container-config.js';

// How the parent drives one container (the init's side is in @m-docker/init):
// the init is spawned in new namespaces first, usually before the CLI has
// parsed its options (see early-init.ts), so that the two start-ups overlap.
// Then the CLI builds the config (reading env files), runs the start
// protocol over fd 3, creating the container's cgroup on the way (see
// container-cgroup.ts), and waits for the command to exit while forwarding
// signals to it. Every failure path ends the init with SIGKILL and waits for
// it, so no process is left behind, and then removes the cgroup.

/** Runs one container to its end and returns the exit status for the CLI. */
export async function runContainer(
  request: RunRequest,
  parentLog: Logger,
  started: number,
  early?: EarlyInit,
  monitor?: MonitorHooks,
): Promise<number> {
  const timeline = early?.timeline ?? new Timeline();
  let init = early?.init;
  let root: PreparedRoot | undefined;
  let host: HostContainer | undefined;
  let cgroup: RunCgroup | undefined;
  try {
    requireRoot('m-docker run needs root');
    if (early?.error !== undefined) throw early.error;
    const id = newContainerId();
    const hostname = request.hostname ?? id.slice(0, 12);
    validateRequest(request, hostname);
    // A detached container's pty belongs to its monitor, which needs no client terminal.
    if (request.tty && monitor === undefined) checkTerminalInput(request.interactive);

    const log = parentLog.child({ id: id.slice(0, 12) });
    timeline.mark('cli started', undefined, started);
    timeline.attach(log);
    let warmUp = early?.warmUp;
    if (init === undefined) {
      init = spawnInit(monitor === undefined ? { stdinOpen: true } : { stdinOpen: false, stdio: monitor.stdio }, timeline);
      warmUp = startMigrationWarmUp(timeline, 'cgroup warm-up started');
    }
    if (init.fallbackReason !== undefined) {
      log.debug('Bun is unavailable, so Node runs m-docker', { reason: init.fallbackReason });
    }

    const ownRoot = request.image !== undefined || request.rootfs !== undefined;
    if (!ownRoot) await rejectImageName(request);
    const identity = startIdentity(request, init.child.pid);
    let settings: RootSettings;
    if (ownRoot) {
      const { prepareRoot } = await import('./container-root.js');
      root = await prepareRoot(request, id, hostname, log, identity);
      settings = root.settings;
      timeline.mark('root prepared');
    } else {
      settings = hostRootSettings(request);
      host = registerHostContainer(request, id, identity, settings.argv, log);
    }

    const config = buildConfig(request, id, hostname, settings);
    cgroup = containerCgroup(request.cgroup, id, timeline, warmUp);
    const container = { id, name: root?.name ?? host?.record.name ?? '' };
    const terminal = request.tty ? (monitor?.terminal ?? new TerminalRelay({ interactive: config.interactive, log })) : undefined;
    const { status, oomKilled } = await runToExit(init, config, terminal, timeline, log, cgroup, () => monitor?.started(container));
    log.debug(`timeline in ms since the CLI process started: ${timeline.summary()}`);
    root?.finish(status, oomKilled);
    host?.finish(status, oomKilled);
    return status;
  } catch (error) {
    if (init) {
      init.discard();
      await init.exited.catch(() => undefined);
    }
    cgroup?.remove(parentLog);
    root?.discard();
    host?.discard();
    const summary = timeline.summary();
    if (summary !== '') parentLog.debug(`timeline in ms since the CLI process started: ${summary}`);
    throw error;
  }
}

// Returns the status for the CLI and whether the kernel's OOM killer
// killed a process of the container.
async function runToExit(
  init: InitProcess,
  config: ReturnType<typeof buildConfig>,
  terminal: TerminalEnd | undefined,
  timeline: Timeline,
  log: Logger,
  cgroup: RunCgroup,
  onStarted: () => void,
): Promise<{ status: number; oomKilled: boolean }> {
  // Forwarding starts right before `start`. A signal that arrives while
  // the CLI waits in its blocking read for the exec is handled once that
  // read returns, so it reaches COMMAND rather than ending the CLI, whose
  // caller already sees COMMAND's output.
  let stopForwarding: (() => void) | undefined;
  try {
    startContainer(init.pipeFd, config, timeline, {
      afterConfig: () => cgroup.create(),
      beforeStart: () => {
        cgroup.join(init.child.pid);
        stopForwarding = forwardSignals(init.child, log);
      },
      pidsLimit: () => cgroup.takePidsLimit(),
      terminal: terminal?.attach,
    });
  } catch (error) {
    stopForwarding?.();
    terminal?.close();
    throw error;
  } finally {
    init.closePipe();
  }
  onStarted();

  cgroup.logWarmUps(log);
  cgroup.removeStale(log);
  try {
    terminal?.start();
    const { code, signal } = await init.exited;
    timeline.mark('container exited', { code: code ?? undefined, signal: signal ?? undefined });
    // The last output of a -t container is still in the pty.
    await terminal?.drained;
    const oomKilled = cgroup.reportOutOfMemory(log);
    cgroup.remove(log);
    return { status: statusFromExit(code, signal), oomKilled };
  } finally {
    terminal?.close();
    stopForwarding?.();
  }
}

// `m-docker run busybox` on the host's root file system, after importing an
// image named busybox, most likely means the image: docker users write the
// image there. A path (with '/') always names a host program.
async function rejectImageName(request: RunRequest): Promise<void> {
  const command = request.command as string;
  if (command.includes('/') || !hasImageStore(request.root)) return;

  const { imageReferences } = await import('./image-root.js');
  const references = await imageReferences(request.root);
  if (references.includes(command) || references.includes(`${command}:latest`)) {
    throw new CliError(
      `${JSON.stringify(command)} is an imported image, and m-docker runs images only with --image: did you mean --image ${command}? (To run the host's program, give its path, such as /usr/bin/${command.split(':')[0]}.)`,
    );
  }
}

// One access(2) call: a machine without imported images does not load the
// images package on each run.
function hasImageStore(root: string): boolean {
  return canAccess(`${root}/repositories.json`, F_OK);
}

// 32 random bytes in hex, as docker's container ids. The Web Crypto API is
// used rather than node:crypto, which costs several milliseconds to load
// under Bun.
function newContainerId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Buffer.from(bytes).toString('hex');
}
