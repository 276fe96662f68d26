// The phase timeline of `m-docker --debug run`, read from its debug log.
import { summarize } from './measure.mjs';

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
// received" once it has read it. The CLI logs "start sent" once it has
// written start, which the init then logs as "start received". Between the
// two, the CLI moves the init into its cgroup. So, with the init's clock
// zero at CLI time `offset`:
//   offset + set_up <= ready_received   and   offset + start_received >= start_sent.
// A run logged by a CLI without "start sent" uses ready_received for both.
const SET_UP = 'container set up';
const READY_RECEIVED = 'ready received';
const START_SENT = 'start sent';
const START_RECEIVED = 'start received';
const READY_SENT = 'ready sent, waiting for start';
const EXITED = 'container exited';
const CONFIG_SENT = 'config sent';
const INIT_SPAWNED = 'init spawned';
const EXECVE = 'execve';

/**
 * Bounds the CLI-clock time of the init's clock zero (its time origin) from
 * one run's events. Returns `{ low, high }` in CLI milliseconds, or undefined
 * if a needed line is missing.
 */
export function boundInitClock(events) {
  const find = (component, message) => events.find((event) => event.component === component && event.message === message)?.timeMs;
  const setUp = find('init', SET_UP);
  const readyReceived = find('cli', READY_RECEIVED);
  const startSent = find('cli', START_SENT) ?? readyReceived;
  const startReceived = find('init', START_RECEIVED);
  if (setUp === undefined || readyReceived === undefined || startReceived === undefined) return undefined;
  return { low: startSent - startReceived, high: readyReceived - setUp };
}

// The CLI's cgroup phases, each logged with its duration in an `ms` field.
const CGROUP_PHASES = ['cgroup created', 'cgroup joined', 'stale cgroups removed', 'cgroup removed'];

/**
 * Returns the durations of one run's cgroup phases, by phase, from the `ms`
 * field of the CLI's lines, and the time the init waited between sending
 * ready and receiving start, on its own clock, as `start wait`.
 */
function cgroupDurations(events) {
  const durations = new Map();
  for (const event of events) {
    if (event.component === 'cli' && CGROUP_PHASES.includes(event.message) && Number.isFinite(Number(event.fields.ms))) {
      durations.set(event.message, Number(event.fields.ms));
    }
  }
  const readySent = events.find((event) => event.component === 'init' && event.message === READY_SENT)?.timeMs;
  const startReceived = events.find((event) => event.component === 'init' && event.message === START_RECEIVED)?.timeMs;
  if (readySent !== undefined && startReceived !== undefined) durations.set('start wait', startReceived - readySent);
  return durations;
}

const TIME_ORIGIN = 'time origin';

const keyOf = (component, message) => `${component}\u0000${message}`;

/**
 * Estimates how long the init waited for the CLI's config in one run, on
 * the CLI's clock: from the init's first timed line (its execve time minus
 * initMs) to the CLI's `config sent`, or 0 when the config was sent first.
 * Returns undefined when a needed line is missing.
 */
function estimateConfigWait(events, zero) {
  const configSent = events.find((event) => event.component === 'cli' && event.message === CONFIG_SENT)?.timeMs;
  const execve = events.find((event) => event.component === 'init' && event.message === EXECVE);
  const initMs = Number(execve?.fields.initMs);
  if (zero === undefined || configSent === undefined || execve === undefined || !Number.isFinite(initMs)) return undefined;
  const initStarted = zero + execve.timeMs - initMs;
  return Math.max(0, configSent - initStarted);
}

/**
 * Reduces the runs to one timeline. Each run's init events move onto its
 * CLI clock with the midpoint of that run's bounds, and both processes get a
 * "time origin" event at their clock's zero. Events are ordered by the
 * median of their CLI times. Each event's step is the median, over the runs,
 * of its time since the previous event in that order that the run logged.
 * Events that race (such as the init's time origin and the CLI's lines
 * around the spawn) can have a negative step, which means they overlapped.
 * Returns `{ ordered, others, initClock, initMs, configWaitMs, cgroupMs, initRuntimes, runs, wallMs, outsideMs }`.
 * `others` are init events that no run could place, because every run
 * lacked a ready/start line. outsideMs is the part of each run's wall-clock
 * time outside the CLI's clock: the sh launcher, the runtime's start up to
 * its time origin, and the exit after the last line. configWaitMs estimates the part of
 * initMs that the init spent waiting for the CLI's config. cgroupMs maps
 * each of CGROUP_PHASES, and `start wait`, to the summary of its durations
 * (see cgroupDurations). initRuntimes
 * counts the runs by the `runtime` field of the CLI's `init spawned` line.
 */
export function summarizeTimeline(runs) {
  const byKey = new Map();
  const zeros = [];
  const halfWidths = [];
  const initMs = [];
  const outside = [];
  const configWaits = [];
  const cgroupTimes = new Map();
  const initRuntimes = new Map();
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
    const configWait = estimateConfigWait(run.events, zero);
    if (configWait !== undefined) configWaits.push(configWait);
    for (const [phase, duration] of cgroupDurations(run.events)) {
      if (!cgroupTimes.has(phase)) cgroupTimes.set(phase, []);
      cgroupTimes.get(phase).push(duration);
    }
    const spawned = run.events.find((event) => event.component === 'cli' && event.message === INIT_SPAWNED);
    const initRuntime = spawned?.fields.runtime ?? 'not logged';
    initRuntimes.set(initRuntime, (initRuntimes.get(initRuntime) ?? 0) + 1);

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
    configWaitMs: configWaits.length > 0 ? summarize(configWaits) : undefined,
    cgroupMs: new Map([...cgroupTimes].map(([phase, durations]) => [phase, summarize(durations)])),
    initRuntimes,
    runs: runs.length,
    wallMs: summarize(runs.map((run) => run.wallMs)),
    outsideMs: outside.length > 0 ? summarize(outside) : undefined,
  };
}
