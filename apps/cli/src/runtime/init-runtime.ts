import { createRequire } from 'node:module';

import {
  currentJsRuntime,
  parseRuntimeChoice,
  RuntimeUnavailableError,
  type SelectedRuntime,
  selectRuntime,
} from '@m-docker/runtime';

import { CliError } from '../cli-error.js';

/** Set by bin/m-docker when it found no usable Bun and started the CLI under Node. */
export const BUN_UNAVAILABLE_VARIABLE = 'M_DOCKER_BUN_UNAVAILABLE';

/**
 * Picks the runtime of the container's init: M_DOCKER_INIT_RUNTIME, else
 * M_DOCKER_JS_RUNTIME, else Bun when a usable one exists and Node
 * otherwise. Throws a CliError for an invalid value or a requested runtime
 * that is missing.
 */
export function selectInitRuntime(env: NodeJS.ProcessEnv = process.env): SelectedRuntime {
  try {
    const initChoice = env.M_DOCKER_INIT_RUNTIME;
    const name = initChoice ? 'M_DOCKER_INIT_RUNTIME' : 'M_DOCKER_JS_RUNTIME';
    const choice = parseRuntimeChoice(name, initChoice || env.M_DOCKER_JS_RUNTIME);
    return selectRuntime({
      choice,
      from: import.meta.url,
      knownBunUnavailable: env[BUN_UNAVAILABLE_VARIABLE] || undefined,
    });
  } catch (error) {
    if (error instanceof RuntimeUnavailableError) throw new CliError(namedRuntimeError(error.message, env), undefined, { cause: error });
    throw error;
  }
}

/** Returns `bun 1.4.5` or `node v20.20.2` for the CLI's own runtime. */
export function describeCliRuntime(): string {
  return currentJsRuntime() === 'bun' ? `bun ${process.versions.bun}` : `node ${process.version}`;
}

/**
 * Returns `bun 1.4.5` or `node v20.20.2` for a selected runtime. With
 * `askVersion`, a node found on PATH is asked for its version, which costs
 * a Node start-up, so only `--version` does it.
 */
export function describeRuntime(selected: SelectedRuntime, askVersion = false): string {
  let version = selected.version;
  if (version === undefined && askVersion) {
    const { spawnSync } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    version = spawnSync(selected.executable, ['--version'], { encoding: 'utf8', timeout: 10_000 }).stdout?.trim().replace(/^v/, '');
  }
  if (!version) return selected.runtime;
  return selected.runtime === 'node' ? `node v${version}` : `bun ${version}`;
}

// Names the variable that requested the missing runtime, and how to change it.
function namedRuntimeError(message: string, env: NodeJS.ProcessEnv): string {
  const name = env.M_DOCKER_INIT_RUNTIME ? 'M_DOCKER_INIT_RUNTIME' : 'M_DOCKER_JS_RUNTIME';
  return message.replace(/^(Bun|Node) was requested/, `${name}=${env[name]} was set`).replace(/: install Bun, or choose node$/, `: install Bun 1.4 or later, or set ${name}=node`);
}
