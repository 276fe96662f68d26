// The PASS, FAIL and SKIP lines at the end of the report.
import { NODE_REFERENCE, RUNC_LABEL, runLabel } from './benchmarks.mjs';
import { byteSize, ms } from './format.mjs';
import { summarize } from './measure.mjs';

/** run latency <= LATENCY_FACTOR x `node -e 0` */
export const LATENCY_FACTOR = 2.5;
/** median initMs < INIT_WORK_LIMIT_MS */
export const INIT_WORK_LIMIT_MS = 10;
/** decoder throughput >= DECODER_FRACTION x socketpair copy, at every size */
export const DECODER_FRACTION = 0.5;
/** JavaScript processes started by one `m-docker run`: the CLI and the init */
export const MAX_JAVASCRIPT_STARTS = 2;

const pass = (condition) => (condition ? 'PASS' : 'FAIL');

/**
 * Returns the target lines as `{ status, text }`. `timelines` maps a
 * timeline key (a combination's tag, with a suffix when the start-up
 * variables were unset) to its summary.
 */
export function checkTargets({ combinations, skipped, latencies, timelines, throughput, startupVariables, runc }) {
  const checks = [];
  const median = (label) => summarize(latencies.get(label)).median;
  const bunBun = combinations.find((combination) => combination.cli === 'bun' && combination.init === 'bun');

  // Bun/Bun against runc.
  const runcTitle = 'run latency [CLI bun, init bun] <= runc run';
  if (!bunBun) {
    checks.push({ status: 'SKIP', text: `${runcTitle}: not measured, ${skipped.find((entry) => entry.tag === 'CLI bun, init bun')?.skipped}` });
  } else if (!runc.available) {
    checks.push({ status: 'SKIP', text: `${runcTitle}: runc is unavailable, ${runc.reason}` });
  } else {
    const run = median(runLabel(bunBun.tag));
    const reference = median(RUNC_LABEL);
    checks.push({ status: pass(run <= reference), text: `${runcTitle}: median ${ms(run)} ms vs ${ms(reference)} ms (ratio ${(run / reference).toFixed(2)})` });
  }

  // Every combination against `node -e 0`, with the Node start-up variables
  // as this environment has them and, when they are set, without them.
  const setting = startupVariables ? `${startupVariables.names.join(', ')} set for both` : 'NODE_EXTRA_CA_CERTS and NODE_OPTIONS unset for both';
  const checkLatency = (runTag, referenceLabel, note) => {
    const run = median(runLabel(runTag));
    const reference = median(referenceLabel);
    const limit = LATENCY_FACTOR * reference;
    checks.push({
      status: pass(run <= limit),
      text: `run latency [${runTag}] <= ${LATENCY_FACTOR} x ${NODE_REFERENCE} (${note}): median ${ms(run)} ms vs ${LATENCY_FACTOR} x ${ms(reference)} = ${ms(limit)} ms (ratio ${(run / reference).toFixed(2)})`,
    });
  };
  for (const combination of combinations) checkLatency(combination.tag, NODE_REFERENCE, setting);
  if (startupVariables) {
    for (const combination of combinations) {
      checkLatency(`${combination.tag}, ${startupVariables.suffix}`, `${NODE_REFERENCE} [${startupVariables.suffix}]`, `${startupVariables.names.join(', ')} unset for both`);
    }
  }

  // The init's work, per init runtime, from the combination whose CLI runs
  // on the same runtime. With a Node CLI and a Bun init, initMs can include
  // waiting for the slower CLI's config, so that combination is left out.
  for (const runtime of ['bun', 'node']) {
    const title = `init work [init ${runtime}] < ${INIT_WORK_LIMIT_MS} ms`;
    const combination = combinations.find((entry) => entry.cli === runtime && entry.init === runtime);
    if (!combination) {
      checks.push({ status: 'SKIP', text: `${title}: the combination CLI ${runtime}, init ${runtime} was not measured` });
      continue;
    }
    const initMs = timelines.get(combination.tag)?.initMs;
    if (!initMs) {
      checks.push({ status: 'FAIL', text: `${title}: no "execve ... initMs=" line in the debug log of [${combination.tag}]` });
      continue;
    }
    // initMs runs to the init's execve, so it includes the wait for start
    // while the CLI moves the init into its cgroup. The text shows that part.
    const startWait = timelines.get(combination.tag)?.cgroupMs?.get('start wait');
    const waited = startWait ? `, of which ${startWait.median.toFixed(2)} ms waiting for start` : '';
    checks.push({ status: pass(initMs.median < INIT_WORK_LIMIT_MS), text: `${title}: median initMs ${initMs.median.toFixed(2)} ms in [${combination.tag}]${waited}` });
  }

  if (throughput.available) {
    for (const row of throughput.rows) {
      const ratio = row.decoderMBps / row.copyMBps;
      checks.push({
        status: pass(ratio >= DECODER_FRACTION),
        text: `decoder >= ${DECODER_FRACTION} x socketpair copy at ${byteSize(row.payloadBytes)}: ${row.decoderMBps.toFixed(0)} vs ${row.copyMBps.toFixed(0)} MB/s (${ratio.toFixed(2)})`,
      });
    }
  } else {
    checks.push({ status: 'SKIP', text: `decoder >= ${DECODER_FRACTION} x socketpair copy: ${throughput.reason}` });
  }

  for (const combination of combinations) {
    const title = `[${combination.tag}] at most ${MAX_JAVASCRIPT_STARTS} JavaScript process starts per run`;
    if (!combination.execs) {
      checks.push({ status: 'SKIP', text: `${title}: not counted, ${combination.traceUnavailable}` });
      continue;
    }
    const starts = combination.execs.filter((exec) => exec.javascript);
    const chain = combination.execs.map((exec) => `${exec.path}${exec.javascript ? ' (JS)' : ''}`).join(', ');
    checks.push({ status: pass(starts.length <= MAX_JAVASCRIPT_STARTS), text: `${title}: ${starts.length}, from strace of every successful execve: ${chain}` });
  }

  checks.push(...checkRuntimes(combinations, skipped, timelines));
  return checks;
}

// Whether each combination ran the runtimes it forces: --version, the
// strace of one run, and the init runtime that every debug run logged.
function checkRuntimes(combinations, skipped, timelines) {
  const checks = [];
  for (const combination of combinations) {
    const problems = [...combination.mismatches];
    const logged = timelines.get(combination.tag)?.initRuntimes ?? new Map();
    const counts = [...logged].map(([runtime, count]) => `${runtime} in ${count}`).join(', ');
    for (const runtime of logged.keys()) {
      if (!runtime.startsWith(`${combination.init} `)) problems.push(`a debug run logged the init runtime ${runtime}`);
    }
    const evidence = [`--version: ${combination.versionOutput}`, combination.execs ? 'strace agrees' : `not traced (${combination.traceUnavailable})`, `debug log: init ${counts} runs`];
    const detail = problems.length > 0 ? problems.join('; ') : evidence.join('; ');
    checks.push({ status: pass(problems.length === 0), text: `[${combination.tag}] ran the forced runtimes (${combination.forced}): ${detail}` });
  }
  for (const entry of skipped) checks.push({ status: 'SKIP', text: `[${entry.tag}] not measured: ${entry.skipped}` });
  return checks;
}
