#!/usr/bin/env node
// `pnpm bench` measures the start-up latency and peak RSS of `m-docker run`
// for three runtime combinations (Bun CLI and init, Node CLI with a Bun
// init, Node CLI and init) beside runc, unshare(1), `node -e 0` and
// `bun -e 0`. It also prints the init's own work, the phase timelines, the
// ipc decoder's throughput and PASS/FAIL lines for the targets, then
// `m-docker run --image` beside runc on the same root filesystem and the
// import time of an image of about 100 MiB. Section 6 times `run -d`,
// `exec` and `rm -f` and reads the memory that a detached container keeps,
// beside runc.
// docs/benchmarks.md explains each number. A failed target still exits 0,
// because this is a report. Exit status 1 means it could not measure.
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { startBackgroundLoad } from './bench/background-load.mjs';
import { buildBenchmarks } from './bench/benchmarks.mjs';
import { benchCgroupParent, CGROUP_PARENT_VARIABLE } from './bench/cgroup-parent.mjs';
import { printImages } from './bench/image-report.mjs';
import { buildImageBenchmarks, countMounts, leftoverContainers, measureImports, prepareImages } from './bench/images.mjs';
import { runIpcThroughput } from './bench/ipc-throughput.mjs';
import { measureLifecycle, prepareLifecycle } from './bench/lifecycle.mjs';
import { printLifecycle } from './bench/lifecycle-report.mjs';
import { describeMachine, findOnPath } from './bench/machine.mjs';
import { gnuTimeAvailable, measureLatencies, measureMemory } from './bench/measure.mjs';
import { measureProcessPeaks, processPeaksUnavailable } from './bench/process-memory.mjs';
import { printLatency, printMachine, printTargets, printThroughput, printTimelines } from './bench/report.mjs';
import { prepareRunc } from './bench/runc-bundle.mjs';
import { COMBINATIONS, checkCombination, loadRuntimePackage, referenceBun } from './bench/runtimes.mjs';
import { checkTargets } from './bench/targets.mjs';
import { parseDebugRun, summarizeTimeline } from './bench/timeline.mjs';
import { PAYLOAD_PARTS } from './test-images/payload-layer.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const LAUNCHER = './m-docker';
// --rm: every run writes a container record into the store, and the
// bench keeps the store as small as a user's that removes its containers.
const RUN_ARGS = ['run', '--rm', '/bin/true'];

// Above this average of other work, in cores, the report warns that the
// times include waiting for a CPU. The threshold is a judgment call, not a
// measured limit.
const BUSY_MACHINE_CORES = 0.2;

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

const USAGE = `usage: node scripts/bench.mjs [--runs N] [--rss-runs N] [--import-runs N] [--only SECTIONS]

  --runs N         measured runs per command, including the debug runs behind the timelines,
                   and rounds of run -d, exec and rm -f in section 6 (default 30)
  --rss-runs N     further runs per command for peak RSS, under GNU time and under strace,
                   and memory rounds of detached containers in section 6 (default 5)
  --import-runs N  imports of the 100 MiB image per row, each into a new store (default 5)
  --only SECTIONS  print only these sections, a comma-separated list of 1 to 6 (default all);
                   the sections they take numbers from are measured too, but not printed
`;

// The report's sections, and the sections whose measurements each one
// uses: section 2's debug runs and section 5's image rows are timed in the
// rounds of section 1, section 5 compares with section 1's rows, and the
// targets read sections 1 to 3.
const SECTIONS = [1, 2, 3, 4, 5, 6];
const SECTION_INPUTS = { 2: [1], 4: [1, 2, 3], 5: [1] };

// Returns `{ printed, measured }`, sets of section numbers, from the
// value of --only.
function selectSections(only) {
  const printed = new Set(only === undefined ? SECTIONS : only.split(',').map((part) => Number(part.trim())));
  const measured = new Set(printed);
  for (const section of printed) for (const input of SECTION_INPUTS[section] ?? []) measured.add(input);
  return { printed, measured };
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '30' },
      'rss-runs': { type: 'string', default: '5' },
      'import-runs': { type: 'string', default: '5' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const runs = Number(values.runs);
  const rssRuns = Number(values['rss-runs']);
  const importRuns = Number(values['import-runs']);
  for (const [name, value] of [
    ['--runs', runs],
    ['--rss-runs', rssRuns],
    ['--import-runs', importRuns],
  ]) {
    if (!Number.isInteger(value) || value < 1) {
      process.stderr.write(`bench: invalid ${name} value: expected a whole number of runs, at least 1\n${USAGE}`);
      process.exit(2);
    }
  }
  const sections = selectSections(values.only);
  const invalid = [...sections.printed].filter((section) => !SECTIONS.includes(section));
  if (invalid.length > 0) {
    process.stderr.write(`bench: invalid --only value ${JSON.stringify(values.only)}: expected section numbers from 1 to 6, such as 6 or 5,6\n${USAGE}`);
    process.exit(2);
  }
  return { runs, rssRuns, importRuns, sections };
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

// The JSON line of one in-process FFI timing: `{ importMs, loadLibcMs }`.
function parseFfiTimes(stderr) {
  try {
    const times = JSON.parse(stderr.trim().split('\n').at(-1));
    if (Number.isFinite(times.importMs) && Number.isFinite(times.loadLibcMs)) return times;
  } catch {
    // Reported below.
  }
  throw new Error(`the FFI timing printed ${JSON.stringify(stderr)}: expected JSON with importMs and loadLibcMs`);
}

// Checks every combination and splits them into the ones to measure and
// the skipped ones, which carry the reason.
function checkCombinations(scratchDir) {
  const checked = COMBINATIONS.map((combination) => checkCombination(combination, { launcher: LAUNCHER, runArgs: RUN_ARGS, cwd: ROOT, scratchDir }));
  return { combinations: checked.filter((entry) => !entry.skipped), skipped: checked.filter((entry) => entry.skipped) };
}

async function measureMemoryIfPossible({ benchmarks, runs, scratchDir }) {
  const perProcessUnavailable = processPeaksUnavailable();
  const perProcess = perProcessUnavailable
    ? []
    : benchmarks.main
        .filter((benchmark) => benchmark.splitMemory)
        .map((benchmark) => ({
          label: benchmark.label,
          measure: () =>
            measureProcessPeaks(benchmark.argv(), {
              cwd: benchmark.cwd,
              env: benchmark.env,
              cliScript: join(ROOT, 'apps/cli/dist/main.js'),
              initScript: join(ROOT, 'packages/init/dist/main.js'),
            }),
        }));
  const timed = gnuTimeAvailable() ? benchmarks.main : [];
  if (timed.length === 0 && perProcess.length === 0) return { perProcessUnavailable };
  progress(`measuring peak RSS: ${runs} runs each`);
  const memory = await measureMemory({ benchmarks: timed, perProcess, runs, scratchDir });
  return { ...memory, perProcessUnavailable };
}

async function main() {
  const options = parseOptions();
  const scratchDir = mkdtempSync(join(tmpdir(), 'm-docker-bench-'));
  cleanupSteps.push(() => rmSync(scratchDir, { recursive: true, force: true }));
  const workDir = mkdtempSync(join(scratchDir, 'cwd-'));
  const mountsBefore = countMounts();

  // Every m-docker command below keeps its images, containers and volumes
  // in a store of the bench's own, never in /var/lib/m-docker.
  process.env.M_DOCKER_ROOT = join(scratchDir, 'store');

  // Every m-docker run below inherits this relative parent for its cgroup.
  const cgroupParent = await benchCgroupParent(ROOT);
  process.env[CGROUP_PARENT_VARIABLE] = cgroupParent.parent;
  cleanupSteps.push(cgroupParent.cleanup);

  const machine = describeMachine();
  const nodePath = findOnPath('node');
  if (nodePath === undefined) throw new Error('node is not on PATH: the reference `node -e 0` and the launcher need it');
  if (findOnPath('unshare') === undefined) throw new Error('unshare is not installed: install util-linux');
  const runtimePackage = await loadRuntimePackage(ROOT);

  const stopBackgroundLoad = startBackgroundLoad();
  progress('checking which runtimes each combination starts');
  const { combinations, skipped } = checkCombinations(scratchDir);
  if (combinations.length === 0) throw new Error(`no runtime combination runs: ${skipped.map((entry) => entry.skipped).join('; ')}`);
  const bun = referenceBun(combinations, runtimePackage, ROOT);

  const { printed, measured } = options.sections;
  const startupVariables = detectStartupVariables();
  const context = { options, scratchDir, workDir, combinations, bun, nodePath, runtimePackage, startupVariables };

  const rounds = measured.has(1) ? await measureRounds({ ...context, withImages: measured.has(5) }) : undefined;

  let throughput;
  if (measured.has(3)) {
    progress('running the ipc throughput benchmark');
    throughput = runIpcThroughput(ROOT);
  }

  let imports;
  if (measured.has(5) && rounds.images.available) {
    progress(`timing image import: ${options.importRuns} runs per row, each into a new store`);
    imports = await measureImports({ root: ROOT, launcher: LAUNCHER, combinations, large: rounds.images.large, scratchDir, runs: options.importRuns });
  }

  const lifecycle = measured.has(6) ? await measureDetached(context) : undefined;

  printMachine({
    machine,
    combinations,
    skipped,
    bun,
    options,
    background: stopBackgroundLoad(),
    busyThresholdCores: BUSY_MACHINE_CORES,
    gnuTime: gnuTimeAvailable(),
    perProcessUnavailable: processPeaksUnavailable(),
    startupVariables,
    roundsPrinted: [1, 2, 4, 5].some((section) => printed.has(section)),
  });
  if (printed.size < SECTIONS.length) {
    const inputs = [...measured].filter((section) => !printed.has(section));
    const measuredOnly = inputs.length > 0 ? `; measured but not printed: ${inputs.sort().join(', ')}` : '';
    console.log(`sections  printed: ${[...printed].sort().join(', ')} (--only)${measuredOnly}\n`);
  }
  const { benchmarks, latencies, memory, runc, timelines, ffiRuns, images } = rounds ?? {};
  if (printed.has(1)) printLatency({ benchmarks, latencies, memory, runc, bun, skipped, ffiRuns });
  if (printed.has(2)) printTimelines({ combinations, timelines, runs: options.runs, startupVariables });
  if (printed.has(3)) printThroughput(throughput);
  if (printed.has(4)) printTargets(checkTargets({ combinations, skipped, latencies, timelines, throughput, startupVariables, runc }));
  if (printed.has(5)) {
    printImages({
      images,
      payloadParts: PAYLOAD_PARTS,
      combinations,
      latencies,
      timelines,
      imports,
      mainRunc: runc,
      runs: options.runs,
      mounts: { before: mountsBefore, after: countMounts() },
      leftovers: images.available ? leftoverContainers(images.runStore) : [],
    });
  }
  if (printed.has(6)) printLifecycle({ result: lifecycle, runs: options.runs, memoryRuns: options.rssRuns });
}

// Section 1's interleaved rounds, with the debug runs of section 2 and,
// when `withImages` is set, the image rows of section 5; then the memory
// runs of section 1.
async function measureRounds({ options, scratchDir, workDir, combinations, bun, nodePath, runtimePackage, startupVariables, withImages }) {
  progress('preparing the runc bundle');
  const runc = prepareRunc(scratchDir);
  if (runc.available) cleanupSteps.push(runc.cleanup);

  let images = { available: false, reason: 'section 5 is not selected' };
  if (withImages) {
    progress('building the test images, importing busybox and preparing its runc bundle');
    images = await prepareImages({ root: ROOT, launcher: LAUNCHER, scratchDir, combinations });
    if (images.runc?.available) cleanupSteps.push(images.runc.cleanup);
  }

  const debugRuns = new Map();
  const recordDebugRun = (key, run) => {
    if (!debugRuns.has(key)) debugRuns.set(key, []);
    debugRuns.get(key).push({ wallMs: run.elapsedMs, events: parseDebugRun(run.stderr) });
  };
  const ffiRuns = new Map();
  const benchmarks = buildBenchmarks({
    root: ROOT,
    launcher: LAUNCHER,
    runArgs: RUN_ARGS,
    combinations,
    nodePath,
    bun,
    bunFlags: runtimePackage.BUN_FLAGS,
    runc,
    workDir,
    startupVariables,
    onDebugRun: recordDebugRun,
    onFfiRun: (runtime, run) => {
      if (!ffiRuns.has(runtime)) ffiRuns.set(runtime, []);
      ffiRuns.get(runtime).push(parseFfiTimes(run.stderr));
    },
  });
  const imageBenchmarks = images.available
    ? buildImageBenchmarks({ root: ROOT, launcher: LAUNCHER, combinations, images, onDebugRun: recordDebugRun })
    : { latency: [], debug: [] };
  const all = [...benchmarks.main, ...benchmarks.components, ...benchmarks.debug, ...imageBenchmarks.latency, ...imageBenchmarks.debug];
  progress(`measuring latency: ${all.length} commands, 1 warm-up + ${options.runs} runs each, interleaved`);
  const latencies = await measureLatencies(all, options.runs);
  const memory = await measureMemoryIfPossible({ benchmarks, runs: options.rssRuns, scratchDir });
  const timelines = new Map([...debugRuns].map(([key, runs]) => [key, summarizeTimeline(runs)]));
  return { runc, images, benchmarks, ffiRuns, latencies, memory, timelines };
}

// Section 6. Its cleanup step removes every container left in the
// benchmark's store and in runc's state directory. Cleanup steps run in
// reverse order, so it runs before the cgroup parent's cleanup, which
// expects every container to be gone.
async function measureDetached({ options, scratchDir, combinations }) {
  progress('preparing the detached containers: trying runc run --detach, exec and delete');
  const lifecycle = prepareLifecycle({ root: ROOT, launcher: LAUNCHER, combinations, scratchDir });
  cleanupSteps.push(lifecycle.cleanup);
  if (lifecycle.rows.length === 0) return { skipped: 'no combination whose CLI and init share a runtime runs, and runc is unavailable' };
  progress(`measuring detached containers: 1 warm-up + ${options.runs} rounds of run -d, exec and rm -f, then ${options.rssRuns} memory rounds`);
  return measureLifecycle({ lifecycle, runs: options.runs, memoryRuns: options.rssRuns });
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench: ${error.stack ?? error}\n`);
  process.exitCode = 1;
} finally {
  cleanup();
}
