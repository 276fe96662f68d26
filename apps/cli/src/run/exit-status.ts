import { createRequire } from 'node:module';

import type { InitFailure } from '@m-docker/ipc';

import { CliError, EXIT_STATUS } from '../cli-error.js';

// errno codes from execve(2) that mean the file exists but cannot be run.
const CANNOT_EXECUTE = new Set(['EACCES', 'EISDIR', 'E2BIG', 'ENOEXEC', 'ETXTBSY', 'ELOOP', 'ENAMETOOLONG', 'ENOTDIR', 'EPERM']);

/** Returns the status docker gives for a process that exited with `code` or died of `signal`: 128+N for signal N. */
export function statusFromExit(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal !== null) {
    // node:os is loaded only here: under Bun it costs milliseconds of every start.
    const { constants } = createRequire(import.meta.url)('node:os') as typeof import('node:os');
    return 128 + (constants.signals[signal] ?? 0);
  }
  return code ?? EXIT_STATUS.runtimeError;
}

/** Turns a failure that the init reported into the error the CLI prints, with docker's status. */
export function errorFromInitFailure(failure: InitFailure, command: string): CliError {
  const quoted = JSON.stringify(command);
  const reason = failure.message;

  if (failure.stage === 'resolve' || failure.stage === 'exec') {
    if (failure.code === 'ENOENT') {
      return new CliError(`cannot run ${quoted}: ${reason}: ${notFoundHint(failure, command)}`, EXIT_STATUS.notFound);
    }
    if (failure.code === 'E2BIG') {
      return new CliError(
        `cannot run ${quoted}: argument list too long (${reason}): one argument or environment string may hold at most 128 KiB, and all of them together at most ARG_MAX bytes (getconf ARG_MAX)`,
        EXIT_STATUS.cannotExecute,
      );
    }
    if (CANNOT_EXECUTE.has(failure.code)) {
      return new CliError(`cannot run ${quoted}: ${reason}: check that it is an executable file`, EXIT_STATUS.cannotExecute);
    }
  }
  if (failure.stage === 'chdir') {
    return new CliError(`cannot use working directory ${JSON.stringify(failure.path ?? '')}: ${reason}: give -w an existing folder`);
  }
  return new CliError(`container setup failed at step ${failure.stage}: ${reason}`);
}

// The resolve step has found the file by the time execve runs, so ENOENT
// from execve means the interpreter on its #! line (or its ELF loader) is
// missing. A command given as a path is not looked up in PATH.
function notFoundHint(failure: InitFailure, command: string): string {
  if (failure.stage === 'exec') return "the file exists, so the interpreter named on its '#!' line is missing";
  if (command.includes('/')) return 'check the path';
  return "check the command name and the container's PATH";
}
