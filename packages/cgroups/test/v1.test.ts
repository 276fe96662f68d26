import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  CgroupError,
  type ContainerCgroup,
  createCgroup,
  detectLayout,
  ownCgroupPaths,
  parseCpus,
  type ResourceLimits,
  removeStaleCgroups,
} from '../src/index.js';

// Real cgroup v1 tests. Every cgroup is created below this process's own
// cgroup in each hierarchy (a relative parent), and every test removes what
// it created in afterEach, also when it fails.

const MIB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
const layout = detectLayout();
const canRun = isRoot && layout.version === 1;
const own = ownCgroupPaths();
const PARENT = `m-docker-test-${process.pid}-${randomBytes(3).toString('hex')}`;
const HIERARCHIES = ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset'];

/** Lists the test parent's directory in each hierarchy that createCgroup may use, one per mount point. */
function parentDirectories(): string[] {
  if (layout.version !== 1) return [];
  const directories = HIERARCHIES.filter((controller) => layout.controllers[controller] !== undefined).map((controller) =>
    join(layout.controllers[controller] as string, own[controller] ?? '/', PARENT),
  );
  return [...new Set(directories)];
}

/** Returns the container's expected directory in one hierarchy. */
function expectedPath(controller: string, id: string): string {
  if (layout.version !== 1) throw new Error('v1 only');
  return join(layout.controllers[controller] as string, own[controller] ?? '/', PARENT, id);
}

interface Started {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

const cgroups: ContainerCgroup[] = [];
const started: Started[] = [];

function create(id: string, limits: ResourceLimits): ContainerCgroup {
  const cgroup = createCgroup({ id, parent: PARENT, limits });
  cgroups.push(cgroup);
  return cgroup;
}

/** Starts `sh -c script`; scripts begin with `read go`, so the test can move the shell before it works. */
function startShell(script: string): Started {
  const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<Started['exited'] extends Promise<infer T> ? T : never>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  const entry = { child, exited };
  started.push(entry);
  return entry;
}

function pidOf(entry: Started): number {
  if (entry.child.pid === undefined) throw new Error('child did not start');
  return entry.child.pid;
}

function readLines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean);
}

// Processes left in a test cgroup descend from a shell this file started
// (the fork test's `sleep`s outlive their shell), so they are ended by pid.
async function emptyCgroup(directory: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const pids = readLines(join(directory, 'cgroup.procs'));
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // It exited already.
      }
    }
    await sleep(50);
  }
  throw new Error(`processes remain in ${directory}`);
}

afterEach(async () => {
  for (const { child, exited } of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }

  const failures: unknown[] = [];
  for (const cgroup of cgroups.splice(0).reverse()) {
    try {
      cgroup.remove();
    } catch (error) {
      failures.push(error);
    }
  }

  // Whatever a failed test left behind: leftover container cgroups, then the parent.
  for (const parent of parentDirectories().filter((directory) => existsSync(directory))) {
    for (const entry of readdirSync(parent, { withFileTypes: true }).filter((item) => item.isDirectory())) {
      await emptyCgroup(join(parent, entry.name));
      rmdirSync(join(parent, entry.name));
    }
    rmdirSync(parent);
  }
  expect(failures).toEqual([]);
});

afterAll(() => {
  expect(parentDirectories().filter((directory) => existsSync(directory))).toEqual([]);
});

describe.skipIf(!canRun)('createCgroup on v1 (needs root and a cgroup v1 layout)', () => {
  it('writes the limits', () => {
    const cgroup = create('limits', {
      memory: 32 * MIB,
      memoryReservation: 16 * MIB,
      pidsLimit: 10,
      cpuQuota: 50_000,
      cpuPeriod: 100_000,
      cpuShares: 512,
    });

    expect(cgroup.paths).toEqual({
      memory: expectedPath('memory', 'limits'),
      pids: expectedPath('pids', 'limits'),
      cpu: expectedPath('cpu', 'limits'),
      cpuacct: expectedPath('cpuacct', 'limits'),
    });

    const expected: Array<[string, string, string]> = [
      ['memory', 'memory.limit_in_bytes', '33554432'],
      ['memory', 'memory.soft_limit_in_bytes', '16777216'],
      ['cpu', 'cpu.cfs_period_us', '100000'],
      ['cpu', 'cpu.cfs_quota_us', '50000'],
      ['cpu', 'cpu.shares', '512'],
      ['pids', 'pids.max', '10'],
    ];
    // docker's default: as much swap as memory, where the kernel accounts swap.
    if (existsSync(join(expectedPath('memory', 'limits'), 'memory.memsw.limit_in_bytes'))) {
      expected.push(['memory', 'memory.memsw.limit_in_bytes', '67108864']);
    }
    for (const [controller, file, value] of expected) {
      expect(readFileSync(join(expectedPath(controller, 'limits'), file), 'utf8'), file).toBe(`${value}\n`);
    }
  });

  it('moves a process and removes', async () => {
    const cgroup = create('process', { pidsLimit: 5 });
    const shell = startShell('read go');
    const pid = pidOf(shell);

    cgroup.addProcess(pid);

    const lines = readLines(`/proc/${pid}/cgroup`);
    for (const controller of ['memory', 'pids', 'cpu', 'cpuacct']) {
      const line = lines.find((entry) => entry.split(':')[1]?.split(',').includes(controller));
      expect(line?.split(':')[2], controller).toBe(join(own[controller] ?? '/', PARENT, 'process'));
    }
    expect(readLines(join(expectedPath('pids', 'process'), 'cgroup.procs'))).toEqual([String(pid)]);

    shell.child.kill('SIGKILL');
    await shell.exited;
    cgroup.remove();

    for (const path of Object.values(cgroup.paths)) expect(existsSync(path), path).toBe(false);
    expect(parentDirectories().filter((directory) => existsSync(directory))).toEqual([]);
  });

  it('copies the parent cpuset', async () => {
    if (layout.version !== 1 || layout.controllers.cpuset === undefined) return;
    const cgroup = create('cpuset', { cpusetCpus: '0' });
    const base = join(layout.controllers.cpuset, own.cpuset ?? '/');
    const leaf = expectedPath('cpuset', 'cpuset');

    expect(cgroup.paths.cpuset).toBe(leaf);
    expect(readFileSync(join(base, PARENT, 'cpuset.cpus'), 'utf8')).toBe(readFileSync(join(base, 'cpuset.cpus'), 'utf8'));
    expect(readFileSync(join(base, PARENT, 'cpuset.mems'), 'utf8')).toBe(readFileSync(join(base, 'cpuset.mems'), 'utf8'));
    expect(readFileSync(join(leaf, 'cpuset.cpus'), 'utf8')).toBe('0\n');
    expect(readFileSync(join(leaf, 'cpuset.mems'), 'utf8')).toBe(readFileSync(join(base, 'cpuset.mems'), 'utf8'));

    const shell = startShell('read go');
    cgroup.addProcess(pidOf(shell));
    const status = readFileSync(`/proc/${pidOf(shell)}/status`, 'utf8');
    expect(/^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1]).toBe('0');
  });

  it('removes what it created on failure', () => {
    let error: unknown;
    try {
      create('rejected', { pidsLimit: 4, cpusetCpus: '1000' });
    } catch (caught) {
      error = caught;
    }

    const file = join(expectedPath('cpuset', 'rejected'), 'cpuset.cpus');
    expect(CgroupError.isInstance(error)).toBe(true);
    expect((error as CgroupError).code).toBe('WRITE_FAILED');
    // Linux rejects a CPU beyond nr_cpu_ids with ERANGE, older kernels with EINVAL.
    const reason = /^(ERANGE \(result too large\)|EINVAL \(invalid argument\))$/;
    expect((error as CgroupError).message.startsWith(`writing "1000" to ${file} for --cpuset-cpus failed: `)).toBe(true);
    expect((error as CgroupError).message.split('failed: ')[1]).toMatch(reason);
    expect((error as CgroupError).path).toBe(file);
    expect(parentDirectories().filter((directory) => existsSync(directory))).toEqual([]);
  });

  it('detects an OOM kill', async () => {
    const cgroup = create('oom', { memory: 32 * MIB });
    // tail keeps the last lines, and /dev/zero has no newline, so it buffers all of it.
    const shell = startShell('read go; head -c 200m /dev/zero | tail');
    cgroup.addProcess(pidOf(shell));
    expect(cgroup.oomKilled()).toBe(false);

    shell.child.stdin?.end('go\n');
    const result = await shell.exited;

    expect(result.code).toBe(128 + 9);
    expect(cgroup.oomKilled()).toBe(true);
    expect(Number(readFileSync(join(cgroup.paths.memory as string, 'memory.max_usage_in_bytes'), 'utf8'))).toBeLessThanOrEqual(32 * MIB);
  });

  it('stops a fork loop at the pids limit', async () => {
    const cgroup = create('forks', { pidsLimit: 10 });
    const directory = cgroup.paths.pids as string;
    // The sleeps get no stderr pipe, so the shell's pipe closes when it exits.
    const shell = startShell('read go; n=0; while [ $n -lt 30 ]; do sleep 30 2>/dev/null & n=$((n+1)); done; wait');
    cgroup.addProcess(pidOf(shell));

    shell.child.stdin?.end('go\n');
    const result = await shell.exited;

    // dash exits with status 2 when fork(2) fails, leaving its 9 sleeps:
    // with the shell they were the 10 tasks that the limit allows.
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Cannot fork');
    expect(readFileSync(join(directory, 'pids.current'), 'utf8')).toBe('9\n');
    expect(Number(/^max (\d+)$/m.exec(readFileSync(join(directory, 'pids.events'), 'utf8'))?.[1])).toBeGreaterThan(0);

    const leftovers = readLines(join(directory, 'cgroup.procs'));
    for (const pid of leftovers) expect(readFileSync(`/proc/${pid}/comm`, 'utf8')).toBe('sleep\n');
    await emptyCgroup(directory);
  });

  it('holds --cpus 0.5 near half a CPU', async () => {
    const { quota, period } = parseCpus('0.5');
    const cgroup = create('cpus', { cpuQuota: quota, cpuPeriod: period });
    const usageFile = join(cgroup.paths.cpuacct as string, 'cpuacct.usage');
    const shell = startShell('read go; while :; do :; done');
    cgroup.addProcess(pidOf(shell));
    shell.child.stdin?.end('go\n');
    await sleep(300);

    const usageBefore = BigInt(readFileSync(usageFile, 'utf8').trim());
    const timeBefore = process.hrtime.bigint();
    await sleep(2000);
    const usage = Number(BigInt(readFileSync(usageFile, 'utf8').trim()) - usageBefore);
    const elapsed = Number(process.hrtime.bigint() - timeBefore);

    // The cgroup's own CPU counter over wall time. Other work on the machine
    // (CI runs every package's tests at once on 2 cores) can only lower the
    // share, so the upper bound is the check of the limit. Below half a CPU
    // the kernel may not have needed to throttle; above it, it must have.
    const share = usage / elapsed;
    const throttled = Number(/^nr_throttled (\d+)$/m.exec(readFileSync(join(cgroup.paths.cpu as string, 'cpu.stat'), 'utf8'))?.[1]);
    expect(share).toBeGreaterThan(0.05);
    expect(share).toBeLessThan(0.7);
    if (share >= 0.45) expect(throttled).toBeGreaterThan(0);
  });
});

describe.skipIf(!canRun)('removeStaleCgroups on v1 (needs root and a cgroup v1 layout)', () => {
  it('removes an empty leftover only', () => {
    const stale = create('stale', {});
    const live = create('live', {});
    const shell = startShell('read go');
    live.addProcess(pidOf(shell));

    const removed = removeStaleCgroups({ parent: PARENT, isAlive: () => false });

    expect(removed.sort()).toEqual([...new Set(Object.values(stale.paths))].sort());
    for (const path of Object.values(stale.paths)) expect(existsSync(path), path).toBe(false);
    for (const path of Object.values(live.paths)) expect(existsSync(path), path).toBe(true);
  });
});
