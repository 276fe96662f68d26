import type { Logger } from '@m-docker/log';
import { close } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';
import { buildConfig, type RunRequest, validateRequest } from './container-config.js';
import { statusFromExit } from './exit-status.js';
import { spawnInit, waitForExit } from './init-process.js';
import { forwardSignals } from './signals.js';
import { startContainer } from './start-protocol.js';
import { Timeline } from './timeline.js';

export type { RunRequest } from './container-config.js';

// How the parent drives one container (the init's side is in @m-docker/init):
// spawn the init in new namespaces first, so that its start-up overlaps the
// rest of the CLI's work (reading env files, building the config); then run
// the start protocol over fd 3, and wait for the command to exit while
// forwarding signals to it. Every failure path ends the init with SIGKILL
// and waits for it, so no process is left behind.

/** Runs one container to its end and returns the exit status for the CLI. */
export async function runContainer(request: RunRequest, parentLog: Logger, started: number): Promise<number> {
  requireRoot();
  const id = newContainerId();
  const hostname = request.hostname ?? id.slice(0, 12);
  validateRequest(request, hostname);
  const log = parentLog.child({ id: id.slice(0, 12) });
  const timeline = new Timeline(log);
  timeline.mark('cli started', undefined, started);

  const { child, pipeFd } = spawnInit(request, log, timeline);
  const exited = waitForExit(child);
  let stopForwarding = () => {};
  try {
    try {
      startContainer(pipeFd, buildConfig(request, id, hostname), timeline);
    } finally {
      close(pipeFd);
    }
    stopForwarding = forwardSignals(child, request.tty, log);

    const { code, signal } = await exited;
    timeline.mark('container exited', { code: code ?? undefined, signal: signal ?? undefined });
    return statusFromExit(code, signal);
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
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

// 32 random bytes in hex, as docker's container ids. The Web Crypto API is
// used rather than node:crypto, which costs several milliseconds to load
// under Bun.
function newContainerId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Buffer.from(bytes).toString('hex');
}
