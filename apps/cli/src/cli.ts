import { writeSync } from 'node:fs';

import { createLogger } from '@m-docker/log';

import packageJson from '../package.json' with { type: 'json' };
import { CliError } from './cli-error.js';
import { parseCommandLine } from './command-line.js';
import { discardEarlyInit, type EarlyInit, MONITOR_VARIABLE } from './run/early-init.js';
import { runContainer } from './run/run-container.js';
import { describeCliRuntime, describeRuntime, selectInitRuntime } from './runtime/init-runtime.js';

/**
 * Parses the command line and runs it; returns the exit status. Errors end
 * in one line on stderr, `m-docker: WHAT FAILED: WHAT TO DO`, with docker's
 * exit statuses. An init spawned early that no run used is ended here.
 */
export async function main(argv: string[], started: number, early: EarlyInit | undefined): Promise<number> {
  let earlyUsed = false;
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === 'help') {
      writeSync(1, parsed.text);
      return 0;
    }
    if (parsed.kind === 'version') {
      const init = describeRuntime(selectInitRuntime(), true);
      writeSync(1, `m-docker ${packageJson.version} (cli: ${describeCliRuntime()}, init: ${init})\n`);
      return 0;
    }

    if (parsed.kind === 'store') {
      const log = createLogger({ level: parsed.logLevel, component: 'cli' });
      const { runStoreCommand } = await import('./store-commands.js');
      return await runStoreCommand(parsed.command, parsed.root, log).catch((error: unknown) => {
        // docker's image, volume and container commands exit with 1 on
        // failure; 125, 126 and 127 belong to run and exec.
        if (error instanceof CliError) throw new CliError(error.message, 1, { cause: error });
        throw error;
      });
    }
    if (parsed.kind === 'exec') {
      const log = createLogger({ level: parsed.logLevel, component: 'cli' });
      const { execInContainer } = await import('./exec/exec-container.js');
      return await execInContainer(parsed.root, parsed.request, log);
    }

    const log = createLogger({ level: parsed.request.logLevel, component: 'cli' });
    if (parsed.request.detach) {
      const { runDetachedRequest } = await import('./run/detached-run.js');
      earlyUsed = process.env[MONITOR_VARIABLE] !== undefined;
      return await runDetachedRequest(argv, parsed.request, log, started);
    }
    earlyUsed = true;
    return await runContainer(parsed.request, log, started, early);
  } catch (error) {
    const cliError = error instanceof CliError ? error : new CliError(`unexpected error: ${(error as Error)?.stack ?? error}`);
    writeSync(2, `m-docker: ${cliError.message}\n`);
    return cliError.status;
  } finally {
    if (!earlyUsed) await discardEarlyInit(early);
  }
}
