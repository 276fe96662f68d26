#!/usr/bin/env node
// `pnpm bench` measures the start-up latency and peak RSS of `m-docker run`
// beside `node -e 0`, unshare(1) and runc. It also prints the init's own work,
// the phase timeline, the ipc decoder's throughput and PASS/FAIL lines for
// the targets. docs/benchmarks.md explains each number. A failed target still
// exits 0, because this is a report. Exit status 1 means it could not measure.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { startBackgroundLoad } from './bench/background-load.mjs';
import { byteSize, ms } from './bench/format.mjs';
import { runIpcThroughput } from './bench/ipc-throughput.mjs';
import { describeMachine, findOnPath } from './bench/machine.mjs';
import { gnuTimeAvailable, measureLatencies, measurePeakRss, summarize } from './bench/measure.mjs';
import { printLatency, printMachine, printTargets, printThroughput, printTimeline } from './bench/report.mjs';
import { prepareRunc } from './bench/runc-bundle.mjs';
import { detectRuntimeVariants } from './bench/runtimes.mjs';
import { collectDebugRuns, summarizeTimeline } from './bench/timeline.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const LAUNCHER = './m-docker';
const RUN_ARGS = ['run', '/bin/true'];

/** run latency <= LATENCY_FACTOR x `node -e 0` */
const LATENCY_FACTOR = 2.5;
/** median initMs < INIT_WORK_LIMIT_MS */
const INIT_WORK_LIMIT_MS = 10;
/** decoder throughput >= DECODER_FRACTION x socketpair copy, at every size */
const DECODER_FRACTION = 0.5;
/** JavaScript processes started by one `m-docker run`: the CLI and the init */
const MAX_JAVASCRIPT_STARTS = 2;

// Above this average of other work, in cores, the report warns that the
// times include waiting for a CPU. The threshold is a judgment call, not a
// measured limit.
const BUSY_MACHINE_CORES = 0.2;

// Without these flags Bun reads bunfig.toml and .env files from the working
// directory. The launcher passes them, so the reference runs do too.
const BUN_FLAGS = ['--config=/dev/null', '--no-env-file', '--no-install'];

// Environment variables that change every Node start-up. NODE_EXTRA_CA_CERTS
// makes Node read and parse a certificate file before any script runs. When
// one is set, the report repeats the Node-sensitive rows without it, so that
// the numbers can be compared with a machine that does not set it.
const NODE_STARTUP_VARIABLES = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'];

/** Returns `{ names, suffix, strip(env) }` for the start-up variables set here, or undefined if none is. */
function detectStartupVariables(env = process.env) {
  const names = NODE_STARTUP_VARIABLES.filter((name) => env[name]);
  if (names.length === 0) return undefined;
  const strip = (variables) => {
    const copy = { ...variables };
    for (const name of names) delete copy[name];
    return copy;
  };
  return { names, suffix: `without ${names.join(', ')}`, strip };
}

const USAGE = `usage: node scripts/bench.mjs [--runs N] [--rss-runs N]

  --runs N      measured runs per command, and debug runs per runtime for the timeline (default 20)
  --rss-runs N  further runs per command under GNU time for peak RSS (default 5)
`;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '20' },
      'rss-runs': { type: 'string', default: '5' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const runs = Number(values.runs);
  const rssRuns = Number(values['rss-runs']);
  for (const [name, value] of [
    ['--runs', runs],
    ['--rss-runs', rssRuns],
  ]) {
    if (!Number.isInteger(value) || value < 1) {
      process.stderr.write(`bench: invalid ${name} value: expected a whole number of runs, at least 1\n${USAGE}`);
      process.exit(2);
    }
  }
  return { runs, rssRuns };
}

function progress(message) {
  process.stderr.write(`bench: ${message}\n`);
}

// Cleanup runs on every exit path. The runc bundle and its state live in the
// scratch directory, and a signal handler can run between two measured runs.
const cleanupSteps = [];
function cleanup() {
  while (cleanupSteps.length > 0) {
    try {
      cleanupSteps.pop()();
    } catch (error) {
      process.stderr.write(`bench: cleanup failed: ${error.message}\n`);
    }
  }
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    cleanup();
    process.exit(128 + constants.signals[signal]);
  });
}

/** Returns the variant's label for table rows: `default: bun` or `M_DOCKER_JS_RUNTIME=node`. */
function variantTag(variant) {
  if (variant.name !== 'default') return variant.name;
  const names = [...new Set(variant.runtimes.map((runtime) => runtime.name))];
  return names.length > 0 ? `default: ${names.join('+')}` : 'default';
}

/** Returns the distinct runtimes of all variants by resolved path, with `node` on PATH always included. */
function collectRuntimes(variants, nodePath) {
  const runtimes = new Map([[nodePath, { name: 'node', path: nodePath }]]);
  for (const variant of variants) {
    for (const runtime of variant.runtimes) {
      if (!runtimes.has(runtime.path)) runtimes.set(runtime.path, { name: runtime.name, path: runtime.path });
    }
  }
  return [...runtimes.values()];
}

// The argv that starts `script` under a runtime as the launcher would.
function runtimeArgv(runtime, ...rest) {
  return runtime.name === 'bun' ? [runtime.path, ...BUN_FLAGS, ...rest] : [runtime.path, '--', ...rest];
}

/**
 * Builds the measured commands: `main` for the latency table, `components`
 * for the start-up parts, and `breakdowns`, the differences of medians that
 * split each variant's start-up.
 */
function buildBenchmarks({ variants, runtimes, runc, scratchDir, startupVariables }) {
  const main = [];
  const components = [{ label: "/bin/true (this script's own spawn cost)", argv: () => ['/bin/true'] }];
  const breakdowns = [];

  for (const variant of variants) {
    const tag = variantTag(variant);
    main.push({ label: `m-docker run /bin/true [${tag}]`, argv: () => [LAUNCHER, ...RUN_ARGS], cwd: ROOT, env: variant.env });
    if (startupVariables) {
      main.push({
        label: `m-docker run /bin/true [${tag}, ${startupVariables.suffix}]`,
        argv: () => [LAUNCHER, ...RUN_ARGS],
        cwd: ROOT,
        env: startupVariables.strip(variant.env),
      });
    }
    components.push({ label: `./m-docker --version [${tag}]`, argv: () => [LAUNCHER, '--version'], cwd: ROOT, env: variant.env });
  }
  // A reference start-up per runtime. The working directory is the empty
  // scratch directory, so no project file is read.
  for (const runtime of runtimes) {
    main.push({ label: `${runtime.name} -e 0`, argv: () => [runtime.path, '-e', '0'], cwd: scratchDir });
    if (startupVariables && runtime.name === 'node') {
      const env = startupVariables.strip(process.env);
      main.push({ label: `node -e 0 [${startupVariables.suffix}]`, argv: () => [runtime.path, '-e', '0'], cwd: scratchDir, env });
    }
    components.push({ label: `${runtime.name} apps/cli/dist/main.js --version`, argv: () => runtimeArgv(runtime, 'apps/cli/dist/main.js', '--version'), cwd: ROOT });
  }
  main.push({
    label: 'unshare --uts --pid --mount --net --ipc --fork --mount-proc /bin/true',
    argv: () => ['unshare', '--uts', '--pid', '--mount', '--net', '--ipc', '--fork', '--mount-proc', '/bin/true'],
  });
  if (runc.available) main.push({ label: 'runc run /bin/true (busybox bundle)', argv: runc.argv });

  const koffi = resolveKoffi();
  if (koffi) {
    const node = runtimes.find((runtime) => runtime.name === 'node');
    components.push({ label: 'node -e "require(koffi)"', argv: () => [node.path, '-e', `require(${JSON.stringify(koffi)})`], cwd: scratchDir });
    breakdowns.push({
      group: '[node]',
      title: 'koffi and its native addon',
      formula: 'require(koffi) - node -e 0',
      minuend: 'node -e "require(koffi)"',
      subtrahend: 'node -e 0',
    });
  }

  for (const variant of variants) {
    const tag = variantTag(variant);
    // The CLI's runtime, or node on PATH when strace could not tell.
    const cli = variant.runtimes[0]?.name ?? 'node';
    const version = `./m-docker --version [${tag}]`;
    const direct = `${cli} apps/cli/dist/main.js --version`;
    const group = `[${tag}]`;
    breakdowns.push(
      { group, title: 'CLI module loading and option parsing', formula: `main.js --version - ${cli} -e 0`, minuend: direct, subtrahend: `${cli} -e 0` },
      { group, title: 'sh launcher (runtime search, readlink)', formula: './m-docker --version - main.js --version', minuend: version, subtrahend: direct },
      { group, title: 'run beyond CLI start-up', formula: 'm-docker run - ./m-docker --version', minuend: `m-docker run /bin/true [${tag}]`, subtrahend: version },
    );
  }
  return { main, components, breakdowns };
}

// koffi is the FFI library that the syscalls package loads under Node (Bun
// uses bun:ffi). Returns its entry file, or undefined when it is not installed.
function resolveKoffi() {
  try {
    return createRequire(join(ROOT, 'packages/syscalls/package.json')).resolve('koffi');
  } catch {
    return undefined;
  }
}

// One timeline per variant as the user runs it, and one without the Node
// start-up variables for each variant whose CLI runs under Node.
function timelineRuns(variants, startupVariables) {
  const runs = [];
  for (const variant of variants) {
    const tag = variantTag(variant);
    runs.push({ tag, env: variant.env, stripped: false });
    const cliRuntime = variant.runtimes[0]?.name ?? 'node';
    if (startupVariables && cliRuntime === 'node') {
      runs.push({ tag: `${tag}, ${startupVariables.suffix}`, env: startupVariables.strip(variant.env), stripped: true });
    }
  }
  return runs;
}

function checkTargets({ variants, latencies, timelines, throughput, startupVariables }) {
  const checks = [];
  const median = (label) => summarize(latencies.get(label)).median;
  const checkLatency = (runLabel, referenceLabel, title) => {
    const run = median(runLabel);
    const reference = median(referenceLabel);
    const limit = LATENCY_FACTOR * reference;
    checks.push({
      status: run <= limit ? 'PASS' : 'FAIL',
      text: `${title} run latency <= ${LATENCY_FACTOR} x ${referenceLabel}: median ${ms(run)} ms vs ${LATENCY_FACTOR} x ${ms(reference)} = ${ms(limit)} ms (ratio ${(run / reference).toFixed(2)})`,
    });
  };

  for (const variant of variants) {
    const tag = variantTag(variant);
    checkLatency(`m-docker run /bin/true [${tag}]`, 'node -e 0', `[${tag}]`);
    if (startupVariables) {
      const suffix = startupVariables.suffix;
      checkLatency(`m-docker run /bin/true [${tag}, ${suffix}]`, `node -e 0 [${suffix}]`, `[${tag}, ${suffix}]`);
    }
  }

  // The init starts with an empty environment, so only the timelines taken
  // as the user runs m-docker are checked.
  for (const { tag, timeline, stripped } of timelines) {
    if (stripped) continue;
    const initMs = timeline.initMs;
    if (initMs) {
      checks.push({
        status: initMs.median < INIT_WORK_LIMIT_MS ? 'PASS' : 'FAIL',
        text: `[${tag}] init work < ${INIT_WORK_LIMIT_MS} ms: median initMs ${initMs.median.toFixed(2)} ms`,
      });
    } else {
      checks.push({ status: 'FAIL', text: `[${tag}] init work < ${INIT_WORK_LIMIT_MS} ms: no initMs in the debug log` });
    }
  }

  if (throughput.available) {
    for (const row of throughput.rows) {
      const ratio = row.decoderMBps / row.copyMBps;
      checks.push({
        status: ratio >= DECODER_FRACTION ? 'PASS' : 'FAIL',
        text: `decoder >= ${DECODER_FRACTION} x socketpair copy at ${byteSize(row.payloadBytes)}: ${row.decoderMBps.toFixed(0)} vs ${row.copyMBps.toFixed(0)} MB/s (${ratio.toFixed(2)})`,
      });
    }
  } else {
    checks.push({ status: 'SKIP', text: `decoder >= ${DECODER_FRACTION} x socketpair copy: ${throughput.reason}` });
  }

  for (const variant of variants) {
    const tag = variantTag(variant);
    const title = `[${tag}] at most ${MAX_JAVASCRIPT_STARTS} JavaScript process starts per run`;
    if (variant.unavailable) {
      checks.push({ status: 'SKIP', text: `${title}: not counted, ${variant.unavailable}` });
      continue;
    }
    const starts = variant.execs.filter((exec) => exec.javascript);
    const chain = variant.execs.map((exec) => `${exec.path}${exec.javascript ? ' (JS)' : ''}`).join(', ');
    checks.push({
      status: starts.length <= MAX_JAVASCRIPT_STARTS ? 'PASS' : 'FAIL',
      text: `${title}: ${starts.length}, from strace of every successful execve: ${chain}`,
    });
  }
  return checks;
}

async function main() {
  const options = parseOptions();
  const scratchDir = mkdtempSync(join(tmpdir(), 'm-docker-bench-'));
  cleanupSteps.push(() => rmSync(scratchDir, { recursive: true, force: true }));
  const workDir = mkdtempSync(join(scratchDir, 'cwd-'));

  const machine = describeMachine();
  const nodePath = findOnPath('node');
  if (nodePath === undefined) throw new Error('node is not on PATH: the reference `node -e 0` and the launcher need it');
  if (findOnPath('unshare') === undefined) throw new Error('unshare is not installed: install util-linux');

  const stopBackgroundLoad = startBackgroundLoad();
  progress('tracing which runtimes the launcher starts');
  const { variants, skipped } = detectRuntimeVariants([LAUNCHER, ...RUN_ARGS], ROOT, scratchDir);

  progress('preparing the runc bundle');
  const runc = prepareRunc(scratchDir);
  if (runc.available) cleanupSteps.push(runc.cleanup);

  const runtimes = collectRuntimes(variants, nodePath);
  const startupVariables = detectStartupVariables();
  const benchmarks = buildBenchmarks({ variants, runtimes, runc, scratchDir: workDir, startupVariables });
  const all = [...benchmarks.main, ...benchmarks.components];
  progress(`measuring latency: ${all.length} commands, 1 warm-up + ${options.runs} runs each`);
  const latencies = await measureLatencies(all, options.runs);
  let peaks;
  if (gnuTimeAvailable()) {
    progress(`measuring peak RSS: ${options.rssRuns} runs each`);
    peaks = await measurePeakRss(benchmarks.main, options.rssRuns, scratchDir);
  }

  const debugArgv = [LAUNCHER, '--debug', ...RUN_ARGS];
  const timelines = [];
  for (const { tag, env, stripped } of timelineRuns(variants, startupVariables)) {
    progress(`collecting the debug timeline [${tag}]: ${options.runs} runs`);
    timelines.push({ tag, stripped, timeline: summarizeTimeline(await collectDebugRuns(debugArgv, ROOT, env, options.runs)) });
  }

  progress('running the ipc throughput benchmark');
  const throughput = runIpcThroughput(ROOT);

  printMachine({
    machine,
    variants: variants.map((variant) => ({ ...variant, tag: variantTag(variant) })),
    skippedVariants: skipped,
    options,
    background: stopBackgroundLoad(),
    busyThresholdCores: BUSY_MACHINE_CORES,
    gnuTime: gnuTimeAvailable(),
    startupVariables,
  });
  printLatency({ benchmarks, latencies, peaks, runc, breakdowns: benchmarks.breakdowns });
  for (const { tag, timeline } of timelines) {
    printTimeline({ tag, timeline, runs: options.runs, command: debugArgv.join(' ') });
  }
  printThroughput(throughput);
  printTargets(checkTargets({ variants, latencies, timelines, throughput, startupVariables }));
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench: ${error.stack ?? error}\n`);
  process.exitCode = 1;
} finally {
  cleanup();
}
