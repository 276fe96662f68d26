import type { Logger } from '@m-docker/log';

import { CliError } from '../cli-error.js';
import type { RunRequest } from './container-config.js';
import { runDetached, startMonitor } from './detach.js';
import { MONITOR_VARIABLE } from './early-init.js';
import { runContainer } from './run-container.js';

/**
 * Runs `run -d`, with or without -i and -t. In the CLI it starts the
 * monitor and prints the container's id, and needs no client terminal, as
 * with docker. In the monitor (MONITOR_VARIABLE set) it runs the container
 * to its end, with the output going to the log file.
 */
export async function runDetachedRequest(argv: readonly string[], request: RunRequest, log: Logger, started: number): Promise<number> {
  const reportFd = process.env[MONITOR_VARIABLE];
  if (reportFd === undefined) return runDetached(argv);

  const monitor = startMonitor(Number(reportFd), { root: request.root, interactive: request.interactive, tty: request.tty, log });
  try {
    const status = await runContainer(request, log, started, undefined, monitor);
    await monitor.drained;
    return status;
  } catch (error) {
    const failure = error instanceof CliError ? error : new CliError(`unexpected error: ${(error as Error)?.stack ?? error}`);
    monitor.fail(failure);
    throw failure;
  }
}
