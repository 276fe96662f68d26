// How long moving a process into a cgroup takes after a pause, right after
// another move, and at several delays after warmUpMigration() started, with
// the main thread blocked meanwhile as the CLI's is. Needs root and the
// built package (pnpm --filter @m-docker/cgroups build). Runs under Node or
// Bun. See README.md in this folder.
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { createCgroup, warmUpMigration } from '../dist/index.js';

const USAGE = `usage: node packages/cgroups/bench/migration-latency.mjs [--rounds N] [--pause MS]

  --rounds N   measured moves per case (default 20)
  --pause MS   idle time before each case's first write, in ms (default 300)
`;

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' }, pause: { type: 'string', default: '300' }, help: { type: 'boolean' } } });
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const rounds = Number(values.rounds);
const pauseMs = Number(values.pause);
if (!(Number.isInteger(rounds) && rounds > 0 && pauseMs >= 0)) {
  process.stderr.write(USAGE);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  process.stderr.write('migration-latency: needs root, to create cgroups and move a process\n');
  process.exit(1);
}

// A relative parent, so both cgroups sit below this script's own cgroup.
const PARENT = `m-docker-bench-migration-${process.pid}`;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const blockFor = (ms) => Atomics.wait(sleepCell, 0, 0, ms);

/** Returns the milliseconds that one synchronous write of `value` to `path` took; throws if it fails. */
function timeWrite(path, value) {
  const fd = openSync(path, 'w');
  try {
    const started = performance.now();
    writeSync(fd, value);
    return performance.now() - started;
  } finally {
    closeSync(fd);
  }
}

/** Moves `pid` into `cgroup` the way the CLI does, in every hierarchy, and returns the milliseconds it took. */
function timeMove(cgroup, pid) {
  const started = performance.now();
  cgroup.addProcess(pid);
  return performance.now() - started;
}

// Each case pauses, then returns the time of the measured move.
function cases(cgroups, pid) {
  let next = 0;
  const other = () => cgroups[next++ % 2];
  const warmUpThenMove = (delayMs) => async () => {
    blockFor(pauseMs);
    const outcome = warmUpMigration();
    blockFor(delayMs);
    const ms = timeMove(other(), pid);
    const { error } = await outcome;
    if (error) throw error;
    return ms;
  };

  return [
    [
      'move after a pause',
      async () => {
        blockFor(pauseMs);
        return timeMove(other(), pid);
      },
    ],
    [
      'move right after a move',
      async () => {
        blockFor(pauseMs);
        timeMove(other(), pid);
        return timeMove(other(), pid);
      },
    ],
    ...[0, 5, 10, 15, 20, 30, 50].map((delay) => [`move ${delay} ms after warmUpMigration() started`, warmUpThenMove(delay)]),
    [
      'move right after a write of a thread id that does not exist',
      async () => {
        blockFor(pauseMs);
        const path = `${cgroups[0].paths[Object.keys(cgroups[0].paths)[0]]}/tasks`;
        try {
          timeWrite(path, '2147483647');
        } catch (error) {
          if (error.code !== 'ESRCH') throw error;
        }
        return timeMove(other(), pid);
      },
    ],
  ];
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function main() {
  const child = spawn('sleep', ['1000000'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  const cgroups = [];
  const cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    for (const cgroup of cgroups.splice(0).reverse()) cgroup.remove();
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    for (const id of ['a', 'b']) cgroups.push(createCgroup({ id, parent: PARENT, limits: {} }));
    const table = [];
    for (const [name, measure] of cases(cgroups, child.pid)) {
      const times = [];
      for (let round = 0; round < rounds; round++) times.push(await measure());
      times.sort((a, b) => a - b);
      table.push([name, quantile(times, 0), quantile(times, 0.5), quantile(times, 0.9), times.at(-1)]);
    }
    const runtime = process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}`;
    process.stdout.write(`${runtime}, ${rounds} moves per case, ${pauseMs} ms pause before each; ms per move into ${Object.keys(cgroups[0].paths).join(', ')}\n`);
    process.stdout.write(`${'case'.padEnd(62)}${['min', 'median', 'p90', 'max'].map((h) => h.padStart(8)).join('')}\n`);
    for (const [name, ...numbers] of table) {
      process.stdout.write(`${name.padEnd(62)}${numbers.map((n) => n.toFixed(2).padStart(8)).join('')}\n`);
    }
  } finally {
    await cleanup();
  }
}

await main();
