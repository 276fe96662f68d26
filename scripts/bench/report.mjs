// The text report of `pnpm bench`, one function per section.
import { byteSize, mebibytes, ms, table } from './format.mjs';
import { summarize } from './measure.mjs';
import { describeRuntimes } from './runtimes.mjs';

/** Indents every line of a block by three spaces, for text under a section heading. */
function indent(text) {
  return text.replace(/^/gm, '   ');
}

/** Prints the machine, the runtimes that ran m-docker, the tools and the method. */
export function printMachine({ machine, variants, skippedVariants, options, background, busyThresholdCores, gnuTime, startupVariables }) {
  console.log('m-docker benchmark');
  console.log('');
  console.log(`machine   ${machine.cpu}, ${machine.cores} cores, ${machine.kernel}`);
  for (const variant of variants) {
    console.log(`runtime   [${variant.tag}] ${describeRuntimes(variant)}`);
  }
  for (const { name, reason } of skippedVariants) {
    console.log(`runtime   [${name}] not measured: ${reason}`);
  }
  console.log(`          this script: node ${machine.harnessNode}`);
  if (startupVariables) {
    console.log(`env       ${startupVariables.names.join(', ')} set in this environment`);
    console.log(`          Node start-ups pay for it, so rows marked "${startupVariables.suffix}" measure again with it unset`);
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
  console.log(`method    ${options.runs} runs per command after 1 warm-up, interleaved round by round;`);
  console.log(`          peak RSS from ${options.rssRuns} further runs each under ${gnuTime ? 'GNU time (%M)' : 'nothing: /usr/bin/time is missing'}`);
  console.log('');
}

const LATENCY_COLUMNS = [
  { title: 'command', align: 'left' },
  { title: 'min', align: 'right' },
  { title: 'median', align: 'right' },
  { title: 'p90', align: 'right' },
  { title: 'peak RSS', align: 'right' },
];

/**
 * Prints section 1: the latency table, the start-up components and, for each
 * variant, the differences of medians that split its start-up.
 */
export function printLatency({ benchmarks, latencies, peaks, runc, breakdowns }) {
  const row = (benchmark) => {
    const stats = summarize(latencies.get(benchmark.label));
    const rss = peaks?.get(benchmark.label);
    return [benchmark.label, ms(stats.min), ms(stats.median), ms(stats.p90), rss ? mebibytes(summarize(rss).median) : '-'];
  };

  console.log('1. Latency (wall clock from spawn to exit, ms) and peak RSS (largest single process, median of the runs)');
  const rows = benchmarks.main.map(row);
  if (!runc.available) rows.push([`runc: unavailable (${runc.reason})`, '-', '-', '-', '-']);
  console.log(table(LATENCY_COLUMNS, rows));
  console.log('');

  console.log('   Start-up components, measured in the same rounds:');
  console.log(indent(table(LATENCY_COLUMNS, benchmarks.components.map(row))));
  console.log('');

  const median = (label) => summarize(latencies.get(label)).median;
  console.log('   Differences of medians, in ms:');
  const differenceRows = [];
  let group;
  for (const breakdown of breakdowns) {
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
}

/** Prints section 2 for one variant: initMs, the wall clock and the phase timeline. */
export function printTimeline({ tag, timeline, runs, command }) {
  console.log(`2. The init's work and the phase timeline [${tag}] (${runs} runs of ${command})`);
  if (timeline.initMs) {
    const { min, median, p90 } = timeline.initMs;
    console.log(`   initMs, the init's first line after module loading to execve: median ${ms(median)} ms (min ${ms(min)}, p90 ${ms(p90)})`);
  } else {
    console.log('   initMs: not logged (no "execve ... initMs=" line from the init)');
  }
  console.log(`   wall clock of these runs: median ${ms(timeline.wallMs.median)} ms`);
  if (timeline.outsideMs) {
    console.log(
      `   of which outside the CLI's clock (sh launcher, execve to the CLI's time origin, exit after the last line): median ${ms(timeline.outsideMs.median)} ms`,
    );
  }
  console.log('');

  console.log('   Events in the order of their median times. step: median over the runs of the time since the event above;');
  console.log('   a negative step means that two events raced and overlapped. at: the sum of the steps so far, in ms from');
  console.log("   the CLI's time origin (performance.now() = 0, shortly after its execve).");
  if (timeline.initClock) {
    console.log(
      `   The init's events are placed on the CLI's clock by the ready/start exchange, to within ±${timeline.initClock.halfWidthMs.toFixed(2)} ms (median).`,
    );
  } else {
    console.log("   The init's clock cannot be placed on the CLI's: a ready or start line is missing, so its events have no step.");
  }

  const rows = [];
  let at = 0;
  for (const event of timeline.ordered) {
    if (event.stepMs !== undefined) at += event.stepMs;
    const placed = event.stepMs !== undefined || event.message === 'time origin';
    const step = event.stepMs === undefined ? '' : `${event.stepMs >= 0 ? '+' : ''}${ms(event.stepMs)}`;
    rows.push([placed ? ms(at) : '', step, event.component, event.message]);
  }
  for (const event of timeline.others) rows.push(['', 'n/a', event.component, `${event.message} (init clock ${ms(event.ownMs)})`]);

  const columns = [
    { title: 'at', align: 'right' },
    { title: 'step', align: 'right' },
    { title: 'process', align: 'left' },
    { title: 'event', align: 'left' },
  ];
  console.log(indent(table(columns, rows)));
  if (timeline.others.length > 0) {
    console.log("   n/a: a run lacked the ready/start lines, so these init events cannot be placed on the CLI's clock.");
  }
  console.log('');
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
