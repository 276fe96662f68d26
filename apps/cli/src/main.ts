import { writeSync } from 'node:fs';

import { CliError } from './cli-error.js';
import { CommanderError, createProgram, translateCommanderError } from './program.js';

// The entry of the `m-docker` command. Errors end in one line on stderr,
// `m-docker: WHAT FAILED: WHAT TO DO`, and docker's exit statuses.
async function main(argv: string[]): Promise<number> {
  const started = performance.now();
  let status = 0;
  const program = createProgram((runStatus) => {
    status = runStatus;
  }, started);
  if (argv.length === 0) {
    program.outputHelp();
    return 0;
  }

  try {
    await program.parseAsync(argv, { from: 'user' });
    return status;
  } catch (error) {
    const failure = error instanceof CommanderError ? translateCommanderError(error) : error;
    if (failure === undefined) return 0;
    const cliError = failure instanceof CliError ? failure : new CliError(`unexpected error: ${(failure as Error)?.stack ?? failure}`);
    writeSync(2, `m-docker: ${cliError.message}\n`);
    return cliError.status;
  }
}

process.exit(await main(process.argv.slice(2)));
