import { LOG_LEVELS, type LogLevel } from '@m-docker/log';

import { CliError } from './cli-error.js';
import type { ExecRequest } from './exec/exec-container.js';
import { formatOptions, type OptionSpec, parseOptions } from './option-parser.js';
import { parseCapabilityOptions } from './run/capability-options.js';
import type { RunRequest } from './run/container-config.js';
import { parseResourceOptions, RESOURCE_OPTIONS } from './run/resource-options.js';
import { resolveRootDir } from './store/root-dir.js';
import { parseStoreCommand, type StoreCommand } from './store-command-line.js';

const GLOBAL_OPTIONS = [
  { name: '--root', value: 'DIR', help: 'where images, containers and volumes are kept (default: $M_DOCKER_ROOT or /var/lib/m-docker)' },
  { name: '--log-level', value: 'LEVEL', help: `least severe log level printed to stderr: ${LOG_LEVELS.join(', ')} (default: warn)` },
  { name: '--debug', alias: '-D', help: 'log every step of starting a container with timings (same as --log-level debug)' },
  { name: '--version', alias: '-v', help: 'print the version and the runtimes that run the CLI and the init, and exit' },
  { name: '--help', alias: '-h', help: 'print this help and exit' },
] as const satisfies readonly OptionSpec[];

const RUN_OPTIONS = [
  { name: '--interactive', alias: '-i', help: 'keep standard input attached to the container' },
  { name: '--tty', alias: '-t', help: 'give the container this terminal (TERM=xterm is set)' },
  { name: '--hostname', value: 'NAME', help: "the container's hostname (default: the first 12 characters of its id)" },
  { name: '--detach', alias: '-d', help: "run in the background and print the container's id; see 'm-docker logs'" },
  { name: '--name', value: 'NAME', help: 'a name for the container, unique in the store (default: a generated one such as brave_turing)' },
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
  {
    name: '--workdir',
    alias: '-w',
    value: 'DIR',
    help: "the working directory inside the container (absolute path; default: the image's, or /); created if missing in the container's own root",
  },
  { name: '--image', value: 'NAME[:TAG]', help: "run in a new root file system made from an imported image (see 'm-docker image ls')" },
  { name: '--rootfs', value: 'DIR', help: 'run in a new root file system made from a directory, which stays unchanged' },
  { name: '--entrypoint', value: 'COMMAND', help: "replace the image's entrypoint; '' clears it" },
  { name: '--user', alias: '-u', value: 'USER[:GROUP]', help: "run as this user and group: names from the container's /etc/passwd and /etc/group, or numbers" },
  {
    name: '--volume',
    alias: '-v',
    value: 'SRC:DEST[:ro]',
    repeatable: true,
    help: 'mount a host path (absolute, or starting with .) or a named volume at DEST; DEST alone makes an anonymous volume (repeatable)',
  },
  { name: '--tmpfs', value: 'DEST[:OPTIONS]', repeatable: true, help: 'mount a new tmpfs at DEST; OPTIONS such as ro,size=64m,mode=1777 (repeatable)' },
  { name: '--shm-size', value: 'SIZE', help: 'size of /dev/shm in bytes, or with a unit k, m or g (default: 64m)' },
  { name: '--read-only', help: "mount the container's root file system read-only" },
  { name: '--rm', help: "remove the container's writable layer and anonymous volumes when it exits" },
  {
    name: '--init',
    help: 'run tini as PID 1: it starts COMMAND, passes signals on to it and reaps zombies (tini: $M_DOCKER_TINI, else /usr/bin/tini-static)',
  },
  {
    name: '--cap-add',
    value: 'CAP',
    repeatable: true,
    help: "add a Linux capability to docker's default set, such as NET_ADMIN or CAP_NET_ADMIN; ALL for every one (repeatable)",
  },
  {
    name: '--cap-drop',
    value: 'CAP',
    repeatable: true,
    help: 'drop a capability from the default set; ALL drops every one but those of --cap-add (repeatable)',
  },
  { name: '--privileged', help: 'give the container every capability that m-docker has, whatever --cap-add and --cap-drop say' },
  ...RESOURCE_OPTIONS,
  { name: '--help', alias: '-h', help: 'print this help and exit' },
] as const satisfies readonly OptionSpec[];

const MAIN_HELP = `Usage: m-docker [OPTIONS] COMMAND

Run commands in Linux containers: new namespaces, configured over a socketpair.

Options:
${formatOptions(GLOBAL_OPTIONS)}

Commands:
  run [OPTIONS] [COMMAND [ARG...]]   run COMMAND as PID 1 of new UTS, PID, mount, network and IPC namespaces
  image import FILE [NAME[:TAG]]     import a docker save archive, an OCI layout or a root file system tarball
  image ls                           list imported images
  image rm IMAGE...                  remove images
  volume create|ls|rm                manage named volumes
  ps [-a]                            list containers
  stop|kill|wait|inspect CONTAINER   stop, signal, wait for or describe containers
  logs [-f] CONTAINER                print the output of a container run with -d
  exec CONTAINER COMMAND [ARG...]    run COMMAND in a running container
  rm [-f] CONTAINER...               remove containers and their writable layers

docker's spellings work too: load -i FILE, import FILE [NAME[:TAG]], images, rmi.
Run 'm-docker COMMAND --help' for a command's options and examples.
`;

const RUN_HELP = `Usage: m-docker run [OPTIONS] COMMAND [ARG...]
       m-docker run [OPTIONS] --image NAME[:TAG] [COMMAND [ARG...]]

Run COMMAND as PID 1 of new UTS, PID, mount, network and IPC namespaces, with
its own /proc and a cgroup of its own, and exit with COMMAND's status.
Without --image or --rootfs it runs on this machine's root file system; with
either, in a root file system of its own (an overlay whose writable layer is
the container's).

Options:
${formatOptions(RUN_OPTIONS)}

Examples:
  # A shell in new namespaces: it is PID 1 and sees only its own processes
  m-docker run /bin/sh -c 'echo $$; hostname; ps -e -o pid,comm'

  # Pick the hostname, set variables, and start in /tmp
  m-docker run --hostname box -e GREETING=hello -w /tmp sh -c 'echo $GREETING from $(hostname) in $PWD'

  # Interactive shell on this terminal
  m-docker run -it /bin/bash

  # An imported image, with a host directory read-only and a named volume
  m-docker run --rm --image busybox -v /srv/site:/site:ro -v cache:/cache ls /site /cache

  # At most 256 MiB of memory, half a CPU and 100 processes
  m-docker run -m 256m --cpus 0.5 --pids-limit 100 /bin/sh -c 'cat /proc/self/cgroup'

  # docker's default capabilities without NET_RAW, plus NET_ADMIN
  m-docker run --cap-drop NET_RAW --cap-add NET_ADMIN /bin/sh -c 'grep Cap /proc/self/status'

Options after COMMAND belong to COMMAND: in 'm-docker run ls -l', -l goes to ls.
With --image, COMMAND replaces the image's Cmd and follows its Entrypoint.
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
  | { kind: 'run'; request: RunRequest }
  | { kind: 'store'; command: StoreCommand; root: string; logLevel: LogLevel }
  | { kind: 'exec'; request: ExecRequest; root: string; logLevel: LogLevel };

/** Parses m-docker's command line; throws a CliError (status 125) naming the option or value and where to look. */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const global = parseOptions(GLOBAL_OPTIONS, argv, { helpCommand: 'm-docker --help' });
  if (global['--help'] === true || (global._.length === 0 && global['--version'] !== true)) {
    return { kind: 'help', text: MAIN_HELP };
  }
  if (global['--version'] === true) return { kind: 'version' };

  const logLevel = global['--debug'] === true ? 'debug' : parseLogLevel(global['--log-level']);
  const root = resolveRootDir(global['--root'] as string | undefined);
  const [command, ...rest] = global._ as [string, ...string[]];
  if (command === 'run') return parseRun(rest, root, logLevel);

  const store = parseStoreCommand(command, rest, GLOBAL_OPTIONS);
  if (store.kind === 'help') return store;
  if (store.kind === 'exec') return { kind: 'exec', request: store.request, root, logLevel };
  return { kind: 'store', command: store, root, logLevel };
}

function parseRun(argv: readonly string[], root: string, logLevel: LogLevel): ParsedCommandLine {
  const run = parseOptions(RUN_OPTIONS, argv, { helpCommand: 'm-docker run --help', globalOptions: GLOBAL_OPTIONS });
  if (run['--help'] === true) return { kind: 'help', text: RUN_HELP };

  const [program, ...args] = run._;
  const image = run['--image'] as string | undefined;
  if (program === undefined && image === undefined) {
    throw new CliError("missing COMMAND: give the program to run, or --image NAME to run an image's command: see 'm-docker run --help'");
  }

  const request: RunRequest = {
    command: program,
    args,
    interactive: run['--interactive'] === true,
    tty: run['--tty'] === true,
    env: (run['--env'] as string[] | undefined) ?? [],
    envFiles: (run['--env-file'] as string[] | undefined) ?? [],
    volumes: (run['--volume'] as string[] | undefined) ?? [],
    tmpfs: (run['--tmpfs'] as string[] | undefined) ?? [],
    readOnly: run['--read-only'] === true,
    detach: run['--detach'] === true,
    remove: run['--rm'] === true,
    init: run['--init'] === true,
    root,
    logLevel,
    cgroup: parseResourceOptions(run, process.env),
    capabilities: parseCapabilityOptions(
      (run['--cap-add'] as string[] | undefined) ?? [],
      (run['--cap-drop'] as string[] | undefined) ?? [],
      run['--privileged'] === true,
    ),
  };
  const optional = {
    hostname: run['--hostname'],
    name: run['--name'],
    workdir: run['--workdir'],
    image,
    rootfs: run['--rootfs'],
    entrypoint: run['--entrypoint'],
    user: run['--user'],
    shmSize: run['--shm-size'],
  } as const;
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) request[key as keyof typeof optional] = value as string;
  }
  return { kind: 'run', request };
}

function parseLogLevel(value: unknown): LogLevel {
  if (value === undefined) return 'warn';
  const level = LOG_LEVELS.find((candidate) => candidate === value);
  if (level === undefined) {
    throw new CliError(`invalid --log-level ${JSON.stringify(value)}: use one of ${LOG_LEVELS.join(', ')}`);
  }
  return level;
}

