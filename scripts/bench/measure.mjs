// Wall-clock latency and peak resident set size of short-lived commands.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** GNU time, which reports the maximum resident set size that wait4(2) returns. */
export const GNU_TIME = '/usr/bin/time';

/**
 * A command to measure. `argv` is a function so that each run can get fresh
 * arguments, such as a new runc container id.
 * `env` replaces the whole environment when set.
 * `onRun`, when set, receives `{ elapsedMs, stderr }` of every measured run.
 * @typedef {{ label: string, argv: () => string[], cwd?: string, env?: NodeJS.ProcessEnv, onRun?: (run: { elapsedMs: number, stderr: string }) => void }} Benchmark
 */

/**
 * Runs `argv` once to its exit and returns `{ elapsedMs, stderr }`: the
 * wall-clock time in milliseconds, measured around a synchronous spawn
 * (fork, execve, wait), and the command's stderr as text.
 * Throws if the command fails, with its stderr in the message.
 */
export function timeRun(argv, cwd, env) {
  const started = process.hrtime.bigint();
  const result = spawnSync(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  checkResult(argv, result);
  return { elapsedMs, stderr: result.stderr.toString() };
}

/**
 * Runs `argv` once under GNU time and returns its peak resident set size in
 * KiB (`%M`). wait4(2) reports the maximum over the command and every
 * descendant it waited for, each process counted on its own, never a sum.
 */
export function measurePeakRssKiB(argv, cwd, env, scratchDir) {
  const outputFile = join(scratchDir, 'time-output');
  const timedArgv = [GNU_TIME, '-f', '%M', '-o', outputFile, '--', ...argv];
  const result = spawnSync(timedArgv[0], timedArgv.slice(1), { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  checkResult(argv, result);
  const text = readFileSync(outputFile, 'utf8').trim();
  rmSync(outputFile, { force: true });
  const kib = Number(text.split('\n').at(-1));
  if (!Number.isFinite(kib)) throw new Error(`${GNU_TIME} printed ${JSON.stringify(text)} for ${argv.join(' ')}: expected a size in KiB`);
  return kib;
}

export function gnuTimeAvailable() {
  return existsSync(GNU_TIME);
}

function checkResult(argv, result) {
  if (result.error) throw new Error(`cannot run ${argv.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    const stderr = result.stderr?.toString().trim() ?? '';
    const failure = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.status}`;
    throw new Error(`${argv.join(' ')} ${failure}${stderr ? `: ${stderr}` : ''}`);
  }
}

/**
 * Lets pending signal handlers run. The runs use spawnSync, so without this
 * a SIGTERM sent to this process alone would wait for the whole loop.
 */
export function yieldToEventLoop() {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Measures every benchmark `runs` times after one warm-up run each. The runs
 * are interleaved (one run of each benchmark per round), so a slow phase of
 * the machine spreads over all commands instead of landing on one.
 * Resolves to a Map from label to the list of times in milliseconds.
 */
export async function measureLatencies(benchmarks, runs) {
  for (const benchmark of benchmarks) timeRun(benchmark.argv(), benchmark.cwd, benchmark.env);

  const times = new Map(benchmarks.map((benchmark) => [benchmark.label, []]));
  for (let round = 0; round < runs; round++) {
    for (const benchmark of benchmarks) {
      const run = timeRun(benchmark.argv(), benchmark.cwd, benchmark.env);
      times.get(benchmark.label).push(run.elapsedMs);
      benchmark.onRun?.(run);
      await yieldToEventLoop();
    }
  }
  return times;
}

/**
 * Measures memory in `runs` rounds, interleaved like the latencies: each
 * round runs every benchmark once under GNU time and every entry of
 * `perProcess` once. `perProcess` lists `{ label, measure }`, where
 * `measure()` resolves to `{ cliKiB, initKiB }`. Resolves to `{ peaks,
 * perProcess }`, Maps from label to the values of each run in KiB.
 */
export async function measureMemory({ benchmarks, perProcess, runs, scratchDir }) {
  const peaks = new Map(benchmarks.map((benchmark) => [benchmark.label, []]));
  const split = new Map(perProcess.map((task) => [task.label, []]));
  for (let round = 0; round < runs; round++) {
    for (const benchmark of benchmarks) {
      peaks.get(benchmark.label).push(measurePeakRssKiB(benchmark.argv(), benchmark.cwd, benchmark.env, scratchDir));
      await yieldToEventLoop();
    }
    for (const task of perProcess) split.get(task.label).push(await task.measure());
  }
  return { peaks, perProcess: split };
}

/** Returns min, median, p90 (nearest rank) and max of a non-empty list of numbers. */
export function summarize(values) {
  if (values.length === 0) throw new Error('cannot summarize an empty list of measurements');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  const p90 = sorted[Math.ceil(0.9 * sorted.length) - 1];
  return { count: sorted.length, min: sorted[0], median, p90, max: sorted.at(-1) };
}
