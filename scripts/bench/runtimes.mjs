// The runtime combinations of `m-docker run` that the benchmark measures,
// each forced through the launcher's environment variables and checked
// against what really ran.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { traceExecs } from './exec-count.mjs';

/** Forces the runtime of the CLI, and of the init unless INIT_RUNTIME_VARIABLE is set: node or bun. */
export const RUNTIME_VARIABLE = 'M_DOCKER_JS_RUNTIME';
/** Forces the runtime of the init alone. */
export const INIT_RUNTIME_VARIABLE = 'M_DOCKER_INIT_RUNTIME';
/** Set by the launcher for the CLI when it fell back to Node; a stale value would skip the CLI's Bun search. */
const BUN_UNAVAILABLE_VARIABLE = 'M_DOCKER_BUN_UNAVAILABLE';

/**
 * The combinations in report order. `forced` is added to the environment.
 * The launcher only reads M_DOCKER_JS_RUNTIME, so the CLI's runtime comes
 * from it, and the init's from M_DOCKER_INIT_RUNTIME when that is set.
 */
export const COMBINATIONS = [
  { cli: 'bun', init: 'bun', forced: { [RUNTIME_VARIABLE]: 'bun' } },
  { cli: 'node', init: 'bun', forced: { [RUNTIME_VARIABLE]: 'node', [INIT_RUNTIME_VARIABLE]: 'bun' } },
  { cli: 'node', init: 'node', forced: { [RUNTIME_VARIABLE]: 'node' } },
];

/** Returns the label of a combination in table rows: `CLI node, init bun`. */
export function combinationTag(combination) {
  return `CLI ${combination.cli}, init ${combination.init}`;
}

/** Returns the forced variables as a shell prefix: `M_DOCKER_JS_RUNTIME=node M_DOCKER_INIT_RUNTIME=bun`. */
export function describeForced(combination) {
  return Object.entries(combination.forced)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
}

/** Returns `env` without m-docker's runtime variables, plus the combination's forced ones. */
export function environmentFor(combination, env = process.env) {
  const copy = { ...env };
  delete copy[RUNTIME_VARIABLE];
  delete copy[INIT_RUNTIME_VARIABLE];
  delete copy[BUN_UNAVAILABLE_VARIABLE];
  return { ...copy, ...combination.forced };
}

// `m-docker 0.1.0 (cli: bun 1.4.5, init: node v20.20.2)`
const VERSION_LINE = /\(cli: (?<cli>\w+) (?<cliVersion>\S+), init: (?<init>\w+) (?<initVersion>[^)\s]+)\)/;

/**
 * Checks one combination before it is measured. Runs `./m-docker --version`
 * with its environment, then traces one `./m-docker run /bin/true` with
 * strace. Returns `{ tag, forced, skipped: reason }` when either fails, for
 * example without Bun. Otherwise returns the combination with `env`, `tag`,
 * `forced`, `versionOutput`, `cliRuntime`, `initRuntime`, `execs` and
 * `mismatches`. The runtimes are `{ name, version, path }`, with the path
 * only when traced. `execs` is undefined without strace, and then
 * `traceUnavailable` gives the reason. `mismatches` lists the ways in which
 * the runtimes that ran differ from the forced ones.
 */
export function checkCombination(combination, { launcher, runArgs, cwd, scratchDir }) {
  const env = environmentFor(combination);
  const tag = combinationTag(combination);
  const forced = describeForced(combination);

  const version = spawnSync(launcher, ['--version'], { cwd, env, encoding: 'utf8' });
  if (version.status !== 0) {
    const output = `${version.stderr}${version.stdout}`.trim().split('\n').at(-1) || version.error?.message;
    return { tag, forced, skipped: `${forced} ${launcher} --version exited with status ${version.status}: ${output}` };
  }
  const versionOutput = version.stdout.trim().split('\n')[0];
  const reported = VERSION_LINE.exec(versionOutput)?.groups;
  const mismatches = [];
  if (reported === undefined) {
    mismatches.push(`--version printed no "(cli: …, init: …)" part: ${JSON.stringify(versionOutput)}`);
  } else {
    if (reported.cli !== combination.cli) mismatches.push(`--version reports the CLI on ${reported.cli}`);
    if (reported.init !== combination.init) mismatches.push(`--version reports the init on ${reported.init}`);
  }
  const cliRuntime = { name: reported?.cli ?? combination.cli, version: reported?.cliVersion };
  const initRuntime = { name: reported?.init ?? combination.init, version: reported?.initVersion };

  const trace = traceExecs([launcher, ...runArgs], cwd, mkdtempSync(join(scratchDir, 'trace-')), env);
  if (trace.failed) return { tag, forced, skipped: trace.failed };
  if (trace.execs) {
    const javascript = trace.execs.filter((exec) => exec.javascript);
    const [cliExec, initExec] = javascript;
    cliRuntime.path = cliExec?.resolvedPath;
    initRuntime.path = initExec?.resolvedPath;
    const tracedName = (exec) => (exec ? basename(exec.resolvedPath) : 'nothing');
    if (tracedName(cliExec) !== combination.cli) mismatches.push(`strace saw the CLI start as ${tracedName(cliExec)}`);
    if (tracedName(initExec) !== combination.init) mismatches.push(`strace saw the init start as ${tracedName(initExec)}`);
  }
  return {
    ...combination,
    tag,
    forced,
    env,
    versionOutput,
    cliRuntime,
    initRuntime,
    execs: trace.execs,
    traceUnavailable: trace.unavailable,
    mismatches,
  };
}

/**
 * Loads the runtime package's build output: its Bun search (the same one the
 * CLI uses for the init) and the flags m-docker passes to every Bun.
 */
export async function loadRuntimePackage(root) {
  const entry = join(root, 'packages/runtime/dist/index.js');
  try {
    return await import(pathToFileURL(entry).href);
  } catch (error) {
    throw new Error(`cannot load ${entry} (${error.message}): run pnpm build first, or use pnpm bench, which builds`);
  }
}

/**
 * Returns the Bun to start for the `bun -e 0` reference: the one traced in
 * a combination with a Bun CLI, else the one the runtime package finds.
 * Returns `{ path }` or `{ reason }`.
 */
export function referenceBun(checked, runtimePackage, root) {
  const traced = checked.find((combination) => combination.cli === 'bun' && combination.cliRuntime?.path)?.cliRuntime.path;
  if (traced) return { path: traced };
  const lookup = runtimePackage.findBun({ from: pathToFileURL(join(root, 'apps/cli/dist/main.js')).href });
  return lookup.found ? { path: lookup.bun.path } : { reason: lookup.reason };
}

/** Describes the runtimes of a combination in one line: `CLI bun 1.4.5 (/path/bun), init bun 1.4.5 (/path/bun)`. */
export function describeRuntimes(combination) {
  const describe = (role, runtime) => `${role} ${runtime.name} ${runtime.version ?? '(version unknown)'}${runtime.path ? ` (${runtime.path})` : ''}`;
  return `${describe('CLI', combination.cliRuntime)}, ${describe('init', combination.initRuntime)}`;
}
