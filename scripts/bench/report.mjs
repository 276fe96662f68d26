// The text report of `pnpm bench`, one function per section.
import { statSync } from 'node:fs';

import { BUN_REFERENCE, runLabel } from './benchmarks.mjs';
import { byteSize, mebibytes, ms, table } from './format.mjs';
import { summarize } from './measure.mjs';
import { describeRuntimes } from './runtimes.mjs';

/** Indents every line of a block by three spaces, for text under a section heading. */
function indent(text) {
  return text.replace(/^/gm, '   ');
}

// `NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt (219597 bytes)`
function describeVariable(name) {
  const value = process.env[name];
  try {
    return `${name}=${value} (${statSync(value).size} bytes)`;
  } catch {
    return `${name}=${value}`;
  }
}

/**
 * Prints the machine, the runtimes that each combination ran, the tools and
 * the method. The method of the interleaved rounds is printed only when
 * `roundsPrinted` is set, because section 6 has a method of its own.
 */
export function printMachine({ machine, combinations, skipped, bun, options, background, busyThresholdCores, gnuTime, perProcessUnavailable, startupVariables, roundsPrinted = true }) {
  console.log('m-docker benchmark');
  console.log('');
  console.log(`machine   ${machine.cpu}, ${machine.cores} cores, ${machine.kernel}`);
  console.log(`harness   node ${machine.harnessNode}`);

  console.log('runtimes  each combination is forced through the environment and checked with ./m-docker --version and strace:');
  const width = Math.max(...[...combinations, ...skipped].map((entry) => entry.tag.length)) + 4;
  for (const combination of combinations) {
    const head = `          [${combination.tag}]`.padEnd(width + 10);
    console.log(`${head}${combination.forced}`);
    console.log(`${' '.repeat(width + 10)}--version: ${combination.versionOutput}`);
    const traced = combination.execs ? `strace saw ${describeRuntimes(combination)}` : `not traced: ${combination.traceUnavailable}`;
    console.log(`${' '.repeat(width + 10)}${traced}`);
    for (const mismatch of combination.mismatches) console.log(`${' '.repeat(width + 10)}MISMATCH: ${mismatch}`);
  }
  for (const entry of skipped) {
    console.log(`${`          [${entry.tag}]`.padEnd(width + 10)}skipped: ${entry.skipped}`);
  }
  console.log(bun.path ? `          ${BUN_REFERENCE} runs ${bun.path}` : `          ${BUN_REFERENCE} skipped: no usable Bun (${bun.reason})`);

  if (startupVariables) {
    console.log(`env       ${startupVariables.names.map(describeVariable).join(', ')} is set in this environment.`);
    const again = roundsPrinted ? `, so rows marked "${startupVariables.suffix}" measure again with it unset` : '';
    console.log(`          Node start-ups pay for it${again}`);
  }
  console.log(`runc      ${machine.runc}`);
  console.log(`unshare   ${machine.unshare}`);
  console.log(`strace    ${machine.strace}`);
  console.log(
    `other     ${background.otherCores.toFixed(2)} cores busy on average with work other than this benchmark's during its ${background.seconds.toFixed(0)} s of measuring`,
  );
  if (background.otherCores > busyThresholdCores) {
    console.log('          WARNING: the machine was not idle, so the times below include waiting for a CPU');
  }

  if (!roundsPrinted) {
    console.log('');
    return;
  }
  console.log(`method    ${options.runs} runs per command after 1 warm-up each, interleaved: every round runs every command once`);
  const memoryMethods = [
    gnuTime ? 'GNU time %M (largest single process of the tree)' : 'no GNU time: /usr/bin/time is missing',
    perProcessUnavailable ? `no CLI and init split: ${perProcessUnavailable}` : 'VmHWM of the CLI at its exit_group and of the init at its execve, read while strace stops them there',
  ];
  console.log(`          peak RSS from ${options.rssRuns} further runs each: ${memoryMethods.join('; ')}`);
  console.log('');
}

const LATENCY_COLUMNS = [
  { title: 'command', align: 'left' },
  { title: 'min', align: 'right' },
  { title: 'median', align: 'right' },
  { title: 'p90', align: 'right' },
  { title: 'peak RSS', align: 'right' },
  { title: 'CLI', align: 'right' },
  { title: 'init', align: 'right' },
];

const COMPONENT_COLUMNS = LATENCY_COLUMNS.slice(0, 4);

// The median of the values that were measured, or undefined if none was.
function medianOf(values) {
  const measured = (values ?? []).filter((value) => value !== undefined);
  return measured.length > 0 ? summarize(measured).median : undefined;
}

/**
 * Prints section 1: the latency and memory table, the start-up components,
 * the differences of medians that split each start-up, and the FFI load
 * times from `ffiRuns`, a Map from runtime to `{ importMs, loadLibcMs }` per run.
 */
export function printLatency({ benchmarks, latencies, memory, runc, bun, skipped, ffiRuns }) {
  const timing = (label) => {
    const stats = summarize(latencies.get(label));
    return [label, ms(stats.min), ms(stats.median), ms(stats.p90)];
  };
  const mainRow = (benchmark) => {
    const split = memory.perProcess?.get(benchmark.label);
    const peak = medianOf(memory.peaks?.get(benchmark.label));
    const cli = split ? medianOf(split.map((run) => run.cliKiB)) : undefined;
    const init = split ? medianOf(split.map((run) => run.initKiB)) : undefined;
    return [...timing(benchmark.label), mebibytes(peak), mebibytes(cli), mebibytes(init)];
  };

  console.log('1. Latency (ms, wall clock from spawn to exit) and peak RSS (MiB, median of the memory runs)');
  console.log('   peak RSS: the largest single process (GNU time); CLI, init: each process on its own (strace stops)');
  const rows = benchmarks.main.map(mainRow);
  for (const entry of skipped) rows.push([`${runLabel(entry.tag)}: skipped, see runtimes`, '-', '-', '-', '-', '-', '-']);
  if (!runc.available) rows.push([`runc: unavailable (${runc.reason})`, '-', '-', '-', '-', '-', '-']);
  if (!bun.path) rows.push([`${BUN_REFERENCE}: skipped, no usable Bun`, '-', '-', '-', '-', '-', '-']);
  console.log(table(LATENCY_COLUMNS, rows));
  console.log('');

  console.log('   Start-up components and the debug runs behind section 2, measured in the same rounds:');
  console.log(indent(table(COMPONENT_COLUMNS, [...benchmarks.components, ...benchmarks.debug].map((benchmark) => timing(benchmark.label)))));
  console.log('');

  const median = (label) => summarize(latencies.get(label)).median;
  console.log('   Differences of medians, in ms (estimates: each carries the noise of two rows):');
  const differenceRows = [];
  let group;
  for (const breakdown of benchmarks.breakdowns) {
    if (breakdown.group !== group) {
      group = breakdown.group;
      differenceRows.push([group, '', '']);
    }
    differenceRows.push([`  ${breakdown.title}`, breakdown.formula, ms(median(breakdown.minuend) - median(breakdown.subtrahend))]);
  }
  const differenceColumns = [
    { title: 'part', align: 'left' },
    { title: 'computed as', align: 'left' },
    { title: 'ms', align: 'right' },
  ];
  console.log(indent(table(differenceColumns, differenceRows)));
  console.log('');

  console.log('   Loading the FFI, timed inside the process with performance.now(), median in ms:');
  const ffiRows = [...ffiRuns].map(([runtime, runs]) => [
    runtime,
    ms(summarize(runs.map((run) => run.importMs)).median),
    ms(summarize(runs.map((run) => run.loadLibcMs)).median),
    runtime === 'bun' ? 'bun:ffi' : "koffi's native addon",
  ]);
  const ffiColumns = [
    { title: 'runtime', align: 'left' },
    { title: 'import @m-docker/syscalls', align: 'right' },
    { title: 'loadLibc()', align: 'right' },
    { title: 'FFI', align: 'left' },
  ];
  console.log(indent(table(ffiColumns, ffiRows)));
  console.log('');
}

// The timeline columns: each combination as the user runs it and, for a
// Node CLI, without the Node start-up variables. `key` matches the keys of
// the timelines Map.
function timelineColumns(combinations, startupVariables) {
  const columns = [];
  for (const combination of combinations) {
    const short = `${combination.cli}/${combination.init}`;
    columns.push({ key: combination.tag, title: short });
    if (startupVariables && combination.cli === 'node') {
      columns.push({ key: `${combination.tag}, ${startupVariables.suffix}`, title: `${short}*` });
    }
  }
  return columns;
}

// The rows of the cgroup block: the phase (or `start wait`) and its title.
// Only creating and joining delay the start: the CLI creates the cgroup
// while the init sets up, and joining is the one step between ready and
// start. Stale cgroups are looked for while COMMAND runs.
const CGROUP_ROWS = [
  ['cgroup created', 'create (mkdir, limits), after config sent'],
  ['cgroup joined', 'move the init in, between ready and start'],
  ['start wait', "  the init's wait for start, on its clock"],
  ['stale cgroups removed', 'look for stale cgroups, while COMMAND runs'],
  ['cgroup removed', 'remove, after the container exited'],
];

/**
 * Prints section 2: initMs, the cgroup work and the phase timeline of every
 * combination, side by side, from the debug runs.
 */
export function printTimelines({ combinations, timelines, runs, startupVariables }) {
  const columns = timelineColumns(combinations, startupVariables).filter((column) => timelines.has(column.key));
  console.log(`2. The init's work and the phase timeline (${runs} runs of ./m-docker --debug run /bin/true per column, in the same rounds)`);
  console.log(`   columns: CLI runtime/init runtime${startupVariables ? `; * ${startupVariables.suffix}` : ''}`);

  console.log(indent(formatTimeline(columns, timelines)));
  console.log("   Times are ms since the CLI's time origin (its performance.now() = 0, shortly after its execve). The init's");
  console.log("   events are moved onto that clock by the ready/start exchange. n/a: no run could place that init event.");
  console.log('');
}

/**
 * Lays out the timelines side by side: initMs, the wall clock and the median
 * time of every event. `columns` lists `{ key, title }`, where `key` is a
 * key of the `timelines` Map.
 */
export function formatTimeline(columns, timelines) {
  const cells = (pick) => columns.map((column) => pick(timelines.get(column.key)));
  const rows = [
    ['initMs, median', ...cells((timeline) => ms(timeline.initMs?.median))],
    ['initMs, p90', ...cells((timeline) => ms(timeline.initMs?.p90))],
    ["  of which waiting for the CLI's config (estimate)", ...cells((timeline) => ms(timeline.configWaitMs?.median))],
    ['wall clock of the debug runs, median', ...cells((timeline) => ms(timeline.wallMs.median))],
    ["  outside the CLI's clock, median", ...cells((timeline) => ms(timeline.outsideMs?.median))],
    ["init clock placed within ±, median", ...cells((timeline) => (timeline.initClock ? timeline.initClock.halfWidthMs.toFixed(2) : '-'))],
    ['', ...columns.map(() => '')],
    ["the container's cgroup, CLI work in ms, median", ...columns.map(() => '')],
    ...CGROUP_ROWS.map(([phase, title]) => [`  ${title}`, ...cells((timeline) => ms(timeline.cgroupMs.get(phase)?.median))]),
    ['', ...columns.map(() => '')],
    ["event, median time on the CLI's clock", ...columns.map(() => '')],
  ];

  // Events in the order of the first column, then any that only other columns have.
  const events = [];
  const seen = new Set();
  for (const column of columns) {
    const timeline = timelines.get(column.key);
    for (const event of [...timeline.ordered, ...timeline.others]) {
      const key = `${event.component} ${event.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      events.push({ component: event.component, message: event.message, key });
    }
  }
  for (const event of events) {
    const times = cells((timeline) => {
      const found = timeline.ordered.find((entry) => entry.component === event.component && entry.message === event.message);
      if (found) return ms(found.cliMs);
      return timeline.others.some((entry) => entry.component === event.component && entry.message === event.message) ? 'n/a' : '-';
    });
    rows.push([`  ${event.component.padEnd(4)} ${event.message}`, ...times]);
  }

  const tableColumns = [{ title: '', align: 'left' }, ...columns.map((column) => ({ title: column.title, align: 'right' }))];
  return table(tableColumns, rows);
}

/** Prints section 3, the ipc throughput table, or why it was skipped. */
export function printThroughput(throughput) {
  console.log('3. ipc decoder throughput (node packages/ipc/bench/throughput.mjs --json; MB = 10^6 bytes)');
  if (!throughput.available) {
    console.log(`   skipped: ${throughput.reason}`);
    console.log('');
    return;
  }
  const chunk = throughput.decoderChunkBytes ? byteSize(throughput.decoderChunkBytes) : 'unknown';
  console.log(`   median of ${throughput.runs ?? '?'} runs per size; the decoder alone gets the stream in ${chunk} chunks`);

  const ratio = (value, reference) => (Number.isFinite(value) ? (value / reference).toFixed(2) : '-');
  const rate = (value) => (Number.isFinite(value) ? value.toFixed(0) : '-');
  const rows = throughput.rows.map((row) => [
    byteSize(row.payloadBytes),
    rate(row.decoderMBps),
    rate(row.copyMBps),
    rate(row.socketDecoderMBps),
    ratio(row.decoderMBps, row.copyMBps),
    ratio(row.socketDecoderMBps, row.copyMBps),
  ]);
  const columns = [
    { title: 'payload', align: 'right' },
    { title: 'decoder MB/s', align: 'right' },
    { title: 'socket copy MB/s', align: 'right' },
    { title: 'socket+decoder MB/s', align: 'right' },
    { title: 'decoder/copy', align: 'right' },
    { title: 'socket+decoder/copy', align: 'right' },
  ];
  console.log(indent(table(columns, rows)));
  console.log('');
}

/** Prints section 4, one PASS, FAIL or SKIP line per target. */
export function printTargets(checks) {
  console.log('4. Targets');
  for (const check of checks) console.log(`${check.status.padEnd(4)}  ${check.text}`);
  console.log('');
}
