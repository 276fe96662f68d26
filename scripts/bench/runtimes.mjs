// The JavaScript runtimes that run the CLI and the init, found by tracing
// real runs, and the runtime variants of `m-docker run` to measure.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { basename, join } from 'node:path';

import { traceExecs } from './exec-count.mjs';

/**
 * Environment variable that forces the runtime of the CLI and the init: node
 * or bun. When it is unset, the launcher picks Bun if it finds a usable one.
 */
export const RUNTIME_VARIABLE = 'M_DOCKER_JS_RUNTIME';

const FORCED_RUNTIMES = ['node', 'bun'];

/** Returns `env` without the variables that choose m-docker's runtime, so that the launcher makes its own choice. */
export function environmentForDefault(env = process.env) {
  const copy = { ...env };
  delete copy[RUNTIME_VARIABLE];
  delete copy.M_DOCKER_INIT_RUNTIME;
  return copy;
}

function versionOf(executable) {
  const result = spawnSync(executable, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim().split('\n')[0] : 'version unknown';
}

/**
 * Traces `launcherArgv` once as the launcher chooses and once with each
 * forced runtime. Returns `{ variants, skipped }`: the distinct variants as
 * `{ name, env, execs, runtimes: [{ role, path, name, version }] }`, and
 * `{ name, reason }` for each forced run that failed or started the same
 * runtimes as an earlier variant. Without strace, the default variant alone
 * comes back, with `unavailable` set and no runtimes. Throws when the
 * launcher's default run fails.
 */
export function detectRuntimeVariants(launcherArgv, cwd, scratchDir) {
  const candidates = [{ name: 'default', env: environmentForDefault() }];
  for (const runtime of FORCED_RUNTIMES) {
    candidates.push({ name: `${RUNTIME_VARIABLE}=${runtime}`, env: { ...environmentForDefault(), [RUNTIME_VARIABLE]: runtime } });
  }

  const variants = [];
  const skipped = [];
  const seen = new Map();
  const versions = new Map();
  for (const candidate of candidates) {
    const trace = traceExecs(launcherArgv, cwd, mkdtempSync(join(scratchDir, 'trace-')), candidate.env);
    if (trace.unavailable) {
      return { variants: [{ ...candidate, unavailable: trace.unavailable, runtimes: [] }], skipped };
    }
    if (trace.failed) {
      if (candidate.name === 'default') throw new Error(trace.failed);
      skipped.push({ name: candidate.name, reason: trace.failed });
      continue;
    }

    const javascript = trace.execs.filter((exec) => exec.javascript);
    const runtimes = javascript.map((exec, index) => {
      const path = exec.resolvedPath;
      if (!versions.has(path)) versions.set(path, versionOf(path));
      const role = ['CLI', 'init'][index] ?? `process ${index + 1}`;
      return { role, path, name: basename(path), version: versions.get(path) };
    });
    const key = runtimes.map((runtime) => runtime.path).join('\u0000');
    if (seen.has(key)) {
      skipped.push({ name: candidate.name, reason: `starts the same runtimes as ${seen.get(key)}` });
      continue;
    }
    seen.set(key, candidate.name);
    variants.push({ ...candidate, execs: trace.execs, runtimes });
  }
  return { variants, skipped };
}

/** Describes a variant's runtimes in one line: `CLI and init: node v20.20.2 (/usr/bin/node)`. */
export function describeRuntimes(variant) {
  if (variant.runtimes.length === 0) return variant.unavailable ? `not traced: ${variant.unavailable}` : 'no JavaScript process was started';
  const same = variant.runtimes.every((runtime) => runtime.path === variant.runtimes[0].path);
  if (same) {
    const roles = variant.runtimes.map((runtime) => runtime.role).join(' and ');
    const { name, version, path } = variant.runtimes[0];
    return `${roles}: ${name} ${version} (${path})`;
  }
  return variant.runtimes.map(({ role, name, version, path }) => `${role}: ${name} ${version} (${path})`).join(', ');
}
