import { writeSync } from 'node:fs';

import { Command, CommanderError, Option } from 'commander';

import { createLogger, LOG_LEVELS, type LogLevel } from '@m-docker/log';

import packageJson from '../package.json' with { type: 'json' };
import { CliError, EXIT_STATUS } from './cli-error.js';
import { runContainer } from './run/run-container.js';
import { describeCliRuntime, describeRuntime, selectInitRuntime } from './runtime/init-runtime.js';

const RUN_EXAMPLES = `
Examples:
  # A shell in new namespaces: it is PID 1 and sees only its own processes
  m-docker run /bin/sh -c 'echo $$; hostname; ps -e -o pid,comm'

  # Pick the hostname, set variables, and start in /tmp
  m-docker run --hostname box -e GREETING=hello -w /tmp sh -c 'echo $GREETING from $(hostname) in $PWD'

  # Interactive shell on this terminal
  m-docker run -it /bin/bash

Options after COMMAND belong to COMMAND: in 'm-docker run ls -l', -l goes to ls.
Exit status: COMMAND's own; 128+N if it died of signal N; 125 if m-docker
failed; 126 if COMMAND cannot be executed; 127 if it was not found.
`;

interface GlobalOptions {
  debug?: boolean;
  logLevel: LogLevel;
}

interface RunCommandOptions {
  interactive?: boolean;
  tty?: boolean;
  hostname?: string;
  env: string[];
  envFile: string[];
  workdir: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/**
 * Builds the `m-docker` command line; `onStatus` receives the exit status of
 * `run`, and `started` is when main() began, in ms since the process started.
 */
export function createProgram(onStatus: (status: number) => void, started: number): Command {
  const program = new Command('m-docker')
    .description('Run commands in Linux containers: new namespaces, configured over an anonymous pipe.')
    .option('-v, --version', 'print the version and the runtimes that run the CLI and the init, and exit')
    .addOption(new Option('--log-level <level>', 'least severe log level printed to stderr').choices(LOG_LEVELS).default('warn'))
    .option('-D, --debug', 'log every step of starting a container with timings (same as --log-level debug)')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: () => {} });

  program.on('option:version', () => {
    const init = describeRuntime(selectInitRuntime(), true);
    writeSync(1, `m-docker ${packageJson.version} (cli: ${describeCliRuntime()}, init: ${init})\n`);
    throw new CommanderError(0, 'commander.version', '');
  });

  program
    .command('run')
    .description('Run COMMAND as PID 1 of new UTS, PID, mount, network and IPC namespaces')
    .usage('[options] COMMAND [ARG...]')
    .argument('<COMMAND>', 'the program to run: a path, or a name looked up in the container\'s PATH')
    .argument('[ARG...]', 'arguments passed to COMMAND unchanged')
    .option('-i, --interactive', 'keep standard input attached to the container')
    .option('-t, --tty', "give the container this terminal (TERM=xterm is set)")
    .option('--hostname <name>', "the container's hostname (default: the first 12 characters of its id)")
    .option('-e, --env <KEY=VALUE>', 'set a variable; KEY alone copies the value from this environment (repeatable)', collect, [])
    .option('--env-file <file>', 'read variables from a file, one KEY=VALUE a line, # for comments (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'the working directory inside the container (absolute path)', '/')
    .passThroughOptions()
    .exitOverride()
    .addHelpText('after', RUN_EXAMPLES)
    .action(async (command: string, args: string[], options: RunCommandOptions) => {
      const global = program.opts<GlobalOptions>();
      const logLevel = global.debug ? 'debug' : global.logLevel;
      const log = createLogger({ level: logLevel, component: 'cli' });
      const status = await runContainer(
        {
          command,
          args,
          interactive: options.interactive === true,
          tty: options.tty === true,
          ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
          env: options.env,
          envFiles: options.envFile,
          workdir: options.workdir,
          logLevel,
        },
        log,
        started,
      );
      onStatus(status);
    });

  return program;
}

/** Turns a commander error into the CLI's error, or undefined when it only printed help or the version. */
export function translateCommanderError(error: CommanderError): CliError | undefined {
  const benign = ['commander.helpDisplayed', 'commander.version', 'commander.help'];
  if (benign.includes(error.code)) return undefined;
  const message = error.message.replace(/^error: /, '');
  return new CliError(`${message}: see 'm-docker run --help'`, EXIT_STATUS.runtimeError, { cause: error });
}

export { CommanderError };
