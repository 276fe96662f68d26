import arg from 'arg';

import { CliError } from './cli-error.js';

// The command line is parsed with `arg` (by Vercel): it is small, loads in
// about a millisecond under Bun where commander took about six, and its
// stopAtPositional option gives docker's rule that options after COMMAND
// belong to COMMAND. Each command declares its options once in a table,
// and the parser's spec and the help text are both made from that table.

/** One option of a command: its names, its value's placeholder and its help line. */
export interface OptionSpec {
  name: `--${string}`;
  alias?: `-${string}`;
  /** The value's placeholder in help; an option without one is a flag. */
  value?: string;
  repeatable?: boolean;
  help: string;
}

export type ArgResult = arg.Result<arg.Spec>;

/** Global options that a command's parser names in its error, so users move them before the command. */
export interface ParseContext {
  helpCommand: string;
  globalOptions?: readonly OptionSpec[];
}

/** Parses `argv` against `options`; throws a CliError that names the option and where to look. */
export function parseOptions(options: readonly OptionSpec[], argv: readonly string[], context: ParseContext): ArgResult {
  const normalized = normalizeOptions(options, argv);
  try {
    return arg(toArgSpec(options), { argv: normalized, stopAtPositional: true });
  } catch (error) {
    const message = describeArgError(error as Error & { code?: string });
    const option = /'(--?[^']+)'/.exec(message)?.[1];
    const globals = context.globalOptions ?? [];
    if (globals.some((global) => global.name === option || hasAlias(global, option))) {
      const spec = globals.find((global) => global.name === option || hasAlias(global, option));
      const example = spec?.value === undefined ? option : `${option} ${spec.value}`;
      throw new CliError(`${option} is an option of m-docker itself: put it before 'run', as in 'm-docker ${example} run ...'`);
    }
    throw new CliError(`${message}: see '${context.helpCommand}'`, undefined, { cause: error });
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

/** Formats an options table for help text, one aligned line per option. */
export function formatOptions(options: readonly OptionSpec[]): string {
  const rows = options.map((option) => {
    const names = option.alias === undefined ? `    ${option.name}` : `${option.alias}, ${option.name}`;
    return [`  ${names}${option.value === undefined ? '' : ` ${option.value}`}`, option.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 3;
  return rows.map(([left, help]) => `${left.padEnd(width)}${help}`).join('\n');
}
