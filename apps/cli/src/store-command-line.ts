import { CliError } from './cli-error.js';
import type { ExecRequest } from './exec/exec-container.js';
import { formatOptions, type OptionSpec, parseOptions } from './option-parser.js';

// The commands that manage the store: images and volumes, under docker's
// names (`image import`, `image ls`, `image rm`, `volume ...`) and docker's
// short spellings (`load -i`, `import`, `images`, `rmi`).

/** A store command, parsed. */
export type StoreCommand =
  | { kind: 'image-import'; file: string; reference?: string; quiet: boolean }
  | { kind: 'image-ls'; quiet: boolean }
  | { kind: 'image-rm'; references: string[]; force: boolean }
  | { kind: 'volume-create'; name?: string }
  | { kind: 'volume-ls'; quiet: boolean }
  | { kind: 'volume-rm'; names: string[]; force: boolean }
  | { kind: 'container-ls'; all: boolean; quiet: boolean; format?: 'json' }
  | { kind: 'container-rm'; ids: string[]; force: boolean; volumes: boolean }
  | { kind: 'container-stop'; references: string[]; seconds: number }
  | { kind: 'container-kill'; references: string[]; signal: string }
  | { kind: 'container-wait'; references: string[] }
  | { kind: 'container-inspect'; references: string[] }
  | { kind: 'container-logs'; reference: string; follow: boolean; tail?: number; timestamps: boolean };

/** A parsed command of this module: a store command, help, or exec, which keeps run's exit statuses. */
export type Parsed = StoreCommand | { kind: 'help'; text: string } | { kind: 'exec'; request: ExecRequest };

const HELP = { name: '--help', alias: '-h', help: 'print this help and exit' } as const;
const QUIET = { name: '--quiet', alias: '-q', help: 'print only ids or names' } as const;

const NO_PROGRESS = { name: '--quiet', alias: '-q', help: 'show no progress bar' } as const;
const IMPORT_OPTIONS = [NO_PROGRESS, HELP] as const satisfies readonly OptionSpec[];
const LOAD_OPTIONS = [
  { name: '--input', alias: '-i', value: 'FILE', help: 'the archive to import' },
  NO_PROGRESS,
  HELP,
] as const satisfies readonly OptionSpec[];
const LIST_OPTIONS = [QUIET, HELP] as const satisfies readonly OptionSpec[];
const REMOVE_IMAGE_OPTIONS = [
  { name: '--force', alias: '-f', help: 'remove the image although stopped containers were made from it' },
  HELP,
] as const satisfies readonly OptionSpec[];
const PS_OPTIONS = [
  { name: '--all', alias: '-a', help: 'list exited containers too' },
  { name: '--quiet', alias: '-q', help: 'print only the ids' },
  { name: '--format', value: 'FORMAT', help: "'json': one JSON object a line, with docker's field names" },
  HELP,
] as const satisfies readonly OptionSpec[];
const EXEC_OPTIONS = [
  { name: '--interactive', alias: '-i', help: 'keep standard input attached to the command' },
  { name: '--tty', alias: '-t', help: "allocate a pseudo-terminal from the container's devpts" },
  { name: '--env', alias: '-e', value: 'KEY=VALUE', repeatable: true, help: "set a variable on top of the container's PID 1 environment (repeatable)" },
  { name: '--workdir', alias: '-w', value: 'DIR', help: "the working directory inside the container (default: PID 1's)" },
  { name: '--user', alias: '-u', value: 'USER[:GROUP]', help: "run as this user: a name from the container's /etc/passwd, or a number (default: PID 1's)" },
  { name: '--privileged', help: "give the command every capability that m-docker has, not only the container's" },
  HELP,
] as const satisfies readonly OptionSpec[];
const LOGS_OPTIONS = [
  { name: '--follow', alias: '-f', help: 'keep printing new output until the container exits' },
  { name: '--tail', value: 'N', help: "print only the last N lines ('all' for every line)" },
  { name: '--timestamps', alias: '-t', help: 'start each line with the time m-docker read it (ISO 8601)' },
  HELP,
] as const satisfies readonly OptionSpec[];
const STOP_OPTIONS = [
  { name: '--time', alias: '-t', value: 'SECONDS', help: 'seconds to wait after SIGTERM before SIGKILL (default: 10)' },
  HELP,
] as const satisfies readonly OptionSpec[];
const KILL_OPTIONS = [
  { name: '--signal', alias: '-s', value: 'SIGNAL', help: 'the signal to send, by name or number (default: KILL)' },
  HELP,
] as const satisfies readonly OptionSpec[];
const REMOVE_CONTAINER_OPTIONS = [
  { name: '--force', alias: '-f', help: 'kill a running container first' },
  { name: '--volumes', alias: '-v', help: 'remove its anonymous volumes too' },
  HELP,
] as const satisfies readonly OptionSpec[];
const REMOVE_VOLUME_OPTIONS = [
  { name: '--force', alias: '-f', help: 'remove the volume although stopped containers name it' },
  HELP,
] as const satisfies readonly OptionSpec[];

const IMPORT_HELP = `Usage: m-docker image import [OPTIONS] FILE [NAME[:TAG]]
       m-docker load -i FILE
       m-docker import FILE [NAME[:TAG]]

Import an image from FILE: a docker save archive, an OCI image layout (a tar
or a directory), or a root file system tarball such as docker export writes.
Each may be gzip-compressed. NAME[:TAG] names the image (default tag: latest);
archives that carry names keep them.

Options:
${formatOptions(IMPORT_OPTIONS)}
`;

const IMAGE_LS_HELP = `Usage: m-docker image ls [OPTIONS]

List imported images: repository, tag, id, size and creation time.

Options:
${formatOptions(LIST_OPTIONS)}
`;

const IMAGE_RM_HELP = `Usage: m-docker image rm [OPTIONS] IMAGE...

Remove images by NAME[:TAG], id or id prefix. Layers that no other image
uses are removed too. An image used by a container is kept.

Options:
${formatOptions(REMOVE_IMAGE_OPTIONS)}
`;

const PS_HELP = `Usage: m-docker ps [OPTIONS]

List containers: running ones, or all with -a. A container that ran
without --rm stays listed as exited until 'm-docker rm' removes it.

Options:
${formatOptions(PS_OPTIONS)}
`;

const RM_HELP = `Usage: m-docker rm [OPTIONS] CONTAINER...

Remove containers by name, id or unique id prefix: their writable layer
and record. A running container is refused without -f.

Options:
${formatOptions(REMOVE_CONTAINER_OPTIONS)}
`;

const EXEC_HELP = `Usage: m-docker exec [OPTIONS] CONTAINER COMMAND [ARG...]

Run COMMAND in a running container: in its namespaces, root and cgroups,
with the environment of its PID 1 and the container's capabilities. The
exit status is COMMAND's, with run's statuses for failures (126 cannot
execute, 127 not found).

Options:
${formatOptions(EXEC_OPTIONS)}
`;

const LOGS_HELP = `Usage: m-docker logs [OPTIONS] CONTAINER

Print the stdout and stderr of a container that runs or ran with -d, each
to m-docker's own stdout and stderr.

Options:
${formatOptions(LOGS_OPTIONS)}
`;

const STOP_HELP = `Usage: m-docker stop [OPTIONS] CONTAINER...

Stop containers: SIGTERM to PID 1, then SIGKILL after the timeout. Each
name is printed once its container has exited.

Options:
${formatOptions(STOP_OPTIONS)}
`;

const KILL_HELP = `Usage: m-docker kill [OPTIONS] CONTAINER...

Send a signal to the PID 1 of running containers.

Options:
${formatOptions(KILL_OPTIONS)}
`;

const WAIT_HELP = `Usage: m-docker wait CONTAINER...

Wait until containers exit, and print each exit code.
`;

const INSPECT_HELP = `Usage: m-docker inspect CONTAINER...

Print the containers' records as a JSON array.
`;

const VOLUME_HELP = `Usage: m-docker volume create [NAME]
       m-docker volume ls [-q]
       m-docker volume rm [-f] NAME...

Manage named volumes: directories in the store that containers mount with
-v NAME:/path and that outlive them.
`;

/** Parses a store command, or throws a CliError for an unknown command. */
export function parseStoreCommand(command: string, argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const [sub = '', ...rest] = argv;
  switch (command) {
    case 'image':
      return parseImageSubcommand(sub, rest, globals);
    case 'load':
      return parseLoad(argv, globals);
    case 'import':
      return parseImport(argv, globals, 'm-docker import --help');
    case 'images':
      return parseImageList(argv, globals);
    case 'rmi':
      return parseImageRemove(argv, globals);
    case 'volume':
      return parseVolumeSubcommand(sub, rest, globals);
    case 'ps':
      return parseContainerList(argv, globals);
    case 'rm':
      return parseContainerRemove(argv, globals);
    case 'stop':
      return parseStop(argv, globals);
    case 'logs':
      return parseLogs(argv, globals);
    case 'exec':
      return parseExec(argv, globals);
    case 'kill':
      return parseKill(argv, globals);
    case 'wait':
      return parseReferences(argv, globals, 'wait', WAIT_HELP);
    case 'inspect':
      return parseReferences(argv, globals, 'inspect', INSPECT_HELP);
    default:
      throw new CliError(`unknown command '${command}': see 'm-docker --help'`);
  }
}

function parseImageSubcommand(sub: string, argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  if (sub === 'import') return parseImport(argv, globals, 'm-docker image import --help');
  if (sub === 'load') return parseLoad(argv, globals);
  if (sub === 'ls' || sub === 'list') return parseImageList(argv, globals);
  if (sub === 'rm' || sub === 'remove') return parseImageRemove(argv, globals);
  if (sub === '' || sub === '--help' || sub === '-h') return { kind: 'help', text: `${IMPORT_HELP}\n${IMAGE_LS_HELP}\n${IMAGE_RM_HELP}` };
  throw new CliError(`unknown command 'image ${sub}': use image import, image ls or image rm`);
}

function parseImport(argv: readonly string[], globals: readonly OptionSpec[], helpCommand: string): Parsed {
  const parsed = parseOptions(IMPORT_OPTIONS, argv, { helpCommand, globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: IMPORT_HELP };
  const [file, reference, ...extra] = parsed._;
  if (file === undefined) throw new CliError(`missing FILE: give the archive to import: see '${helpCommand}'`);
  rejectExtra(extra, helpCommand);
  const command: StoreCommand = { kind: 'image-import', file, quiet: parsed['--quiet'] === true };
  if (reference !== undefined) command.reference = reference;
  return command;
}

function parseLoad(argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const parsed = parseOptions(LOAD_OPTIONS, argv, { helpCommand: 'm-docker load --help', globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: IMPORT_HELP };
  rejectExtra(parsed._, 'm-docker load --help');
  const file = parsed['--input'] as string | undefined;
  if (file === undefined) {
    throw new CliError("missing -i FILE: m-docker load reads the archive from a file, not from standard input: see 'm-docker load --help'");
  }
  return { kind: 'image-import', file, quiet: parsed['--quiet'] === true };
}

function parseImageList(argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const parsed = parseOptions(LIST_OPTIONS, argv, { helpCommand: 'm-docker image ls --help', globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: IMAGE_LS_HELP };
  rejectExtra(parsed._, 'm-docker image ls --help');
  return { kind: 'image-ls', quiet: parsed['--quiet'] === true };
}

function parseImageRemove(argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const parsed = parseOptions(REMOVE_IMAGE_OPTIONS, argv, { helpCommand: 'm-docker image rm --help', globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: IMAGE_RM_HELP };
  if (parsed._.length === 0) throw new CliError("missing IMAGE: give the images to remove: see 'm-docker image rm --help'");
  return { kind: 'image-rm', references: parsed._, force: parsed['--force'] === true };
}

function parseVolumeSubcommand(sub: string, argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  if (sub === '' || sub === '--help' || sub === '-h') return { kind: 'help', text: VOLUME_HELP };
  const context = { helpCommand: 'm-docker volume --help', globalOptions: globals };

  if (sub === 'create') {
    const parsed = parseOptions([HELP], argv, context);
    if (parsed['--help'] === true) return { kind: 'help', text: VOLUME_HELP };
    const [name, ...extra] = parsed._;
    rejectExtra(extra, 'm-docker volume --help');
    return name === undefined ? { kind: 'volume-create' } : { kind: 'volume-create', name };
  }
  if (sub === 'ls' || sub === 'list') {
    const parsed = parseOptions(LIST_OPTIONS, argv, context);
    if (parsed['--help'] === true) return { kind: 'help', text: VOLUME_HELP };
    rejectExtra(parsed._, 'm-docker volume --help');
    return { kind: 'volume-ls', quiet: parsed['--quiet'] === true };
  }
  if (sub === 'rm' || sub === 'remove') {
    const parsed = parseOptions(REMOVE_VOLUME_OPTIONS, argv, context);
    if (parsed['--help'] === true) return { kind: 'help', text: VOLUME_HELP };
    if (parsed._.length === 0) throw new CliError("missing NAME: give the volumes to remove: see 'm-docker volume --help'");
    return { kind: 'volume-rm', names: parsed._, force: parsed['--force'] === true };
  }
  throw new CliError(`unknown command 'volume ${sub}': use volume create, volume ls or volume rm`);
}

function parseContainerList(argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const parsed = parseOptions(PS_OPTIONS, argv, { helpCommand: 'm-docker ps --help', globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: PS_HELP };
  rejectExtra(parsed._, 'm-docker ps --help');
  const format = parsed['--format'] as string | undefined;
  if (format !== undefined && format !== 'json') {
    throw new CliError(`invalid --format ${JSON.stringify(format)}: only json is supported: see 'm-docker ps --help'`);
  }
  const command: StoreCommand = { kind: 'container-ls', all: parsed['--all'] === true, quiet: parsed['--quiet'] === true };
  if (format === 'json') command.format = 'json';
  return command;
}

function parseContainerRemove(argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const parsed = parseOptions(REMOVE_CONTAINER_OPTIONS, argv, { helpCommand: 'm-docker rm --help', globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: RM_HELP };
  if (parsed._.length === 0) throw new CliError("missing CONTAINER: give the containers to remove: see 'm-docker rm --help'");
  return { kind: 'container-rm', ids: parsed._, force: parsed['--force'] === true, volumes: parsed['--volumes'] === true };
}

function parseExec(argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const parsed = parseOptions(EXEC_OPTIONS, argv, { helpCommand: 'm-docker exec --help', globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: EXEC_HELP };
  const [reference, ...command] = parsed._;
  if (reference === undefined || command.length === 0) {
    throw new CliError("missing CONTAINER or COMMAND: see 'm-docker exec --help'");
  }
  const request: ExecRequest = {
    reference,
    argv: command,
    interactive: parsed['--interactive'] === true,
    tty: parsed['--tty'] === true,
    env: (parsed['--env'] as string[] | undefined) ?? [],
    privileged: parsed['--privileged'] === true,
  };
  const workdir = parsed['--workdir'] as string | undefined;
  const user = parsed['--user'] as string | undefined;
  if (workdir !== undefined) {
    if (!workdir.startsWith('/')) throw new CliError(`invalid working directory ${JSON.stringify(workdir)}: -w needs an absolute path`);
    request.workdir = workdir;
  }
  if (user === '') throw new CliError("invalid -u \"\": the value is empty: give a user name or uid, or leave -u out for PID 1's user");
  if (user !== undefined) request.user = user;
  return { kind: 'exec', request };
}

function parseLogs(argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const parsed = parseOptions(LOGS_OPTIONS, argv, { helpCommand: 'm-docker logs --help', globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: LOGS_HELP };
  const [reference, ...extra] = requireReferences(parsed._, 'logs');
  rejectExtra(extra, 'm-docker logs --help');
  const command: StoreCommand = {
    kind: 'container-logs',
    reference: reference as string,
    follow: parsed['--follow'] === true,
    timestamps: parsed['--timestamps'] === true,
  };
  const tail = parsed['--tail'] as string | undefined;
  if (tail !== undefined && tail !== 'all') {
    if (!/^\d+$/.test(tail)) throw new CliError(`invalid --tail ${JSON.stringify(tail)}: give a number of lines, or all`);
    command.tail = Number(tail);
  }
  return command;
}

function parseStop(argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const parsed = parseOptions(STOP_OPTIONS, argv, { helpCommand: 'm-docker stop --help', globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: STOP_HELP };
  const time = (parsed['--time'] as string | undefined) ?? '10';
  if (!/^\d+$/.test(time)) throw new CliError(`invalid -t ${JSON.stringify(time)}: give whole seconds, such as 10`);
  return { kind: 'container-stop', references: requireReferences(parsed._, 'stop'), seconds: Number(time) };
}

function parseKill(argv: readonly string[], globals: readonly OptionSpec[]): Parsed {
  const parsed = parseOptions(KILL_OPTIONS, argv, { helpCommand: 'm-docker kill --help', globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: KILL_HELP };
  const signal = (parsed['--signal'] as string | undefined) ?? 'KILL';
  return { kind: 'container-kill', references: requireReferences(parsed._, 'kill'), signal };
}

function parseReferences(argv: readonly string[], globals: readonly OptionSpec[], command: 'wait' | 'inspect', help: string): Parsed {
  const parsed = parseOptions([HELP], argv, { helpCommand: `m-docker ${command} --help`, globalOptions: globals });
  if (parsed['--help'] === true) return { kind: 'help', text: help };
  const references = requireReferences(parsed._, command);
  return command === 'wait' ? { kind: 'container-wait', references } : { kind: 'container-inspect', references };
}

function requireReferences(references: string[], command: string): string[] {
  if (references.length === 0) throw new CliError(`missing CONTAINER: give the containers by name or id: see 'm-docker ${command} --help'`);
  return references;
}

function rejectExtra(extra: readonly string[], helpCommand: string): void {
  if (extra.length > 0) {
    throw new CliError(`unexpected argument ${JSON.stringify(extra[0])}: see '${helpCommand}'`);
  }
}
