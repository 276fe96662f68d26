import { scriptCommand } from '@m-docker/runtime';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';

import { FD_CLOEXEC, type NamespaceName, runInContainer, spawnInContainer, spawnInNamespaces } from '../src/index.js';
import { cleanUp, fixturePath, isRoot, makeTempDir, readNamespaces, runFixture, track, waitForExit } from './helpers.js';

// The targets are started from this process with spawnInNamespaces, and
// every spawnInContainer call runs in fixtures/exec-in-container.mjs under
// the runtime that M_DOCKER_JS_RUNTIME selects. So `pnpm test` exercises
// both the koffi and the bun:ffi backend. The targets run that runtime too.

const JOINED: NamespaceName[] = ['uts', 'ipc', 'net', 'mnt', 'pid', 'cgroup'];
const HOSTNAME = 'm-docker-exec-test';
const HOST_VARIABLE = 'M_DOCKER_EXEC_HOST_VARIABLE';
const setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));
const hasBusybox = existsSync('/bin/busybox');
const fixtureRuntime = scriptCommand(fixturePath('exec-in-container.mjs')).runtime;

// The exec fixtures inherit this variable, and no command in a container
// may see it.
process.env[HOST_VARIABLE] = 'leaked from the host';

interface TargetConfig {
  marker?: string;
  proc?: boolean;
  pivotRoot?: string;
  hostProc?: boolean;
}

interface Target {
  child: ChildProcess;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts fixtures/container-target.mjs as PID 1 of new namespaces, through
 * `wrapper` such as setpriv, and waits until it has printed its ready line.
 * Rejects with the target's stderr if the target exits first.
 */
async function startTarget(config: TargetConfig, wrapper: readonly string[] = []): Promise<Target> {
  const runtime = scriptCommand(fixturePath('container-target.mjs'), [JSON.stringify({ hostname: HOSTNAME, ...config })]);
  const [command, ...args] = [...wrapper, runtime.executable, ...runtime.args] as [string, ...string[]];
  const child = track(
    spawnInNamespaces(command, args, {
      namespaces: ['uts', 'ipc', 'net', 'mnt', 'pid'],
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  const exited = waitForExit(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();

  const first = await lines.next();
  if (first.done || child.pid === undefined) {
    const result = await exited;
    throw new Error(`container-target.mjs exited with ${result.status ?? result.signal} before it was ready: ${result.stderr}`);
  }
  expect(JSON.parse(first.value)).toEqual({ ready: true });

  return {
    child,
    pid: child.pid,
    async stop() {
      child.stdin?.end();
      await exited;
    },
  };
}

/** Runs fixtures/exec-in-container.mjs with `config`, through `wrapper`, and returns its JSON line. */
async function runExec(config: Record<string, unknown>, wrapper: readonly string[] = []) {
  const result = await runFixture('exec-in-container.mjs', [JSON.stringify(config)], wrapper);
  if (result.status !== 0) {
    throw new Error(`exec-in-container.mjs exited with ${result.status ?? result.signal}: ${result.stderr}`);
  }
  return JSON.parse(result.stdout);
}

// Parses the `key=value` lines that the shell scripts below print.
function parseReport(stdout: string): Record<string, string> {
  const entries = stdout
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
  return Object.fromEntries(entries);
}

/** docker's default capability set, as /proc/PID/status and the fixture write it. */
const DOCKER_DEFAULT = '00000000a80425fb';
const DOCKER_DEFAULT_HEX = '0xa80425fb';
const NO_CAPABILITIES = '0000000000000000';

/** An exec that prints the command's Cap* lines. */
const READ_CAPABILITIES = { mode: 'spawn', command: '/bin/sh', args: ['-c', 'grep ^Cap /proc/self/status'] };

// Parses `CapEff:\t00000000a80425fb` lines into { CapEff: '00000000a80425fb' }.
function parseCapabilityLines(text: string): Record<string, string> {
  const lines = text.split('\n').filter((line) => line.startsWith('Cap'));
  return Object.fromEntries(lines.map((line) => line.split(':\t')));
}

function ownCapabilityLines(): Record<string, string> {
  return parseCapabilityLines(readFileSync('/proc/thread-self/status', 'utf8'));
}

function makeMarker(): string {
  const marker = join(makeTempDir(), 'marker');
  mkdirSync(marker);
  return marker;
}

const REPORT_SCRIPT = [
  'echo "hostname=$(hostname)"',
  'for name in uts ipc net mnt pid cgroup; do echo "ns_$name=$(readlink /proc/self/ns/$name)"; done',
  'echo "markers=$(grep -c m-docker-exec-marker /proc/self/mountinfo)"',
  'echo "pid=$$"',
  'echo "pids=$(ls /proc | grep "^[0-9]" | tr "\\n" " ")"',
  'echo "init=$(tr "\\0" " " < /proc/1/cmdline)"',
  'echo "cwd=$(pwd -P)"',
  `echo "hostVariable=\${${HOST_VARIABLE}-unset}"`,
].join('\n');

describe.skipIf(!isRoot)('spawnInContainer (setns needs CAP_SYS_ADMIN: run as root)', () => {
  afterEach(cleanUp);

  it('spawnInContainer joins the target namespaces', async () => {
    const target = await startTarget({ marker: makeMarker(), proc: true });
    const expected = readNamespaces(target.pid);

    const result = await runExec({ mode: 'spawn', targetPid: target.pid, command: '/bin/sh', args: ['-c', REPORT_SCRIPT] });
    const report = parseReport(result.output.stdout);

    expect(result.error).toBeNull();
    expect(result.output.stderr).toBe('');
    expect(result.output.status).toBe(0);
    expect(report.hostname).toBe(HOSTNAME);
    for (const name of JOINED) {
      expect(report[`ns_${name}`], name).toBe(expected[name]);
    }
    expect(report.markers).toBe('1');
    await target.stop();
  });

  it('spawnInContainer child sees target as PID 1', async () => {
    const target = await startTarget({ marker: makeMarker(), proc: true });

    const result = await runExec({ mode: 'spawn', targetPid: target.pid, command: '/bin/sh', args: ['-c', REPORT_SCRIPT] });
    const report = parseReport(result.output.stdout);
    const pids = (report.pids ?? '').trim().split(' ');

    expect(report.init).toContain('container-target.mjs');
    expect(Number(report.pid)).toBeGreaterThan(1);
    expect(Number(report.pid)).not.toBe(result.output.pid);
    expect(pids).toContain('1');
    expect(pids).toContain(report.pid);
    // Only the target and the shell with its few children live in there.
    expect(pids.length).toBeLessThan(10);
    await target.stop();
  });

  it('spawnInContainer restores the caller thread', async () => {
    const marker = makeMarker();
    const target = await startTarget({ marker, proc: true });

    const result = await runExec({ mode: 'spawn', targetPid: target.pid, command: '/bin/true', args: [], marker });

    expect(result.error).toBeNull();
    expect(result.output.status).toBe(0);
    expect(result.after).toEqual(result.before);
    expect(result.before.dumpable).toBe(1);
    expect(result.before.namespaces.mnt).not.toBe(readNamespaces(target.pid).mnt);
    // libuv's pool threads never left the host's file system.
    expect(result.poolView).toEqual([]);
    await target.stop();
  });

  it('runInContainer survives a thread started inside', async () => {
    const target = await startTarget({ marker: makeMarker(), proc: true });

    const result = await runExec({ mode: 'thread', targetPid: target.pid });

    expect(result.error).toBeNull();
    expect(result.after).toEqual(result.before);
    await target.stop();
  });

  it('spawnInContainer gives the command an empty environment', async () => {
    const target = await startTarget({ marker: makeMarker(), proc: true });

    const result = await runExec({ mode: 'spawn', targetPid: target.pid, command: '/bin/sh', args: ['-c', REPORT_SCRIPT] });

    expect(parseReport(result.output.stdout).hostVariable).toBe('unset');
    await target.stop();
  });

  it.each([
    { name: 'default', cwd: undefined, expected: () => '/' },
    { name: 'marker', cwd: 'marker', expected: (marker: string) => marker },
  ])('spawnInContainer working directory: $name', async ({ cwd, expected }) => {
    const marker = makeMarker();
    const target = await startTarget({ marker, proc: true });
    const options = cwd === undefined ? {} : { cwd: marker };

    const result = await runExec({
      mode: 'spawn',
      targetPid: target.pid,
      command: '/bin/sh',
      args: ['-c', 'echo "cwd=$(pwd -P)"; echo "files=$(ls)"'],
      options,
    });
    const report = parseReport(result.output.stdout);

    expect(result.error).toBeNull();
    expect(report.cwd).toBe(expected(marker));
    if (cwd !== undefined) expect(report.files).toBe('from-target');
    await target.stop();
  });

  it('spawnInContainer with missing cwd throws ENOENT', async () => {
    const target = await startTarget({ marker: makeMarker(), proc: true });

    const result = await runExec({
      mode: 'spawn',
      targetPid: target.pid,
      command: '/bin/true',
      args: [],
      options: { cwd: '/nonexistent-m-docker-dir' },
    });

    expect(result.output).toBeNull();
    expect(result.error).toMatchObject({ name: 'SyscallError', syscall: 'chdir', code: 'ENOENT', path: '/nonexistent-m-docker-dir' });
    expect(result.after).toEqual(result.before);
    await target.stop();
  });

  it('spawnInContainer with exited process throws ESRCH', async () => {
    const witness = join(makeTempDir(), 'witness');

    const result = await runExec({ mode: 'dead', command: '/bin/sh', args: ['-c', `echo ran > ${witness}`], witness });

    expect(result.spawned).toBe(false);
    expect(result.spawnError).toMatchObject({ name: 'SyscallError', syscall: 'setns', code: 'ESRCH', errno: 3 });
    expect(result.spawnError.message).toMatch(/^setns fd=\d+ nstype=0x4e020000: ESRCH \(no such process\)$/);
    expect(result.openError).toMatchObject({ syscall: 'pidfd_open', code: 'ESRCH' });
    expect(result.after).toEqual(result.before);
    expect(result.witnessExists).toBe(false);
  });

  it('spawnInContainer limits child capabilities', async () => {
    const target = await startTarget({ marker: makeMarker(), proc: true });
    const own = ownCapabilityLines();

    const result = await runExec({ ...READ_CAPABILITIES, targetPid: target.pid, childCapabilities: DOCKER_DEFAULT_HEX });

    expect(result.error).toBeNull();
    expect(result.output.stderr).toBe('');
    expect(parseCapabilityLines(result.output.stdout)).toEqual({
      CapInh: NO_CAPABILITIES,
      CapPrm: DOCKER_DEFAULT,
      CapEff: DOCKER_DEFAULT,
      CapBnd: DOCKER_DEFAULT,
      CapAmb: NO_CAPABILITIES,
    });
    // The thread keeps its own effective and permitted sets.
    expect(result.threadCapabilities).toEqual({ ...own, CapBnd: DOCKER_DEFAULT });
    expect(result.after).toEqual(result.before);
    await target.stop();
  });

  it('spawnInContainer gives a user only the bounding set', async () => {
    const target = await startTarget({ marker: makeMarker(), proc: true });

    const result = await runExec({
      ...READ_CAPABILITIES,
      targetPid: target.pid,
      options: { uid: 1000, gid: 1000 },
      childCapabilities: DOCKER_DEFAULT_HEX,
    });

    expect(result.error).toBeNull();
    expect(parseCapabilityLines(result.output.stdout)).toEqual({
      CapInh: NO_CAPABILITIES,
      CapPrm: NO_CAPABILITIES,
      CapEff: NO_CAPABILITIES,
      CapBnd: DOCKER_DEFAULT,
      CapAmb: NO_CAPABILITIES,
    });
    await target.stop();
  });

  it('spawnInContainer passes only fds 0 to 2', async () => {
    const target = await startTarget({ marker: makeMarker(), proc: true });

    const result = await runExec({
      mode: 'spawn',
      targetPid: target.pid,
      command: '/bin/sh',
      args: ['-c', 'ls /proc/$$/fd'],
      leakFd: true,
    });

    // The same listing from a plain spawn on the host, before the call, shows
    // the leaked descriptor under Node. Bun's spawn closes it in the child.
    if (fixtureRuntime === 'node') expect(result.hostFds).toContain(String(result.leaked));
    else expect(result.hostFds).toEqual(['0', '1', '2']);
    expect(result.pidfdFlags & FD_CLOEXEC).toBe(FD_CLOEXEC);
    expect(result.output.stderr).toBe('');
    expect(result.output.stdout.trim().split('\n')).toEqual(['0', '1', '2']);
    await target.stop();
  });

  describe.skipIf(!hasBusybox)('with a pivot_root target (needs /bin/busybox from busybox-static)', () => {
    it('spawnInContainer enters the container root', async () => {
      const target = await startTarget({ pivotRoot: makeTempDir() });
      const script = [
        'echo "exe=$(readlink /proc/self/exe)"',
        'echo "root=$(ls / | tr "\\n" " ")"',
        'echo "marker=$(ls /marker)"',
        'echo "hostname=$(hostname)"',
      ].join('\n');

      const result = await runExec({
        mode: 'spawn',
        targetPid: target.pid,
        command: 'sh',
        args: ['-c', script],
        options: { env: { PATH: '/bin' } },
      });
      const report = parseReport(result.output.stdout);

      expect(result.error).toBeNull();
      expect(result.output.stderr).toBe('');
      // The host's /bin/sh is not busybox, so the command was found inside.
      expect(report.exe).toBe('/bin/busybox');
      expect(report.root).toBe('bin hostproc marker old proc ');
      expect(report.marker).toBe('from-target');
      expect(report.hostname).toBe(HOSTNAME);
      expect(result.after).toEqual(result.before);
      await target.stop();
    });

    // The runtime opens /dev/null for an 'ignore' entry in the child, after
    // the fork, so inside the container. This root file system has no /dev.
    it("spawnInContainer stdio 'ignore' needs the container's /dev/null", async () => {
      const target = await startTarget({ pivotRoot: makeTempDir() });

      const result = await runExec({
        mode: 'spawn',
        targetPid: target.pid,
        command: '/bin/sh',
        args: ['-c', 'true'],
        options: { stdio: ['ignore', 'pipe', 'pipe'] },
      });

      expect(result.error).toBeNull();
      expect(result.output).toMatchObject({ status: null, spawnError: 'ENOENT' });
      expect(result.after).toEqual(result.before);
      await target.stop();
    });

    // The target binds the host's /proc into its root, so /hostproc/PID/fd/N
    // is a link to a directory that the exec fixture has open on the host.
    it('spawnInContainer rejects cwd outside the root', async () => {
      const target = await startTarget({ pivotRoot: makeTempDir(), hostProc: true });

      const result = await runExec({
        mode: 'spawn',
        targetPid: target.pid,
        command: '/bin/true',
        args: [],
        cwdThroughHostFd: '/hostproc',
      });

      expect(result.output).toBeNull();
      expect(result.error).toMatchObject({ name: 'SyscallError', syscall: 'chdir', code: 'ENOENT' });
      expect(result.error.message).toMatch(
        /^chdir \/hostproc\/\d+\/fd\/\d+ leads outside the container's root: ENOENT \(no such file or directory\)$/,
      );
      expect(result.error.cause).toBe('getcwd: ENOENT (no such file or directory)');
      expect(result.after).toEqual(result.before);
      await target.stop();
    });
  });

  // The target has no /proc of its own, so the probe inside it can list the
  // host's processes, the exec fixture among them. The fixture stands for
  // the child between fork and execve, which is a copy of it with the same
  // dumpable flag.
  //
  // Besides the dumpable flag, the kernel lets a process without
  // CAP_SYS_PTRACE follow /proc/PID/exe only if its capabilities include all
  // of the target's (cap_ptrace_access_check). So the first test starts the
  // container, the exec fixture and, through it, the probe all without
  // CAP_SYS_PTRACE: the case of a runtime that gives its exec child the
  // container's capabilities before execve, where only the flag protects.
  describe.skipIf(setprivPath === undefined)('dumpable flag (needs setpriv from util-linux)', () => {
    const withoutPtrace = [setprivPath ?? 'setpriv', '--bounding-set=-sys_ptrace'];
    const probe = () => {
      const command = scriptCommand(fixturePath('probe-exe.mjs'));
      return [command.executable, ...command.args];
    };

    it('runInContainer hides the caller from /proc/PID/exe', async () => {
      const target = await startTarget({ marker: makeMarker(), proc: false }, withoutPtrace);

      const result = await runExec({ mode: 'dumpable', targetPid: target.pid, probe: probe() }, withoutPtrace);

      expect(result.dumpableBefore).toBe(1);
      expect(result.dumpableInside).toBe(0);
      expect(result.dumpableAfter).toBe(1);
      expect(result.during.stderr).toBe('');
      expect(JSON.parse(result.during.stdout)).toEqual({ read: 'EACCES', write: 'EACCES' });
      // Once dumpable again, the same probe reaches the runtime's binary.
      expect(result.after.stderr).toBe('');
      expect(JSON.parse(result.after.stdout)).toEqual({ read: 'opened', write: 'ETXTBSY' });
      await target.stop();
    });

    // CAP_SYS_PTRACE overrides the dumpable flag, which is why the caller
    // limits the capabilities of what it starts (next test).
    it('non-dumpable caller is open to CAP_SYS_PTRACE', async () => {
      const target = await startTarget({ marker: makeMarker(), proc: false });

      const result = await runExec({ mode: 'dumpable', targetPid: target.pid, probe: probe() });

      expect(result.dumpableInside).toBe(0);
      expect(JSON.parse(result.during.stdout)).toEqual({ read: 'opened', write: 'ETXTBSY' });
      await target.stop();
    });

    // The probe, like a container's process, gets docker's default set,
    // without CAP_SYS_PTRACE. The caller keeps its full permitted set, so
    // the probe cannot follow /proc/PID/exe even once the caller is
    // dumpable again.
    it('childCapabilities hide the caller from root', async () => {
      const target = await startTarget({ marker: makeMarker(), proc: false });

      const result = await runExec({ mode: 'dumpable', targetPid: target.pid, probe: probe(), childCapabilities: DOCKER_DEFAULT_HEX });

      expect(result.dumpableInside).toBe(0);
      expect(result.during.stderr).toBe('');
      expect(JSON.parse(result.during.stdout)).toEqual({ read: 'EACCES', write: 'EACCES' });
      expect(result.after.stderr).toBe('');
      expect(JSON.parse(result.after.stdout)).toEqual({ read: 'EACCES', write: 'EACCES' });
      await target.stop();
    });

    it('probe-exe fails when stdin closes early', async () => {
      const result = await runFixture('probe-exe.mjs', [String(process.pid), 'after-input']);

      expect(result.status).toBe(3);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe('probe-exe: stdin closed before the go line\n');
    });
  });

  it('setns of mnt with shared fs fails or moves all threads', async () => {
    const marker = makeMarker();
    const target = await startTarget({ marker, proc: true });

    const result = await runFixture('setns-shared-fs.mjs', [JSON.stringify({ targetPid: target.pid, marker })]);
    const report = JSON.parse(result.stdout);

    expect(result.stderr).toBe('');
    expect(report.mountOnly).toBe('EINVAL');
    expect(report.poolBefore).toEqual([]);
    expect(report.poolAfter).toEqual(['from-target']);
    await target.stop();
  });

  it('startTarget fails when the target dies early', async () => {
    const start = startTarget({ pivotRoot: '/nonexistent-m-docker-root' });

    await expect(start).rejects.toThrow(/^container-target\.mjs exited with 1 before it was ready: .*ENOENT/s);
  });
});

describe('spawnInContainer arguments', () => {
  it.each([
    { name: 'a fourth stdio entry', stdio: ['ignore', 'ignore', 'ignore', 'ignore'], entries: 4 },
    { name: 'an ipc channel', stdio: ['ignore', 'ignore', 'ipc'], entries: 3 },
  ] as const)('spawnInContainer rejects $name', ({ stdio, entries }) => {
    const call = () => spawnInContainer(-1, '/bin/true', [], { stdio: [...stdio] });

    expect(call).toThrow(TypeError);
    expect(call).toThrow(`spawnInContainer: invalid stdio with ${entries} entries: pass at most fds 0, 1 and 2, without 'ipc'`);
  });

  it('runInContainer rejects cwd without mnt', () => {
    const start = () => {
      throw new Error('start must not run');
    };

    const call = () => runInContainer(-1, start, () => {}, { namespaces: ['uts'], cwd: '/' });

    expect(call).toThrow(TypeError);
    expect(call).toThrow("runInContainer: invalid cwd / without 'mnt' in namespaces: add 'mnt' or leave cwd out");
  });
});
