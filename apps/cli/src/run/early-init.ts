import { getDescriptorFlags } from '@m-docker/syscalls';

import { type MigrationWarmUpStart, startMigrationWarmUp } from './container-cgroup-warm-up.js';
import { type InitProcess, spawnInit } from './init-process.js';
import { Timeline } from './timeline.js';

// `m-docker run` spawns the container's init before it loads the rest of
// the CLI (option parsing, help, the protocol code), so that the init's
// runtime start-up overlaps the CLI's. The init does not depend on the
// options: -i and -t reach it in the config, and it applies them itself.

/** The variable that marks an `m-docker run -d` process as the monitor; its value is the fd that leads to the CLI. */
export const MONITOR_VARIABLE = 'M_DOCKER_MONITOR_FD';

/** The init spawned at the CLI's start, or the error spawning it gave, with the timeline of the run. */
export interface EarlyInit {
  timeline: Timeline;
  init?: InitProcess;
  /** The spawn failure, raised once the command line is known to ask for run. */
  error?: unknown;
  /** The cgroup warm-up write started right after the spawn. */
  warmUp?: MigrationWarmUpStart;
}

/** Returns whether `argv` requests `run` after nothing but m-docker's global options. */
export function isRunCommand(argv: readonly string[]): boolean {
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] as string;
    if (arg === 'run') return true;
    if (arg === '--log-level' || arg === '--root') {
      index++;
      continue;
    }
    if (arg.startsWith('--log-level=') || arg.startsWith('--root=') || arg === '-D' || arg === '--debug') continue;
    return false;
  }
  return false;
}

/**
 * Spawns the init and starts the cgroup warm-up write when `argv` requests
 * run and the CLI runs as root. Returns undefined otherwise, and then
 * nothing was created. The caller must hand the init to runContainer or end
 * it with discardEarlyInit.
 */
export function startInitEarly(argv: readonly string[]): EarlyInit | undefined {
  // A detached container's monitor spawns its init itself, with the log
  // sockets as its stdout and stderr.
  if (!isRunCommand(argv) || process.getuid?.() !== 0 || process.env[MONITOR_VARIABLE] !== undefined) return undefined;

  const timeline = new Timeline();
  let init: InitProcess;
  try {
    init = spawnInit({ stdinOpen: isOpen(0) }, timeline);
  } catch (error) {
    return { timeline, error };
  }
  return { timeline, init, warmUp: startMigrationWarmUp(timeline, 'cgroup warm-up started') };
}

/** Ends an early init that no run will use, and waits until it is gone. */
export async function discardEarlyInit(early: EarlyInit | undefined): Promise<void> {
  const init = early?.init;
  if (!init) return;
  init.discard();
  await init.exited.catch(() => undefined);
}

// fcntl(F_GETFD) fails with EBADF on a closed descriptor.
function isOpen(fd: number): boolean {
  try {
    getDescriptorFlags(fd);
    return true;
  } catch {
    return false;
  }
}
