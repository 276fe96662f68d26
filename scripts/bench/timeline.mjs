// The phase timeline of `m-docker --debug run`, read from its debug log.
import { spawnSync } from 'node:child_process';

import { summarize, yieldToEventLoop } from './measure.mjs';

// A debug line: `m-docker[cli] debug +84.5ms config sent id=3f2a… pid=12`.
// The time is that process's performance.now(): milliseconds since its
// runtime's time origin, shortly after the process's execve. So the CLI's
// and the init's lines are on two clocks.
const LINE = /^m-docker\[(?<component>[\w-]+)\] debug \+(?<time>[\d.]+)ms (?<rest>.*)$/;
const FIELD = / (?<key>[\w-]+)=(?<value>"(?:[^"\\]|\\.)*"|\S*)/g;

/** Splits one debug line into component, time, message and fields; undefined if it is not one. */
export function parseDebugLine(line) {
  const match = LINE.exec(line);
  if (!match) return undefined;
  const { component, time, rest } = match.groups;
  const firstField = rest.search(/ [\w-]+=/);
  const message = firstField === -1 ? rest : rest.slice(0, firstField);
  const fields = {};
  for (const field of (firstField === -1 ? '' : rest.slice(firstField)).matchAll(FIELD)) {
    const { key, value } = field.groups;
    fields[key] = value.startsWith('"') ? JSON.parse(value) : value;
  }
  return { component, timeMs: Number(time), message, fields };
}

// The CLI's closing summary line, `timeline in ms since the CLI process
// started: cli started 15.3, init spawned 32.2, …`. Its times are taken when
// each phase happens, while a phase's own line may be written a little later.
const SUMMARY_PREFIX = 'timeline in ms since the CLI process started: ';
const SUMMARY_ENTRY = /^(?<phase>.+) (?<time>\d+(?:\.\d+)?)$/;

/**
 * Parses the debug lines of one run. When the CLI's summary line is present,
 * its times replace those of the CLI's phase lines and it is not an event
 * itself.
 */
export function parseDebugRun(stderr) {
  const events = stderr.split('\n').map(parseDebugLine).filter(Boolean);
  const summary = events.find((event) => event.component === 'cli' && event.message.startsWith(SUMMARY_PREFIX));
  if (summary === undefined) return events;

  const summaryTimes = new Map();
  for (const entry of summary.message.slice(SUMMARY_PREFIX.length).split(', ')) {
    const match = SUMMARY_ENTRY.exec(entry);
    if (match) summaryTimes.set(match.groups.phase, Number(match.groups.time));
  }
  const result = events.filter((event) => event !== summary);
  for (const event of result) {
    if (event.component === 'cli' && summaryTimes.has(event.message)) event.timeMs = summaryTimes.get(event.message);
  }
  return result;
}

// The messages that bound the init's clock against the CLI's. The init logs
// "container set up" just before it writes ready, and the CLI logs "ready
// received" just before it writes start, which the init then logs as "start
// received". So, with the init's clock zero at CLI time `offset`:
//   offset + set_up <= ready_received   and   offset + start_received >= ready_received.
const SET_UP = 'container set up';
const READY_RECEIVED = 'ready received';
const START_RECEIVED = 'start received';
const EXITED = 'container exited';

/**
 * Bounds the CLI-clock time of the init's clock zero (its time origin) from
 * one run's events. Returns `{ low, high }` in CLI milliseconds, or undefined
 * if a needed line is missing.
 */
export function boundInitClock(events) {
  const find = (component, message) => events.find((event) => event.component === component && event.message === message)?.timeMs;
  const setUp = find('init', SET_UP);
  const readyReceived = find('cli', READY_RECEIVED);
  const startReceived = find('init', START_RECEIVED);
  if (setUp === undefined || readyReceived === undefined || startReceived === undefined) return undefined;
  return { low: readyReceived - startReceived, high: readyReceived - setUp };
}

/**
 * Runs `argv` (an `m-docker --debug run` command line) `runs` times with
 * the environment `env`, and collects each run's debug events and
 * wall-clock time.
 */
export async function collectDebugRuns(argv, cwd, env, runs) {
  const results = [];
  for (let run = 0; run < runs; run++) {
    const started = process.hrtime.bigint();
    const result = spawnSync(argv[0], argv.slice(1), { cwd, env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (result.status !== 0) {
      throw new Error(`${argv.join(' ')} exited with status ${result.status}: ${result.stderr.trim()}`);
    }
    results.push({ wallMs, events: parseDebugRun(result.stderr) });
    await yieldToEventLoop();
  }
  return results;
}

const TIME_ORIGIN = 'time origin';

const keyOf = (component, message) => `${component}\u0000${message}`;

/**
 * Reduces the runs to one timeline. Each run's init events move onto its
 * CLI clock with the midpoint of that run's bounds, and both processes get a
 * "time origin" event at their clock's zero. Events are ordered by the
 * median of their CLI times. Each event's step is the median, over the runs,
 * of its time since the previous event in that order that the run logged.
 * Events that race (such as the init's time origin and the CLI's lines
 * around the spawn) can have a negative step, which means they overlapped.
 * Returns `{ ordered, others, initClock, initMs, wallMs, outsideMs }`.
 * `others` are init events that no run could place, because every run
 * lacked a ready/start line. outsideMs is the part of each run's wall-clock
 * time outside the CLI's clock: the sh launcher, the runtime's start up to
 * its time origin, and the exit after the last line.
 */
export function summarizeTimeline(runs) {
  const byKey = new Map();
  const zeros = [];
  const halfWidths = [];
  const initMs = [];
  const outside = [];
  const placedRuns = [];
  const entry = (component, message) => {
    const key = keyOf(component, message);
    if (!byKey.has(key)) byKey.set(key, { component, message, own: [], cli: [] });
    return byKey.get(key);
  };

  for (const run of runs) {
    const bounds = boundInitClock(run.events);
    const zero = bounds === undefined ? undefined : (bounds.low + bounds.high) / 2;
    if (bounds) {
      zeros.push(zero);
      halfWidths.push((bounds.high - bounds.low) / 2);
    }
    const events = [{ component: 'cli', message: TIME_ORIGIN, timeMs: 0, fields: {} }, ...run.events];
    if (zero !== undefined) events.push({ component: 'init', message: TIME_ORIGIN, timeMs: 0, fields: {} });
    const exited = run.events.find((event) => event.component === 'cli' && event.message === EXITED);
    if (exited) outside.push(run.wallMs - exited.timeMs);

    const cliTimes = new Map();
    for (const event of events) {
      const record = entry(event.component, event.message);
      let cliMs = event.timeMs;
      if (event.component !== 'cli') cliMs = zero === undefined ? undefined : zero + event.timeMs;
      record.own.push(event.timeMs);
      if (cliMs !== undefined) {
        record.cli.push(cliMs);
        cliTimes.set(keyOf(event.component, event.message), cliMs);
      }
      if (event.fields.initMs !== undefined) initMs.push(Number(event.fields.initMs));
    }
    placedRuns.push(cliTimes);
  }

  const summarized = [...byKey.values()].map(({ component, message, own, cli }) => ({
    component,
    message,
    ownMs: summarize(own).median,
    cliMs: cli.length > 0 ? summarize(cli).median : undefined,
    count: own.length,
  }));
  const ordered = summarized.filter((event) => event.cliMs !== undefined).sort((a, b) => a.cliMs - b.cliMs);
  const others = summarized.filter((event) => event.cliMs === undefined);

  for (const [index, event] of ordered.entries()) {
    if (index === 0) continue;
    const steps = [];
    for (const cliTimes of placedRuns) {
      const time = cliTimes.get(keyOf(event.component, event.message));
      const previous = ordered
        .slice(0, index)
        .map((earlier) => cliTimes.get(keyOf(earlier.component, earlier.message)))
        .filter((earlierTime) => earlierTime !== undefined)
        .at(-1);
      if (time !== undefined && previous !== undefined) steps.push(time - previous);
    }
    if (steps.length > 0) event.stepMs = summarize(steps).median;
  }

  return {
    ordered,
    others,
    initClock: zeros.length > 0 ? { zeroMs: summarize(zeros).median, halfWidthMs: summarize(halfWidths).median } : undefined,
    initMs: initMs.length > 0 ? summarize(initMs) : undefined,
    wallMs: summarize(runs.map((run) => run.wallMs)),
    outsideMs: outside.length > 0 ? summarize(outside) : undefined,
  };
}
