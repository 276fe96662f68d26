import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { removeStaleCgroups } from '@m-docker/cgroups';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { isCliAlive } from '../src/run/container-cgroup.js';
import {
  CONTAINER_CONTROLLERS,
  cgroupProcesses,
  cgroupsBelow,
  containerDirectory,
  LAYOUT,
  OWN_PATHS,
  parentDirectories,
  removeParentDirectories,
  suiteParent,
} from './cgroup-helpers.js';
import { type CliResult, childPids, killStartedCli, makeTempDir, NOT_ROOT, runCli, waitFor } from './helpers.js';

// `m-docker run` with real cgroup v1 hierarchies. This file's containers go
// below a parent of its own, inside the suite's relative parent, so that it
// can check that nothing is left there after each run.

const CAN_RUN = !NOT_ROOT && LAYOUT?.version === 1;
const SKIP_REASON = NOT_ROOT ? 'needs root' : 'needs root and a cgroup v1 layout';
const PARENT = `${suiteParent()}/run-cgroups-${process.pid}`;
// The suite's parent is shared with the other test files; the global teardown removes it.
const SUITE_DEPTH = suiteParent().split('/').length;
const NAME = /^([0-9a-f]{64})-(\d+)-(\d+)$/;
const MIB = 1024 * 1024;

// The controllers whose hierarchies every container joins. cpuset is joined only for its options.
const ALWAYS_JOINED = CONTAINER_CONTROLLERS.filter((controller) => controller !== 'cpuset');

function run(args: string[], options: Parameters<typeof runCli>[1] = {}): Promise<CliResult> {
  return runCli(['run', ...args], { ...options, env: { M_DOCKER_CGROUP_PARENT: PARENT, ...options.env } });
}

/** Returns the cgroup path of each v1 controller in a /proc/<pid>/cgroup text. */
function cgroupByController(text: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of text.split('\n').filter(Boolean)) {
    const [, controllers = '', path = ''] = line.split(':');
    for (const controller of controllers.split(',')) paths.set(controller, path);
  }
  return paths;
}

function existingParentDirectories(): string[] {
  return parentDirectories(PARENT).filter((directory) => existsSync(directory));
}

afterEach(killStartedCli);

afterAll(() => {
  if (!CAN_RUN) return;
  // A failed test may have left the cgroups of killed CLIs. The parent
  // directories are this file's own.
  removeStaleCgroups({ parent: PARENT, isAlive: isCliAlive });
  const left = [...cgroupsBelow(PARENT), ...removeParentDirectories(PARENT, SUITE_DEPTH)];
  expect(left).toEqual([]);
});

describe.skipIf(!CAN_RUN)(`run in a cgroup (${SKIP_REASON})`, () => {
  it('container gets its own cgroup', async () => {
    let cliPid = 0;
    const result = await run(['cat', '/proc/self/cgroup'], {
      onSpawn: (child) => {
        cliPid = child.pid as number;
      },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);

    const paths = cgroupByController(result.stdout.toString());
    const memoryPath = paths.get('memory') ?? '';
    const name = basename(memoryPath);
    expect(name).toMatch(NAME);
    expect(NAME.exec(name)?.[2]).toBe(String(cliPid));
    for (const controller of ALWAYS_JOINED) {
      expect(paths.get(controller), controller).toBe(join(OWN_PATHS[controller] ?? '/', PARENT, name));
    }
    expect(paths.get('cpuset')).toBe(OWN_PATHS.cpuset);
  });

  it('cgroup is gone after exit', async () => {
    const result = await run(['true']);
    expect(result.status).toBe(0);
    expect(existingParentDirectories()).toEqual([]);
  });

  it('cgroup is gone after command not found', async () => {
    const result = await run(['no-such-command-m-docker']);
    expect(result.status).toBe(127);
    expect(existingParentDirectories()).toEqual([]);
  });

  it('cgroup is gone after the init dies', async () => {
    const init = fileURLToPath(new URL('./fixtures/init-exits-early.mjs', import.meta.url));
    const result = await run(['true'], { env: { M_DOCKER_INIT_PATH: init } });
    expect(result.status).toBe(125);
    expect(existingParentDirectories()).toEqual([]);
  });

  it('writes the limits', async () => {
    const files = [
      'memory/memory.limit_in_bytes',
      'memory/memory.soft_limit_in_bytes',
      'cpu/cpu.cfs_period_us',
      'cpu/cpu.cfs_quota_us',
      'cpu/cpu.shares',
      'pids/pids.max',
    ];
    // Each file is read from the container's own cgroup, as /proc/self/cgroup names it.
    const script = files
      .map((file) => {
        const [controller, name] = file.split('/');
        return `cat /sys/fs/cgroup/${controller}$(grep ':${controller}:' /proc/self/cgroup | cut -d: -f3)/${name}`;
      })
      .join('; ');
    const options = ['-m', '32m', '--memory-reservation', '16m', '--cpu-period', '50000', '--cpu-quota', '25000', '--cpu-shares', '512'];
    const result = await run([...options, '--pids-limit', '10', '/bin/sh', '-c', script]);

    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toBe(`${32 * MIB}\n${16 * MIB}\n50000\n25000\n512\n10\n`);
  });

  it('--cpuset-cpus pins the container', async () => {
    const result = await run(['--cpuset-cpus', '0', '/bin/sh', '-c', "grep '^Cpus_allowed_list' /proc/self/status"]);
    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toMatch(/^Cpus_allowed_list:\s+0\n$/);
    expect(existingParentDirectories()).toEqual([]);
  });

  it('memory limit kills with 137 and says so', async () => {
    // busybox tail keeps the last lines, and /dev/zero has no newline, so it buffers all it reads.
    const result = await run(['-m', '32m', '/bin/busybox', 'tail', '/dev/zero']);
    expect(result.status).toBe(137);
    expect(result.stderr).toBe(
      "m-docker: the container reached its memory limit (--memory 32m), and the kernel's OOM killer killed a process in it: raise --memory\n",
    );
    expect(existingParentDirectories()).toEqual([]);
  });

  it('memory limit kill of run -d is recorded', async () => {
    const started = await run(['-d', '-m', '32m', '/bin/busybox', 'tail', '/dev/zero']);
    const id = started.stdout.toString().trim();
    const waited = await runCli(['wait', id]);
    const [inspected] = JSON.parse((await runCli(['inspect', id])).stdout.toString());
    const listed = JSON.parse((await runCli(['ps', '-a', '--format', 'json'])).stdout.toString().split('\n').find((line) => line.includes(id.slice(0, 12))) ?? '{}');
    await runCli(['rm', id]);

    expect(started.status).toBe(0);
    expect(waited.stdout.toString()).toBe('137\n');
    expect(inspected.State).toMatchObject({ Status: 'exited', OOMKilled: true, ExitCode: 137 });
    expect(listed.Status).toMatch(/^Exited \(137\) .+ ago$/);
    expect(existingParentDirectories()).toEqual([]);
  });

  it('fork loop stops at --pids-limit 10', async () => {
    // echo and $((...)) are built in, so only `sleep` forks: the shell and 9 sleeps are the 10 tasks.
    const script = 'n=0; while [ $n -lt 30 ]; do sleep 30 2>/dev/null & n=$((n+1)); echo $n; done';
    const result = await run(['--pids-limit', '10', '/bin/busybox', 'sh', '-c', script]);

    expect(result.stdout.toString()).toBe('1\n2\n3\n4\n5\n6\n7\n8\n9\n');
    expect(result.stderr).toBe("sh: can't fork: Resource temporarily unavailable\n");
    expect(result.status).toBe(2);
    expect(existingParentDirectories()).toEqual([]);
  });

  it('--cpus 0.5 gives about half a CPU', async () => {
    let cliPid = 0;
    const running = run(['--cpus', '0.5', '/bin/busybox', 'sh', '-c', 'while :; do :; done'], {
      onSpawn: (child) => {
        cliPid = child.pid as number;
      },
    });
    let cgroup = '';
    await waitFor(() => {
      cgroup = containerCgroups('cpuacct')[0] ?? '';
      return cgroup !== '' && cgroupProcesses(cgroup).length > 0 && readFileSync(`/proc/${cgroupProcesses(cgroup)[0]}/comm`, 'utf8') === 'busybox\n';
    }, 'the busy loop to start in its cgroup');

    const usageBefore = BigInt(readFileSync(join(cgroup, 'cpuacct.usage'), 'utf8').trim());
    const timeBefore = process.hrtime.bigint();
    await sleep(3000);
    const usage = Number(BigInt(readFileSync(join(cgroup, 'cpuacct.usage'), 'utf8').trim()) - usageBefore);
    const elapsed = Number(process.hrtime.bigint() - timeBefore);

    const [pid1] = childPids(cliPid);
    process.kill(pid1 as number, 'SIGKILL');
    const result = await running;

    // cpuacct.usage counts the cgroup's CPU time in ns. Other work on the
    // machine can only lower the share, and the CFS quota caps it at 0.5.
    const share = usage / elapsed;
    expect(share).toBeGreaterThan(0.3);
    expect(share).toBeLessThan(0.7);
    expect(result.status).toBe(137);
    expect(result.stderr).toBe('');
    expect(existingParentDirectories()).toEqual([]);
  });

  it('next run removes the cgroup of a killed CLI', async () => {
    let cliPid = 0;
    const killed = run(['sleep', '4715'], {
      onSpawn: (child) => {
        cliPid = child.pid as number;
      },
    });
    let cgroups: string[] = [];
    await waitFor(() => {
      cgroups = containerCgroups('pids');
      return cgroups.length === 1 && cgroupProcesses(cgroups[0] as string).length > 0 && childPids(cliPid).length > 0;
    }, 'the container to start in its cgroup');
    process.kill(cliPid, 'SIGKILL');
    expect((await killed).signal).toBe('SIGKILL');

    // The init dies of its parent-death signal, and the cgroup stays.
    const name = basename(cgroups[0] as string);
    await waitFor(() => cgroupProcesses(cgroups[0] as string).length === 0, 'the container to die with its CLI');
    for (const controller of ALWAYS_JOINED) expect(existsSync(containerDirectory(controller, PARENT, name)), controller).toBe(true);

    const next = await run(['true']);
    expect(next.status).toBe(0);
    for (const controller of ALWAYS_JOINED) expect(existsSync(containerDirectory(controller, PARENT, name)), controller).toBe(false);
    expect(cgroupsBelow(PARENT)).toEqual([]);
    // The killed CLI created the parent directories, so no later run removes them.
    expect(removeParentDirectories(PARENT, SUITE_DEPTH)).toEqual([]);
  });

  it('next volume ls removes the cgroup of a killed CLI', async () => {
    let cliPid = 0;
    const killed = run(['sleep', '4716'], {
      onSpawn: (child) => {
        cliPid = child.pid as number;
      },
    });
    let cgroups: string[] = [];
    await waitFor(() => {
      cgroups = containerCgroups('pids');
      return cgroups.length === 1 && cgroupProcesses(cgroups[0] as string).length > 0 && childPids(cliPid).length > 0;
    }, 'the container to start in its cgroup');
    process.kill(cliPid, 'SIGKILL');
    expect((await killed).signal).toBe('SIGKILL');
    await waitFor(() => cgroupProcesses(cgroups[0] as string).length === 0, 'the container to die with its CLI');
    const name = basename(cgroups[0] as string);

    const next = await runCli(['volume', 'ls', '-q'], { env: { M_DOCKER_CGROUP_PARENT: PARENT } });

    expect(next.status).toBe(0);
    for (const controller of ALWAYS_JOINED) expect(existsSync(containerDirectory(controller, PARENT, name)), controller).toBe(false);
    // The killed CLI created the parent directories, so no later command removes them.
    expect(removeParentDirectories(PARENT, SUITE_DEPTH)).toEqual([]);
  });

  it('--debug timeline shows the cgroup phases', async () => {
    const result = await runCli(['--debug', 'run', 'true'], { env: { M_DOCKER_CGROUP_PARENT: PARENT } });
    expect(result.status).toBe(0);
    const timeline = /timeline in ms since the CLI process started: (.*) id=/.exec(result.stderr)?.[1] ?? '';
    const phases = timeline.split(', ').map((entry) => entry.replace(/ [\d.]+$/, ''));
    for (const phase of ['cgroup created', 'cgroup joined', 'stale cgroups removed', 'cgroup removed']) expect(phases).toContain(phase);
    // The init must be in its cgroup before it gets start.
    expect(phases.indexOf('ready received')).toBeLessThan(phases.indexOf('cgroup joined'));
    expect(phases.indexOf('cgroup joined')).toBeLessThan(phases.indexOf('start sent'));
  });

  it.each([
    ['spawned early', ['--debug', 'run']],
    ['spawned after parsing', ['--debug', '--', 'run']],
  ])('warm-up writes stay in the own cgroup: init %s', async (_case, prefix) => {
    const result = await runCli([...prefix, 'cat', '/proc/self/cgroup'], { env: { M_DOCKER_CGROUP_PARENT: PARENT } });
    expect(result.status).toBe(0);

    // Both writes went to the tasks file of the CLI's own cgroup, which is
    // the test process's, and moved only the CLI's main thread there.
    const writes = [...result.stderr.matchAll(/the cgroup warm-up write ended .*phase="([^"]+)" path=(\S+)/g)];
    expect(writes.map((match) => match[1])).toEqual(['cgroup warm-up started', 'cgroup warm-up repeated']);
    const ownTaskFiles = Object.entries(LAYOUT?.version === 1 ? LAYOUT.controllers : {}).map(([controller, mountPoint]) =>
      join(mountPoint, OWN_PATHS[controller] ?? '/', 'tasks'),
    );
    for (const match of writes) expect(ownTaskFiles).toContain(match[2]);

    // COMMAND still runs in the container's cgroup.
    const name = basename(cgroupByController(result.stdout.toString()).get('memory') ?? '');
    expect(name).toMatch(NAME);

    const timeline = /timeline in ms since the CLI process started: (.*) id=/.exec(result.stderr)?.[1] ?? '';
    const phases = timeline.split(', ').map((entry) => entry.replace(/ [\d.]+$/, ''));
    expect(phases.indexOf('init spawned')).toBeLessThan(phases.indexOf('cgroup warm-up started'));
    expect(phases.indexOf('cgroup created')).toBeLessThan(phases.indexOf('cgroup warm-up repeated'));
    expect(phases.indexOf('cgroup warm-up repeated')).toBeLessThan(phases.indexOf('cgroup joined'));
  });
});

describe.skipIf(!CAN_RUN)(`--cgroup-parent (${SKIP_REASON})`, () => {
  // An absolute parent starts at each hierarchy's root. It stays below this
  // process's own cgroup in every hierarchy only if the own cgroups lie on
  // one path, as on a machine where one hierarchy bounds the process in a
  // cgroup of its own and the others have it at their root.
  const ownPaths = ALWAYS_JOINED.map((controller) => OWN_PATHS[controller] ?? '/');
  const deepest = ownPaths.reduce((longest, path) => (path.length > longest.length ? path : longest), '/');
  const onOnePath = ownPaths.every((path) => path === '/' || deepest === path || deepest.startsWith(`${path}/`));

  it('relative parent is below the own cgroup', async () => {
    const result = await run(['--cgroup-parent', `${PARENT}/relative`, 'cat', '/proc/self/cgroup']);
    const paths = cgroupByController(result.stdout.toString());
    const name = basename(paths.get('pids') ?? '');
    for (const controller of ALWAYS_JOINED) {
      expect(paths.get(controller), controller).toBe(join(OWN_PATHS[controller] ?? '/', PARENT, 'relative', name));
    }
    expect(existingParentDirectories()).toEqual([]);
  });

  it.skipIf(!onOnePath)('absolute parent is from the root', async () => {
    const absolute = join(deepest, PARENT, 'absolute');
    const result = await run(['--cgroup-parent', absolute, 'cat', '/proc/self/cgroup']);
    expect(result.stderr).toBe('');
    const paths = cgroupByController(result.stdout.toString());
    const name = basename(paths.get('pids') ?? '');
    expect(name).toMatch(NAME);
    for (const controller of ALWAYS_JOINED) expect(paths.get(controller), controller).toBe(join(absolute, name));
    expect(existingParentDirectories()).toEqual([]);
  });

  it('variable sets the parent', async () => {
    const result = await runCli(['run', 'cat', '/proc/self/cgroup'], { env: { M_DOCKER_CGROUP_PARENT: `${PARENT}/from-variable` } });
    const paths = cgroupByController(result.stdout.toString());
    expect(paths.get('pids')).toMatch(new RegExp(`^${join(OWN_PATHS.pids ?? '/', PARENT, 'from-variable')}/[0-9a-f]{64}-\\d+-\\d+$`));
  });
});

describe.skipIf(NOT_ROOT)('invalid resource options (needs root)', () => {
  it.each([
    [['-m', '4m'], 'invalid value "4m" for --memory: the minimum is 6291456 bytes (6m)'],
    [['--memory', '12q'], 'invalid value "12q" for --memory: expected a number of bytes with an optional unit b, k, m, g, t or p (multiples of 1024), such as 512m or 1.5g'],
    [['--memory-swap', '64m'], 'invalid value "64m" for --memory-swap: set --memory too, because --memory-swap is the limit of memory plus swap'],
    [['--memory-reservation', '-1'], 'invalid value "-1" for --memory-reservation: expected a number of bytes with an optional unit b, k, m, g, t or p (multiples of 1024), such as 512m or 1.5g'],
    [['--cpus', '0'], /^invalid value "0" for --cpus: expected a number of CPUs from 0\.01 to \d+, such as 0\.5 or 1\.5$/],
    [['--cpu-period', '999'], 'invalid value "999" for --cpu-period: expected 1000 to 1000000 µs (1 ms to 1 s)'],
    [['--cpu-quota', '10'], 'invalid value "10" for --cpu-quota: expected at least 1000 µs (1 ms), or -1 for no quota'],
    [['--cpu-shares', '-5'], 'invalid value "-5" for --cpu-shares: expected 2 to 262144'],
    [['--cpuset-cpus', '4095'], /^invalid value "4095" for --cpuset-cpus: 4095 is not available \(available: [\d,-]+\)$/],
    [['--cpuset-mems', '0-1023'], /^invalid value "0-1023" for --cpuset-mems: \d+ is not available \(available: [\d,-]+\)$/],
    [['--pids-limit', '-3'], 'invalid value "-3" for --pids-limit: expected a positive number of tasks, or -1 for unlimited'],
    [['--cgroup-parent', 'a/../b'], 'invalid value "a/../b" for --cgroup-parent: expected a cgroup path without "." or ".." components, such as /m-docker or m-docker'],
  ])('%j gives 125', async (options, message) => {
    const result = await run([...options, 'true']);
    expect(result.status).toBe(125);
    const line = result.stderr.replace(/^m-docker: /, '').replace(/\n$/, '');
    if (typeof message === 'string') expect(line).toBe(message);
    else expect(line).toMatch(message);
    expect(result.stderr).toMatch(/^m-docker: [^\n]*\n$/);
    expect(existingParentDirectories()).toEqual([]);
  });

  // The init is spawned before the options are parsed: an invalid value must
  // end it. An init that waits for ever, found by its unique path, must be
  // gone once the CLI has exited.
  it('invalid value leaves no init running', async () => {
    const dir = makeTempDir('resource-option');
    try {
      const init = join(dir.path, 'waiting-init.mjs');
      writeFileSync(init, 'setInterval(() => {}, 1000);\n');
      const result = await run(['--pids-limit', 'many', 'true'], { env: { M_DOCKER_INIT_PATH: init } });
      expect(result.stderr).toBe('m-docker: invalid value "many" for --pids-limit: expected a whole number\n');
      expect(processesRunning(init)).toEqual([]);
    } finally {
      dir.remove();
    }
  });
});

/** Lists the container cgroups below this file's parent in the hierarchy of `controller`. */
function containerCgroups(controller: string): string[] {
  const directory = containerDirectory(controller, PARENT, '');
  if (!existsSync(directory)) return [];
  return readdirSync(directory, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && NAME.test(entry.name))
    .map((entry) => join(directory, entry.name));
}

// The pids of processes whose command line contains `text`, from /proc.
function processesRunning(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text)) pids.push(Number(name));
    } catch {
      // The process ended while /proc was read.
    }
  }
  return pids;
}
