import arg from 'arg';

import { LOG_LEVELS, type LogLevel } from '@m-docker/log';

import { CliError } from './cli-error.js';
import type { RunRequest } from './run/container-config.js';
import { parseResourceOptions, RESOURCE_OPTIONS } from './run/resource-options.js';

// The command line is parsed with `arg` (by Vercel): it is small, loads in
// about a millisecond under Bun where commander took about six, and its
// stopAtPositional option gives docker's rule that options after COMMAND
// belong to COMMAND. Each option is declared once in a table below, and the
// parser's spec and the help text are both made from that table.

interface OptionSpec {
  name: `--${string}`;
  alias?: `-${string}`;
  /** The value's placeholder in help; an option without one is a flag. */
  value?: string;
  repeatable?: boolean;
  help: string;
}

const GLOBAL_OPTIONS = [
  { name: '--log-level', value: 'LEVEL', help: `least severe log level printed to stderr: ${LOG_LEVELS.join(', ')} (default: warn)` },
  { name: '--debug', alias: '-D', help: 'log every step of starting a container with timings (same as --log-level debug)' },
  { name: '--version', alias: '-v', help: 'print the version and the runtimes that run the CLI and the init, and exit' },
  { name: '--help', alias: '-h', help: 'print this help and exit' },
] as const satisfies readonly OptionSpec[];

const RUN_OPTIONS = [
  { name: '--interactive', alias: '-i', help: 'keep standard input attached to the container' },
  { name: '--tty', alias: '-t', help: 'give the container this terminal (TERM=xterm is set)' },
  { name: '--hostname', value: 'NAME', help: "the container's hostname (default: the first 12 characters of its id)" },
  {
    name: '--env',
    alias: '-e',
    value: 'KEY=VALUE',
    repeatable: true,
    help: 'set a variable; KEY alone copies the value from this environment (repeatable)',
  },
  {
    name: '--env-file',
    value: 'FILE',
    repeatable: true,
    help: 'read variables from a file, one KEY=VALUE a line, # for comments (repeatable)',
  },
  { name: '--workdir', alias: '-w', value: 'DIR', help: 'the working directory inside the container (absolute path, default: /)' },
  ...RESOURCE_OPTIONS,
  { name: '--help', alias: '-h', help: 'print this help and exit' },
] as const satisfies readonly OptionSpec[];

const MAIN_HELP = `Usage: m-docker [OPTIONS] COMMAND

Run commands in Linux containers: new namespaces, configured over a socketpair.

Options:
${formatOptions(GLOBAL_OPTIONS)}

Commands:
  run [OPTIONS] COMMAND [ARG...]   run COMMAND as PID 1 of new UTS, PID, mount, network and IPC namespaces

Run 'm-docker run --help' for run's options and examples.
`;

const RUN_HELP = `Usage: m-docker run [OPTIONS] COMMAND [ARG...]

Run COMMAND as PID 1 of new UTS, PID, mount, network and IPC namespaces, with
its own /proc and a cgroup of its own, and exit with COMMAND's status.

Options:
${formatOptions(RUN_OPTIONS)}

Examples:
  # A shell in new namespaces: it is PID 1 and sees only its own processes
  m-docker run /bin/sh -c 'echo $$; hostname; ps -e -o pid,comm'

  # Pick the hostname, set variables, and start in /tmp
  m-docker run --hostname box -e GREETING=hello -w /tmp sh -c 'echo $GREETING from $(hostname) in $PWD'

  # Interactive shell on this terminal
  m-docker run -it /bin/bash

  # At most 256 MiB of memory, half a CPU and 100 processes
  m-docker run -m 256m --cpus 0.5 --pids-limit 100 /bin/sh -c 'cat /proc/self/cgroup'

Options after COMMAND belong to COMMAND: in 'm-docker run ls -l', -l goes to ls.
Sizes take a unit b, k, m, g, t or p (powers of 1024). A PATH of --cgroup-parent
that starts with / is taken from the root of each cgroup hierarchy, another
from m-docker's own cgroup in each hierarchy.

Exit status: COMMAND's own; 128+N if it died of signal N (137 when the kernel
killed it for running out of memory); 125 if m-docker failed;
126 if COMMAND cannot be executed; 127 if it was not found.
`;

/** The request that a command line makes. */
export type ParsedCommandLine =
  | { kind: 'help'; text: string }
  | { kind: 'version' }
  | { kind: 'run'; request: RunRequest };

type ArgResult = arg.Result<arg.Spec>;

/** Parses m-docker's command line; throws a CliError (status 125) naming the option or value and where to look. */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const global = parse(GLOBAL_OPTIONS, argv, 'm-docker --help');
  if (global['--help'] === true || global._.length === 0 && global['--version'] !== true) {
    return { kind: 'help', text: MAIN_HELP };
  }
  if (global['--version'] === true) return { kind: 'version' };

  const logLevel = global['--debug'] === true ? 'debug' : parseLogLevel(global['--log-level']);
  const [command, ...rest] = global._ as [string, ...string[]];
  if (command !== 'run') {
    throw new CliError(`unknown command '${command}': see 'm-docker --help'`);
  }

  const run = parse(RUN_OPTIONS, rest, 'm-docker run --help');
  if (run['--help'] === true) return { kind: 'help', text: RUN_HELP };
  const [program, ...args] = run._;
  if (program === undefined) {
    throw new CliError("missing COMMAND: see 'm-docker run --help'");
  }

  const request: RunRequest = {
    command: program,
    args,
    interactive: run['--interactive'] === true,
    tty: run['--tty'] === true,
    env: (run['--env'] as string[] | undefined) ?? [],
    envFiles: (run['--env-file'] as string[] | undefined) ?? [],
    workdir: (run['--workdir'] as string | undefined) ?? '/',
    logLevel,
    cgroup: parseResourceOptions(run, process.env),
  };
  if (run['--hostname'] !== undefined) request.hostname = run['--hostname'] as string;
  return { kind: 'run', request };
}

function parse(options: readonly OptionSpec[], argv: readonly string[], helpCommand: string): ArgResult {
  const normalized = normalizeOptions(options, argv);
  try {
    return arg(toArgSpec(options), { argv: normalized, stopAtPositional: true });
  } catch (error) {
    const message = describeArgError(error as Error & { code?: string });
    const option = /'(--?[^']+)'/.exec(message)?.[1];
    if (options === RUN_OPTIONS && GLOBAL_OPTIONS.some((global) => global.name === option || hasAlias(global, option))) {
      throw new CliError(`${option} is an option of m-docker itself: put it before 'run', as in 'm-docker ${option} run ...'`);
    }
    throw new CliError(`${message}: see '${helpCommand}'`, undefined, { cause: error });
  }
}

function hasAlias(option: OptionSpec, name: string | undefined): boolean {
  return option.alias !== undefined && option.alias === name;
}

/**
 * Rewrites the option tokens before the first positional argument into the
 * forms that `arg` reads, so that the spellings docker users type work. A
 * value may be attached to a short option or follow a group of flags
 * (`-wDIR`, `-e=A=1`, `-itw DIR`), a value may start with a dash
 * (`--hostname -x`), and a flag may be turned off (`--tty=false`).
 * Everything from the first positional argument or `--` on is left as it is.
 */
function normalizeOptions(options: readonly OptionSpec[], argv: readonly string[]): string[] {
  const byName = new Map<string, OptionSpec>();
  for (const option of options) {
    byName.set(option.name, option);
    if (option.alias !== undefined) byName.set(option.alias, option);
  }

  const result: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index] as string;
    if (token === '--' || !token.startsWith('-') || token === '-') {
      result.push(...argv.slice(index));
      break;
    }

    if (token.startsWith('--')) {
      const [name, value] = splitLongOption(token);
      const option = byName.get(name);
      if (option !== undefined && option.value === undefined && value !== undefined) {
        if (parseFlagValue(name, value)) result.push(name);
      } else if (option?.value !== undefined && value === undefined && index + 1 < argv.length) {
        // A value option takes the next token whatever it starts with.
        result.push(`${name}=${argv[++index]}`);
      } else {
        result.push(token);
      }
      continue;
    }

    // A group of short options: flags, then at most one value option whose
    // value is the rest of the token or the next token.
    for (let position = 1; position < token.length; position++) {
      const name = `-${token[position]}`;
      const option = byName.get(name);
      if (option !== undefined && option.value === undefined && token[position + 1] === '=') {
        if (parseFlagValue(name, token.slice(position + 2))) result.push(name);
        break;
      }
      if (option?.value === undefined) {
        result.push(name);
        continue;
      }
      const rest = token.slice(position + 1).replace(/^=/, '');
      if (rest !== '') result.push(`${option.name}=${rest}`);
      else if (index + 1 < argv.length) result.push(`${option.name}=${argv[++index]}`);
      else result.push(name);
      break;
    }
  }
  return result;
}

function splitLongOption(token: string): [string, string | undefined] {
  const equals = token.indexOf('=');
  return equals === -1 ? [token, undefined] : [token.slice(0, equals), token.slice(equals + 1)];
}

// `--tty=true` turns the flag on and `--tty=false` leaves it off. The
// spellings are those docker accepts (Go's strconv.ParseBool).
const TRUE_VALUES = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE_VALUES = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

function parseFlagValue(name: string, value: string): boolean {
  if (TRUE_VALUES.has(value)) return true;
  if (FALSE_VALUES.has(value)) return false;
  throw new CliError(`invalid value ${JSON.stringify(value)} for ${name}: use true or false, or give ${name} alone`);
}

function toArgSpec(options: readonly OptionSpec[]): arg.Spec {
  const spec: arg.Spec = {};
  for (const option of options) {
    const type = option.value === undefined ? Boolean : String;
    spec[option.name] = option.repeatable ? [type] : type;
    if (option.alias !== undefined) spec[option.alias] = option.name;
  }
  return spec;
}

// arg's messages end with the option, as in "option requires argument: -e
// (alias for --env)"; they are reworded in m-docker's style.
function describeArgError(error: Error & { code?: string }): string {
  const option = /: (\S+)/.exec(error.message)?.[1] ?? '';
  if (error.code === 'ARG_UNKNOWN_OPTION') return `unknown option '${option}'`;
  if (error.code === 'ARG_MISSING_REQUIRED_LONGARG' || error.code === 'ARG_MISSING_REQUIRED_SHORTARG') {
    return `option '${option}' needs a value`;
  }
  return error.message;
}

function parseLogLevel(value: unknown): LogLevel {
  if (value === undefined) return 'warn';
  const level = LOG_LEVELS.find((candidate) => candidate === value);
  if (level === undefined) {
    throw new CliError(`invalid --log-level ${JSON.stringify(value)}: use one of ${LOG_LEVELS.join(', ')}`);
  }
  return level;
}

function formatOptions(options: readonly OptionSpec[]): string {
  const rows = options.map((option) => {
    const names = option.alias === undefined ? `    ${option.name}` : `${option.alias}, ${option.name}`;
    return [`  ${names}${option.value === undefined ? '' : ` ${option.value}`}`, option.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 3;
  return rows.map(([left, help]) => `${left.padEnd(width)}${help}`).join('\n');
}
