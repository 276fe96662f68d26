// Counts the JavaScript processes that one `m-docker run` starts, by tracing
// every execve(2) on its path with strace.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';

import { findOnPath } from './machine.mjs';

// `1733342795.123456 execve("/usr/bin/node", ["node", "--", ...], 0x… /* 35 vars */) = 0`
const SUCCESSFUL_EXECVE = /^(?<time>[\d.]+) execve\("(?<path>(?:[^"\\]|\\.)*)", \[(?<args>.*)\], .*\) = 0$/;

const JAVASCRIPT_RUNTIMES = new Set(['node', 'nodejs', 'bun', 'deno']);

/**
 * Runs `argv` once under `strace -f -ff -e trace=execve`, writing one trace
 * file per process into the empty directory `traceDir`, and returns the
 * successful execs in time order as `{ time, pid, path, resolvedPath, argv0, javascript }`.
 * Returns `{ unavailable: reason }` without strace and `{ failed: reason }`
 * when the command fails. A path counts as JavaScript
 * when its file name (after resolving symlinks) is a JavaScript runtime.
 */
export function traceExecs(argv, cwd, traceDir, env = process.env) {
  if (findOnPath('strace') === undefined) return { unavailable: 'strace is not installed' };
  mkdirSync(traceDir, { recursive: true });
  // -ff writes one file per process, so lines of different processes never
  // interleave or split into "unfinished" and "resumed" halves.
  const result = spawnSync('strace', ['-f', '-ff', '-qq', '-ttt', '-e', 'trace=execve', '-o', join(traceDir, 'trace'), ...argv], {
    cwd,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (result.status !== 0) return { failed: `${argv.join(' ')} under strace exited with status ${result.status}: ${result.stderr.trim()}` };

  const files = readdirSync(traceDir)
    .map((name) => ({ name, pid: Number(name.split('.').at(-1)) }))
    .sort((a, b) => a.pid - b.pid);
  const execs = [];
  for (const { name, pid } of files) {
    for (const line of readFileSync(join(traceDir, name), 'utf8').split('\n')) {
      const match = SUCCESSFUL_EXECVE.exec(line);
      if (!match) continue;
      const path = unquote(match.groups.path);
      const argv0 = /^"((?:[^"\\]|\\.)*)"/.exec(match.groups.args)?.[1] ?? '';
      const resolvedPath = resolvePath(path, cwd);
      execs.push({ time: Number(match.groups.time), pid, path, resolvedPath, argv0, javascript: isJavaScriptRuntime(path, resolvedPath) });
    }
  }
  execs.sort((a, b) => a.time - b.time);
  return { execs };
}

// strace writes C escapes; JSON reads the common ones (\\, \", \n) the same way.
function unquote(text) {
  try {
    return JSON.parse(`"${text}"`);
  } catch {
    return text;
  }
}

// Returns the path with symlinks resolved, or as traced if it is gone or
// inside the container's root.
function resolvePath(path, cwd) {
  try {
    return realpathSync(path.startsWith('/') ? path : join(cwd, path));
  } catch {
    return path;
  }
}

function isJavaScriptRuntime(path, resolvedPath) {
  return JAVASCRIPT_RUNTIMES.has(basename(resolvedPath)) || JAVASCRIPT_RUNTIMES.has(basename(path));
}
