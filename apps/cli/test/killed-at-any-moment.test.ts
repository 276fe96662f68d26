import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { buildTestImages } from '../../../scripts/test-images/build-test-images.mjs';
import { cgroupsBelow, removeParentDirectories, suiteParent } from './cgroup-helpers.js';
import { childPids, HAS_BUSYBOX, hostMounts, isAlive, killStartedCli, makeTempDir, NOT_ROOT, runCli, waitFor } from './helpers.js';

// Killing the CLI of a foreground run or the monitor of `run -d` at any
// moment of the start never leaves a container that ps shows as running
// after its processes are gone, nor one that rm -f cannot remove. After
// rm -f, the store, the cgroups and the host's mount table are as before.
// The moments are delays after the spawn. On a typical machine each row of
// the table kills at another step of the start, and every row must end
// clean wherever its kill lands.

const MOMENTS_MS = [0, 2, 5, 10, 15, 20, 30, 45, 70, 100, 150];

let base: { path: string; remove: () => void };
let store: string;
let parent: string;
let mountsBefore: string;

beforeAll(async () => {
  if (NOT_ROOT || !HAS_BUSYBOX) return;
  base = makeTempDir('killed');
  store = join(base.path, 'store');
  parent = `${suiteParent()}/killed-${process.pid}`;
  const images = await buildTestImages(join(base.path, 'images'));
  const imported = await cli(['image', 'import', images.dockerArchive]);
  if (imported.status !== 0) throw new Error(`import failed: ${imported.stderr}`);
  mountsBefore = hostMounts();
}, 60_000);

afterEach(killStartedCli);

afterAll(() => {
  if (parent !== undefined) removeParentDirectories(parent);
  base?.remove();
});

// The CLI's cgroup parent is this file's own, so that the stale cleanup of
// every command covers it and no other test's cgroups count.
function cli(args: string[]) {
  return runCli(['--root', store, ...args], { env: { M_DOCKER_CGROUP_PARENT: parent }, deadlineMs: 30_000 });
}

const RUN_ARGS = ['--image', 'busybox', '-v', '/data', 'sleep', '100'];

interface Listed {
  ID: string;
  Status: string;
}

async function listAll(): Promise<Listed[]> {
  const text = (await cli(['ps', '-a', '--format', 'json'])).stdout.toString().trim();
  return text === '' ? [] : text.split('\n').map((line) => JSON.parse(line) as Listed);
}

// Waits until no process of the store's containers runs any more: each
// record's PID 1 is gone or a zombie.
async function waitForContainersGone(): Promise<void> {
  const initPids = () =>
    containerDirectories()
      .map((id) => join(store, 'containers', id, 'container.json'))
      .filter((file) => existsSync(file))
      .map((file) => (JSON.parse(readFileSync(file, 'utf8')) as { init?: { pid: number } }).init?.pid)
      .filter((pid): pid is number => pid !== undefined);
  await waitFor(() => initPids().every((pid) => !isAlive(pid)), 'the killed containers to die');
}

async function expectCleanAfterRemoval(): Promise<void> {
  await waitForContainersGone();
  const listed = await listAll();
  const ids = listed.map((container) => container.ID);
  const removed = ids.length === 0 ? undefined : await cli(['rm', '-f', '-v', ...ids]);
  const after = await listAll();

  expect(listed.filter((container) => container.Status.startsWith('Up'))).toEqual([]);
  expect(removed === undefined || removed.status === 0).toBe(true);
  expect(after).toEqual([]);
  expect(containerDirectories()).toEqual([]);
  expect(cgroupsBelow(parent)).toEqual([]);
  expect(hostMounts()).toBe(mountsBefore);
}

// A CLI killed before it wrote its first record leaves no containers folder.
function containerDirectories(): string[] {
  const directory = join(store, 'containers');
  return existsSync(directory) ? readdirSync(directory) : [];
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('killed at any moment (root only; needs /bin/busybox)', () => {
  it.each(MOMENTS_MS)('foreground CLI killed after %i ms', async (moment) => {
    let pid = 0;
    const run = cli(['run', ...RUN_ARGS]).catch(() => undefined);
    await waitFor(() => {
      pid = childPidOfTest();
      return pid !== 0;
    }, 'the CLI to start');
    await delay(moment);
    process.kill(pid, 'SIGKILL');
    await run;

    await expectCleanAfterRemoval();
  });

  it.each(MOMENTS_MS)('monitor killed %i ms after it started', async (moment) => {
    const run = cli(['run', '-d', ...RUN_ARGS]);
    let monitor = 0;
    await waitFor(() => {
      monitor = monitorPid();
      return monitor !== 0;
    }, 'the monitor to start');
    await delay(moment);
    process.kill(monitor, 'SIGKILL');
    await run;

    await expectCleanAfterRemoval();
  });
});

// The test's CLI: the only child of this process that runs m-docker.
function childPidOfTest(): number {
  return childPids(process.pid).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(store)) ?? 0;
}

// The monitor: a process that the `run -d` CLI started in a session of its
// own, with the store on its command line and the monitor variable set.
function monitorPid(): number {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (!cmdline.includes(store) || !cmdline.includes('-d')) continue;
      if (readFileSync(`/proc/${name}/environ`, 'utf8').includes('M_DOCKER_MONITOR_FD=')) return Number(name);
    } catch {
      // The process ended while it was read.
    }
  }
  return 0;
}
