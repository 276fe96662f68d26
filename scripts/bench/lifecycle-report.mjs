// Section 6 of the `pnpm bench` report: detached containers and exec.
import { mebibytes, ms, table } from './format.mjs';
import { CONTAINERS_PER_MEMORY_ROUND, DETACHED_COMMAND, lifecycleLabels, UP_BEFORE_SAMPLE_MS } from './lifecycle.mjs';
import { summarize } from './measure.mjs';

/** Indents every line of a block by three spaces, for text under a section heading. */
function indent(text) {
  return text.replace(/^/gm, '   ');
}

const LATENCY_COLUMNS = [
  { title: 'command', align: 'left' },
  { title: 'min', align: 'right' },
  { title: 'median', align: 'right' },
  { title: 'p90', align: 'right' },
  { title: 'max', align: 'right' },
];

const MEMORY_COLUMNS = [
  { title: 'container', align: 'left' },
  { title: 'processes', align: 'right' },
  { title: 'threads', align: 'right' },
  { title: 'RSS', align: 'right' },
  { title: 'PSS', align: 'right' },
  { title: 'private', align: 'right' },
  { title: 'RSS min-max', align: 'right' },
];

// The median of the defined values, or undefined.
function medianOf(values) {
  const measured = values.filter((value) => value !== undefined && Number.isFinite(value));
  return measured.length > 0 ? summarize(measured).median : undefined;
}

/**
 * Prints section 6: the latency of each step, the memory that stays per
 * container besides COMMAND, and the cleanup checks. `result` is what
 * measureLifecycle() returned, or `{ skipped: reason }`.
 */
export function printLifecycle({ result, runs, memoryRuns }) {
  console.log(`6. Detached containers and exec (m-docker on the host's root, runc with a busybox bundle; both run ${DETACHED_COMMAND.join(' ')})`);
  if (result.skipped) {
    console.log(`   skipped: ${result.skipped}`);
    console.log('');
    return;
  }
  const { rows, runc, latencies, memory, checks } = result;

  console.log(`   Latency (ms, wall clock from spawn to exit), ${runs} ${runs === 1 ? 'round' : 'rounds'} after 1 warm-up cycle per row. Every round starts`);
  console.log('   one container per row, then runs exec in each, then removes each. The CLI of run -d returns once COMMAND runs.');
  const latencyRows = [];
  for (const row of rows) {
    for (const label of Object.values(lifecycleLabels(row))) {
      const stats = summarize(latencies.get(label));
      latencyRows.push([label, ms(stats.min), ms(stats.median), ms(stats.p90), ms(stats.max)]);
    }
  }
  if (!runc.available) latencyRows.push([`runc: unavailable (${runc.reason})`, '-', '-', '-', '-']);
  console.log(indent(table(LATENCY_COLUMNS, latencyRows)));
  console.log('');

  const memoryRounds = `${memoryRuns} ${memoryRuns === 1 ? 'round' : 'rounds'} of ${CONTAINERS_PER_MEMORY_ROUND} m-docker containers per row (1 for runc), all up at once`;
  console.log(`   Memory each container keeps besides COMMAND, read ${UP_BEFORE_SAMPLE_MS / 1000} s after its start:`);
  console.log(`   ${memoryRounds}.`);
  console.log('   processes: the ancestors of COMMAND below the first ancestor of this benchmark, and their other children.');
  console.log('   RSS: VmRSS; PSS and private (Private_Clean + Private_Dirty): /proc/PID/smaps_rollup; summed over those');
  console.log('   processes, median over the containers. Pages of the runtime binary that other processes map count in PSS');
  console.log('   by share, and not in private.');
  const memoryRows = rows.map((row) => {
    const samples = memory.get(row.tag);
    const pick = (field) => samples.map((sample) => sample[field]);
    const rss = pick('rss').filter(Number.isFinite);
    const range = rss.length > 0 ? `${(Math.min(...rss) / 1024).toFixed(1)}-${mebibytes(Math.max(...rss))}` : '-';
    const label = row.kind === 'runc' ? lifecycleLabels(row).start : `m-docker run -d [${row.tag}]`;
    return [label, String(medianOf(pick('processes'))), String(medianOf(pick('threads')) ?? '-'), mebibytes(medianOf(pick('rss'))), mebibytes(medianOf(pick('pss'))), mebibytes(medianOf(pick('private'))), range];
  });
  if (!runc.available) memoryRows.push([`runc: unavailable (${runc.reason})`, '-', '-', '-', '-', '-', '-']);
  console.log(indent(table(MEMORY_COLUMNS, memoryRows)));
  console.log('');

  const same = (pair) => (pair.before === pair.after ? 'same' : 'CHANGED');
  console.log(`   clean-up: ${checks.storeContainers} containers left in the store, ${checks.runcContainers} in runc's state directory;`);
  console.log(`   ${checks.processesRunning} of the ${checks.processesStarted} monitor and COMMAND processes started still run.`);
  console.log(`   Mounts in this mount namespace: ${checks.mounts.before} before section 6, ${checks.mounts.after} after (${same(checks.mounts)}).`);
  console.log(`   load average (1, 5, 15 min): ${checks.load.before} before section 6, ${checks.load.after} after.`);
  console.log('');
}
