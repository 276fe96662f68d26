// Section 6 of `pnpm bench`: detached containers and exec. Each row is a
// runtime that keeps a container running: m-docker (`run -d`, `exec`,
// `rm -f`) under the combinations whose CLI and init share a runtime, and
// runc (`run --detach`, `exec`, `delete --force`) with a busybox bundle.
//
// The m-docker containers run `sleep 1000` on the host's root and live in
// the store that M_DOCKER_ROOT names, which must be inside the benchmark's
// scratch directory. The caller's cleanup removes whatever a failure or a
// signal left: every container in that store with `m-docker rm -f`, and
// every runc container in the bundle's state directory.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { countMounts } from './images.mjs';
import { yieldToEventLoop } from './measure.mjs';
import { descendants } from './process-memory.mjs';
import { prepareRuncDetachedBundle } from './runc-bundle.mjs';

/** The command that every detached container runs. */
export const DETACHED_COMMAND = ['sleep', '1000'];

/** m-docker containers of one row that run at once in a memory round, so that their runtime's file pages are shared as they would be on a host with several containers. */
export const CONTAINERS_PER_MEMORY_ROUND = 3;

/** How long the containers of a memory round run before their memory is read, in ms. */
export const UP_BEFORE_SAMPLE_MS = 1000;

/** Returns the labels of a row's three timed steps. */
export function lifecycleLabels(row) {
  if (row.kind === 'runc') {
    return {
      start: `runc run --detach ID (busybox bundle, ${DETACHED_COMMAND.join(' ')})`,
      exec: 'runc exec ID /bin/true',
      remove: 'runc delete --force ID',
    };
  }
  return {
    start: `m-docker run -d --rm ${DETACHED_COMMAND.join(' ')} [${row.tag}]`,
    exec: `m-docker exec ID /bin/true [${row.tag}]`,
    remove: `m-docker rm -f ID [${row.tag}]`,
  };
}

// ---------------------------------------------------------------------------
// Running one step

/**
 * Runs `argv` to its exit and returns `{ elapsedMs, stdout }`, timed like
 * measure.mjs's timeRun: process.hrtime around a synchronous spawn. stdout
 * and stderr go to files, not pipes, because `runc run --detach` with
 * `process.terminal` false hands its own stdio to the container, and a
 * pipe would stay open until the container exits. Throws if the command
 * fails, with its stderr in the message.
 */
function timeStep(argv, { cwd, env, outputDir }) {
  const stdoutPath = join(outputDir, 'lifecycle-stdout');
  const stderrPath = join(outputDir, 'lifecycle-stderr');
  const stdoutFd = openSync(stdoutPath, 'w');
  const stderrFd = openSync(stderrPath, 'w');
  let result;
  let elapsedMs;
  try {
    const started = process.hrtime.bigint();
    result = spawnSync(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', stdoutFd, stderrFd] });
    elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  } finally {
    closeSync(stdoutFd);
    closeSync(stderrFd);
  }

  if (result.error) throw new Error(`cannot run ${argv.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    const stderr = readFileSync(stderrPath, 'utf8').trim();
    const failure = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.status}`;
    throw new Error(`${argv.join(' ')} ${failure}${stderr ? `: ${stderr}` : ''}`);
  }
  return { elapsedMs, stdout: readFileSync(stdoutPath, 'utf8') };
}

// ---------------------------------------------------------------------------
// /proc

// The fields of /proc/PID/stat after the command name, which may contain
// spaces and parentheses; undefined when the process is gone.
function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Returns the pid and start time (field 22 of /proc/PID/stat, in clock ticks since boot) of a running process, or undefined. */
function identityOf(pid) {
  const fields = statFields(pid);
  if (fields === undefined || fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return { pid, startTime: fields[19] };
}

// Whether the process that `identity` named still runs: same pid, same start time, not a zombie.
function isRunning(identity) {
  return identityOf(identity.pid)?.startTime === identity.startTime;
}

function parentOf(pid) {
  const fields = statFields(pid);
  return fields === undefined ? undefined : Number(fields[1]);
}

// This process and its ancestors up to the machine's PID 1.
function ownAncestry() {
  const chain = new Set();
  for (let pid = process.pid; pid !== undefined && pid > 0 && !chain.has(pid); pid = parentOf(pid)) chain.add(pid);
  return chain;
}

/**
 * Returns the pids of the processes that a container keeps besides its
 * COMMAND: the ancestors of COMMAND up to the first one that is also an
 * ancestor of this benchmark (the machine's PID 1 or a subreaper), plus the
 * other descendants of the topmost of them. An m-docker container has its
 * monitor there; a runc container, whose COMMAND is reparented when
 * `runc run --detach` exits, has none.
 */
export function processesBesidesCommand(commandPid) {
  const ancestry = ownAncestry();
  const chain = [];
  for (let pid = parentOf(commandPid); pid !== undefined && pid > 0 && !ancestry.has(pid); pid = parentOf(pid)) chain.push(pid);
  if (chain.length === 0) return [];

  const top = chain.at(-1);
  const found = new Set([...chain, ...descendants(top).map(Number)]);
  found.delete(commandPid);
  for (const pid of descendants(commandPid)) found.delete(Number(pid));
  return [...found];
}

// `Name:   value kB` lines of /proc/PID/status and /proc/PID/smaps_rollup.
function kibField(text, name) {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text ?? '');
  return match ? Number(match[1]) : undefined;
}

function readText(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Reads the memory of one process in KiB: `rss` (VmRSS), and from
 * smaps_rollup (Linux 4.14 and later) `pss` and `private` (Private_Clean
 * plus Private_Dirty). A value is undefined when its file cannot be read.
 */
function readProcessMemory(pid) {
  const status = readText(`/proc/${pid}/status`);
  const rollup = readText(`/proc/${pid}/smaps_rollup`);
  const privateClean = kibField(rollup, 'Private_Clean');
  const privateDirty = kibField(rollup, 'Private_Dirty');
  return {
    rss: kibField(status, 'VmRSS'),
    pss: kibField(rollup, 'Pss'),
    private: privateClean === undefined || privateDirty === undefined ? undefined : privateClean + privateDirty,
    threads: Number(/^Threads:\s+(\d+)/m.exec(status ?? '')?.[1]),
  };
}

// The sum of each field over `pids`; a field is undefined if any process lacks it.
function sumMemory(pids) {
  const total = { processes: pids.length, rss: 0, pss: 0, private: 0, threads: 0 };
  for (const pid of pids) {
    const memory = readProcessMemory(pid);
    for (const field of ['rss', 'pss', 'private', 'threads']) {
      total[field] = total[field] === undefined || !Number.isFinite(memory[field]) ? undefined : total[field] + memory[field];
    }
  }
  return total;
}

// ---------------------------------------------------------------------------
// Rows

/**
 * Returns the row of one m-docker combination. Its `start()` returns
 * `{ elapsedMs, id, monitor, command }`, where `monitor` and `command` are
 * the identities of the container's owner process (the monitor) and of its
 * PID 1, read from `<store>/containers/<id>/container.json`.
 */
function mDockerRow({ root, launcher, combination, store, outputDir }) {
  const step = (args) => timeStep([launcher, ...args], { cwd: root, env: combination.env, outputDir });
  return {
    kind: 'm-docker',
    tag: combination.tag,
    start() {
      const run = step(['run', '-d', '--rm', ...DETACHED_COMMAND]);
      const id = run.stdout.trim();
      if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`m-docker run -d printed ${JSON.stringify(run.stdout)}: expected a container id of 64 hex digits`);
      const record = JSON.parse(readFileSync(join(store, 'containers', id, 'container.json'), 'utf8'));
      if (record.init === undefined) throw new Error(`container ${id} has no init in its record after run -d returned`);
      return { elapsedMs: run.elapsedMs, id, monitor: record.owner, command: record.init };
    },
    exec: (id) => step(['exec', id, '/bin/true']).elapsedMs,
    remove: (id) => step(['rm', '-f', id]).elapsedMs,
  };
}

/** Returns the runc row. Its `start()` returns `{ elapsedMs, id, monitor: undefined, command }`, with PID 1 from `runc state`. */
function runcRow(bundle, outputDir) {
  const runc = (args) => [bundle.runc, '--root', bundle.stateRoot, ...args];
  let sequence = 0;
  return {
    kind: 'runc',
    tag: 'runc',
    start() {
      const id = `${bundle.idPrefix}-${sequence++}`;
      const run = timeStep(runc(['run', '--detach', '--bundle', bundle.bundle, id]), { outputDir });
      const state = JSON.parse(timeStep(runc(['state', id]), { outputDir }).stdout);
      return { elapsedMs: run.elapsedMs, id, monitor: undefined, command: identityOf(state.pid) ?? { pid: state.pid, startTime: '' } };
    },
    exec: (id) => timeStep(runc(['exec', id, '/bin/true']), { outputDir }).elapsedMs,
    remove: (id) => timeStep(runc(['delete', '--force', id]), { outputDir }).elapsedMs,
  };
}

// One whole cycle, untimed. Returns undefined, or the error's last line.
function tryCycle(row) {
  let started;
  try {
    started = row.start();
    row.exec(started.id);
    row.remove(started.id);
    return undefined;
  } catch (error) {
    if (started !== undefined) {
      try {
        row.remove(started.id);
      } catch {
        // The caller's cleanup deletes it.
      }
    }
    return error.message.trim().split('\n').at(-1);
  }
}

// The store that the containers live in: M_DOCKER_ROOT from the
// combinations' environment, which must lie inside the scratch directory.
function benchStore(combinations, scratchDir) {
  const store = combinations[0]?.env.M_DOCKER_ROOT;
  if (store === undefined || relative(scratchDir, store).startsWith('..') || store === scratchDir) {
    throw new Error(`M_DOCKER_ROOT is ${JSON.stringify(store)}: the lifecycle rows need a store inside the scratch directory ${scratchDir}`);
  }
  return store;
}

/**
 * Prepares the rows of section 6: one per combination whose CLI and init
 * share a runtime, and runc's when `runc run --detach`, `runc exec` and
 * `runc delete` work with the busybox bundle. Returns `{ rows, runc,
 * store, cleanup }`, where `runc` is `{ available, version }` or
 * `{ available: false, reason }`. `cleanup()` removes every container
 * left in the store and in runc's state directory; it is safe to call
 * more than once.
 */
export function prepareLifecycle({ root, launcher, combinations, scratchDir }) {
  const measured = combinations.filter((combination) => combination.cli === combination.init);
  const store = benchStore(combinations, scratchDir);
  const cgroupParent = combinations[0]?.env.M_DOCKER_CGROUP_PARENT;
  if (cgroupParent === undefined || cgroupParent.startsWith('/')) {
    throw new Error(`M_DOCKER_CGROUP_PARENT is ${JSON.stringify(cgroupParent)}: the lifecycle rows need a relative cgroup parent`);
  }

  const rows = measured.map((combination) => mDockerRow({ root, launcher, combination, store, outputDir: scratchDir }));
  const removeStoreContainers = () => {
    for (const id of leftoverIds(store)) {
      const removal = spawnSync(launcher, ['rm', '-f', id], { cwd: root, env: measured[0]?.env ?? combinations[0].env, stdio: 'ignore' });
      if (removal.status !== 0) killContainer(store, id);
    }
  };

  let runc;
  const bundle = prepareRuncDetachedBundle(scratchDir);
  if (!bundle.available) {
    runc = bundle;
  } else {
    const row = runcRow(bundle, scratchDir);
    const failure = tryCycle(row);
    if (failure === undefined) {
      rows.push(row);
      runc = { available: true, version: bundle.version, stateRoot: bundle.stateRoot, runc: bundle.runc };
    } else {
      bundle.cleanup();
      runc = { available: false, reason: `runc run --detach, exec or delete failed: ${failure}` };
    }
  }

  const cleanup = () => {
    removeStoreContainers();
    if (bundle.available) bundle.cleanup();
  };
  return { rows, runc, store, cleanup };
}

// The fallback when `m-docker rm -f` fails, for example while the CLI's
// build output is being rewritten. It sends SIGKILL to the container's
// PID 1 and monitor where their pid still names the process in the record,
// and waits at most KILL_WAIT_MS for both to exit. The scratch directory's
// removal then takes the container's directory, and the cgroup parent's
// cleanup its empty cgroups.
function killContainer(store, id) {
  let record;
  try {
    record = JSON.parse(readFileSync(join(store, 'containers', id, 'container.json'), 'utf8'));
  } catch {
    return;
  }
  const processes = [record.init, record.owner].filter((identity) => identity !== undefined && isRunning(identity));
  for (const { pid } of processes) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // It exited since the check.
    }
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  while (processes.some(isRunning) && Date.now() < deadline) Atomics.wait(SLEEP_CELL, 0, 0, 10);
}

/** How long the cleanup waits for killed container processes to exit, in ms. */
const KILL_WAIT_MS = 5000;
const SLEEP_CELL = new Int32Array(new SharedArrayBuffer(4));

function leftoverIds(store) {
  try {
    return readdirSync(join(store, 'containers'));
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
}

// ---------------------------------------------------------------------------
// Measuring

/**
 * Measures the three steps of every row: one untimed warm-up cycle per row,
 * then `runs` rounds. Each round starts one container per row, then runs
 * `exec` in each, then removes each, so the steps of all rows interleave.
 * Resolves to a Map from each step's label to its times in ms. `seen`
 * collects the identities of every monitor and COMMAND process started.
 */
export async function measureLifecycleLatencies(rows, runs, seen) {
  for (const row of rows) {
    const started = row.start();
    remember(seen, started);
    row.exec(started.id);
    row.remove(started.id);
  }

  const times = new Map();
  const record = (label, elapsedMs) => {
    if (!times.has(label)) times.set(label, []);
    times.get(label).push(elapsedMs);
  };
  for (let round = 0; round < runs; round++) {
    const started = rows.map((row) => {
      const container = row.start();
      remember(seen, container);
      record(lifecycleLabels(row).start, container.elapsedMs);
      return container;
    });
    await yieldToEventLoop();
    for (const [index, row] of rows.entries()) record(lifecycleLabels(row).exec, row.exec(started[index].id));
    for (const [index, row] of rows.entries()) record(lifecycleLabels(row).remove, row.remove(started[index].id));
    await yieldToEventLoop();
  }
  return times;
}

function remember(seen, container) {
  if (container.monitor) seen.push(container.monitor);
  seen.push(container.command);
}

/**
 * Measures what each container keeps besides COMMAND, in `runs` rounds.
 * Each round starts CONTAINERS_PER_MEMORY_ROUND containers per m-docker
 * row and one runc container (all of runc's share one cgroups path), waits
 * UP_BEFORE_SAMPLE_MS, reads the memory of the processes that
 * processesBesidesCommand() finds for each, and removes them all.
 * Resolves to a Map from row tag to one `{ processes, rss, pss, private,
 * threads }` per container (KiB; summed over the processes).
 */
export async function measureLifecycleMemory(rows, runs, seen) {
  const samples = new Map(rows.map((row) => [row.tag, []]));
  for (let round = 0; round < runs; round++) {
    const started = [];
    try {
      for (const row of rows) {
        const count = row.kind === 'runc' ? 1 : CONTAINERS_PER_MEMORY_ROUND;
        for (let index = 0; index < count; index++) {
          const container = row.start();
          remember(seen, container);
          started.push({ row, container });
        }
      }
      await delay(UP_BEFORE_SAMPLE_MS);
      for (const { row, container } of started) samples.get(row.tag).push(sampleContainer(row, container));
    } finally {
      for (const { row, container } of started) row.remove(container.id);
    }
  }
  return samples;
}

// COMMAND must still be the same process and must be `sleep` by now: the
// init has replaced itself with it.
function sampleContainer(row, container) {
  const { pid } = container.command;
  const comm = readText(`/proc/${pid}/comm`)?.trim();
  if (!isRunning(container.command) || comm !== DETACHED_COMMAND[0]) {
    throw new Error(`[${row.tag}] container ${container.id}: its PID 1 (pid ${pid}) is ${comm ?? 'gone'}, expected a running ${DETACHED_COMMAND[0]}`);
  }
  const besides = processesBesidesCommand(pid);
  if (container.monitor && !besides.includes(container.monitor.pid)) {
    throw new Error(`[${row.tag}] container ${container.id}: its monitor (pid ${container.monitor.pid}) is not among the processes above its PID 1: ${besides.join(', ') || 'none'}`);
  }
  return sumMemory(besides);
}

// ---------------------------------------------------------------------------
// The whole section

/** Returns the three load averages of /proc/loadavg, as text: `0.52 1.10 1.30`. */
function loadAverages() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/**
 * Measures section 6 and checks its cleanup. Resolves to `{ rows, runc,
 * latencies, memory, checks }`. `checks` contains the load averages and mount
 * counts before and after, the containers left in the store and in runc's
 * state directory after the last removal, and the monitors and COMMAND
 * processes still running.
 */
export async function measureLifecycle({ lifecycle, runs, memoryRuns }) {
  const { rows, runc, store } = lifecycle;
  const seen = [];
  const before = { load: loadAverages(), mounts: countMounts() };

  const latencies = await measureLifecycleLatencies(rows, runs, seen);
  const memory = await measureLifecycleMemory(rows, memoryRuns, seen);

  const runcLeft = runc.available ? spawnSync(runc.runc, ['--root', runc.stateRoot, 'list', '--quiet'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean) : [];
  const checks = {
    load: { before: before.load, after: loadAverages() },
    mounts: { before: before.mounts, after: countMounts() },
    storeContainers: leftoverIds(store).length,
    runcContainers: runcLeft.length,
    processesStarted: seen.length,
    processesRunning: seen.filter(isRunning).length,
  };
  return { rows, runc, latencies, memory, checks };
}
