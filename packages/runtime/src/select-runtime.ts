import { createRequire } from 'node:module';

import { currentJsRuntime, type JsRuntime } from './current.js';
import { findBun } from './find-bun.js';

/** The values M_DOCKER_JS_RUNTIME and M_DOCKER_INIT_RUNTIME accept; empty or unset means `auto`. */
export const RUNTIME_CHOICES = ['auto', 'node', 'bun'] as const;
export type RuntimeChoice = (typeof RUNTIME_CHOICES)[number];

/**
 * Flags for every Bun that m-docker starts. Without them Bun reads
 * bunfig.toml from the working directory (which can preload code into a
 * process that runs as root), loads .env files into the environment, and
 * may install missing packages at run time.
 */
export const BUN_FLAGS = ['--config=/dev/null', '--no-env-file', '--no-install'] as const;

/** A runtime ready to start a script: its executable and version. */
export interface SelectedRuntime {
  runtime: JsRuntime;
  executable: string;
  /** `1.4.5` for Bun, `20.20.2` for Node; undefined for a node found on PATH, whose version was not asked. */
  version: string | undefined;
  /** The reason `auto` fell back to Node, for one debug line; undefined otherwise. */
  fallbackReason?: string;
}

/** A runtime was requested by name but cannot be used. */
export class RuntimeUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeUnavailableError';
  }
}

export interface SelectRuntimeOptions {
  choice: RuntimeChoice;
  /** The file that npm packages are resolved from: the CLI bundle's import.meta.url. */
  from: string;
  /** Set when the launcher already looked for Bun and found none, so the search is not repeated. */
  knownBunUnavailable?: string | undefined;
  path?: string | undefined;
}

/** Returns the runtime choice that an environment variable's value names, or throws with the accepted values. */
export function parseRuntimeChoice(name: string, value: string | undefined): RuntimeChoice {
  if (value === undefined || value === '') return 'auto';
  const choice = RUNTIME_CHOICES.find((candidate) => candidate === value);
  if (choice === undefined) {
    throw new RuntimeUnavailableError(`invalid ${name} ${JSON.stringify(value)}: use auto, node or bun, or leave it unset`);
  }
  return choice;
}

/**
 * Picks the runtime for a process: the one requested, or with `auto` Bun
 * when a usable one exists and Node otherwise. The runtime of the calling
 * process is reused without a search when it matches.
 */
export function selectRuntime(options: SelectRuntimeOptions): SelectedRuntime {
  const current = currentJsRuntime();
  const requested = options.choice === 'auto' ? 'bun' : options.choice;
  if (requested === current) return describeCurrent(current);

  if (requested === 'bun') {
    const lookup =
      options.knownBunUnavailable === undefined
        ? findBun({ from: options.from, path: options.path })
        : ({ found: false, reason: options.knownBunUnavailable } as const);
    if (lookup.found) return { runtime: 'bun', executable: lookup.bun.path, version: lookup.bun.version };
    if (options.choice === 'bun') {
      throw new RuntimeUnavailableError(
        `Bun was requested, but no usable Bun 1.4 or later was found (${lookup.reason}): install Bun, or choose node`,
      );
    }
    return { ...findNode(options.path), fallbackReason: lookup.reason };
  }
  return findNode(options.path);
}

/** Returns the arguments that start `script` under `runtime`: Bun's safety flags, or Node's `--` that ends its own options. */
export function scriptArguments(runtime: JsRuntime, script: string, args: readonly string[] = []): string[] {
  return runtime === 'bun' ? [...BUN_FLAGS, script, ...args] : ['--', script, ...args];
}

function describeCurrent(runtime: JsRuntime): SelectedRuntime {
  const version = runtime === 'bun' ? (process.versions.bun as string) : process.versions.node;
  return { runtime, executable: process.execPath, version };
}

// Under Bun, Node is found on PATH; its version is not asked, because
// m-docker's package requires Node 20 or later wherever it is installed.
function findNode(searchPath = process.env.PATH ?? ''): SelectedRuntime {
  // Required here: under Bun, importing node:fs would cost about 3 ms of every start.
  const { accessSync, constants, statSync } = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
  if (currentJsRuntime() === 'node') return describeCurrent('node');
  for (const folder of searchPath.split(':')) {
    if (folder === '') continue;
    const candidate = `${folder}/node`;
    try {
      accessSync(candidate, constants.X_OK);
      // access(2) grants X_OK on a folder too, which `command -v node` skips.
      if (statSync(candidate).isFile()) return { runtime: 'node', executable: candidate, version: undefined };
    } catch {
      // Not in this folder.
    }
  }
  throw new RuntimeUnavailableError('Node was requested, but no node was found on PATH: install Node 20 or later');
}

/**
 * Returns the executable and arguments that start `script` under the
 * runtime that M_DOCKER_JS_RUNTIME names (`auto` when unset). Tests use it
 * to run their fixtures, and so the init, under each runtime in turn.
 */
export function scriptCommand(
  script: string,
  args: readonly string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): { executable: string; args: string[]; runtime: JsRuntime } {
  const choice = parseRuntimeChoice('M_DOCKER_JS_RUNTIME', env.M_DOCKER_JS_RUNTIME);
  const selected = selectRuntime({ choice, from: import.meta.url, path: env.PATH });
  return { executable: selected.executable, args: scriptArguments(selected.runtime, script, args), runtime: selected.runtime };
}
