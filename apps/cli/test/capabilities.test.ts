import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { buildTestImages, type TestImages } from '../../../scripts/test-images/build-test-images.mjs';
import { type CliResult, HAS_BUSYBOX, killStartedCli, makeTempDir, NOT_ROOT, runCli, waitFor } from './helpers.js';

// The capabilities of containers, read from /proc/self/status inside them:
// docker's default set for run and exec (with and without -t, --init and
// -u), --cap-add, --cap-drop and --privileged, the checks on their values,
// inspect's HostConfig, and what the set keeps a container's process from
// doing: mounting, and reaching the host's runtime binary through
// /proc/PID/exe of a process that joins the container (runc's
// CVE-2019-5736).

const setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** docker's default set (CapBnd 0xa80425fb) and the empty set, as /proc/PID/status writes them. */
const DOCKER_DEFAULT = '00000000a80425fb';
const NONE = '0000000000000000';
const DEFAULT_SETS = { CapInh: NONE, CapPrm: DOCKER_DEFAULT, CapEff: DOCKER_DEFAULT, CapBnd: DOCKER_DEFAULT, CapAmb: NONE };

const READ_CAPABILITIES = ['grep', '^Cap', '/proc/self/status'];

let base: { path: string; remove: () => void };
let images: TestImages;
let store: string;

beforeAll(async () => {
  if (NOT_ROOT || !HAS_BUSYBOX) return;
  base = makeTempDir('capabilities');
  images = await buildTestImages(join(base.path, 'images'));
  store = join(base.path, 'store');
  const imported = await runCli(['--root', store, 'image', 'import', images.dockerArchive]);
  if (imported.status !== 0) throw new Error(`import failed: ${imported.stderr}`);
}, 60_000);

afterEach(killStartedCli);
afterAll(async () => {
  if (store !== undefined) {
    const listed = await runCli(['--root', store, 'ps', '-a', '-q']);
    const ids = listed.stdout.toString().split('\n').filter(Boolean);
    if (ids.length > 0) await runCli(['--root', store, 'rm', '-f', ...ids]);
  }
  base?.remove();
});

function cli(args: string[], prefix?: string[]): Promise<CliResult> {
  return runCli(['--root', store, ...args], prefix === undefined ? {} : { prefix });
}

// Parses `CapEff:\t00000000a80425fb` lines, with `\r\n` ends under -t.
function parseCapabilities(output: Buffer): Record<string, string> {
  const lines = output
    .toString()
    .split(/\r?\n/)
    .filter((line) => line.startsWith('Cap'));
  return Object.fromEntries(lines.map((line) => line.split(':\t')));
}

// The Cap* lines of this process: the CLI it starts has the same sets.
function ownCapabilities(): Record<string, string> {
  return parseCapabilities(readFileSync('/proc/self/status'));
}

async function runDetached(name: string, args: string[]): Promise<void> {
  const started = await cli(['run', '-d', '--name', name, ...args]);
  if (started.status !== 0) throw new Error(`run -d ${name} failed: ${started.stderr}`);
}

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('capabilities of run (root only; needs /bin/busybox)', () => {
  it.each([
    { name: 'plain', options: ['--image', 'busybox'] },
    { name: '-t', options: ['-t', '--image', 'busybox'] },
    { name: '--init', options: ['--init', '--image', 'busybox'] },
    { name: "the host's root", options: [] },
  ])('run gives the default set: $name', async ({ options }) => {
    const result = await cli(['run', '--rm', ...options, ...READ_CAPABILITIES]);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(parseCapabilities(result.stdout)).toEqual(DEFAULT_SETS);
  });

  it('run -u gives only the bounding set', async () => {
    const result = await cli(['run', '--rm', '-u', 'app', '--image', 'busybox', ...READ_CAPABILITIES]);

    expect(parseCapabilities(result.stdout)).toEqual({ ...DEFAULT_SETS, CapPrm: NONE, CapEff: NONE });
  });

  it('run --cap-drop ALL gives none', async () => {
    const result = await cli(['run', '--rm', '--cap-drop', 'ALL', '--image', 'busybox', ...READ_CAPABILITIES]);

    expect(result.status).toBe(0);
    expect(parseCapabilities(result.stdout)).toEqual({ CapInh: NONE, CapPrm: NONE, CapEff: NONE, CapBnd: NONE, CapAmb: NONE });
  });

  it('run --cap-add and --cap-drop change the set', async () => {
    // Without NET_RAW (bit 13), with NET_ADMIN (bit 12).
    const result = await cli(['run', '--rm', '--cap-drop', 'net_raw', '--cap-add', 'CAP_NET_ADMIN', '--image', 'busybox', ...READ_CAPABILITIES]);

    expect(parseCapabilities(result.stdout)).toMatchObject({ CapBnd: '00000000a80415fb', CapEff: '00000000a80415fb' });
  });

  it('run --privileged gives every capability', async () => {
    const own = ownCapabilities();

    const result = await cli(['run', '--rm', '--privileged', '--cap-drop', 'ALL', '--image', 'busybox', ...READ_CAPABILITIES]);

    expect(parseCapabilities(result.stdout)).toEqual({ CapInh: NONE, CapPrm: own.CapBnd, CapEff: own.CapBnd, CapBnd: own.CapBnd, CapAmb: NONE });
  });

  it('mount needs --cap-add SYS_ADMIN', async () => {
    // The mount happens in the container's own mount namespace.
    const script = 'mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && grep -c " /tmp/m tmpfs" /proc/mounts';

    const denied = await cli(['run', '--rm', '--image', 'busybox', 'sh', '-c', script]);
    const allowed = await cli(['run', '--rm', '--cap-add', 'SYS_ADMIN', '--image', 'busybox', 'sh', '-c', script]);

    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toMatch(/mount: permission denied|Operation not permitted/);
    expect(denied.stdout.toString()).toBe('');
    expect(allowed.stderr).toBe('');
    expect(allowed.stdout.toString()).toBe('1\n');
    expect(allowed.status).toBe(0);
  });

  it.each([
    { option: '--cap-add', value: 'FOO', name: 'CAP_FOO' },
    { option: '--cap-drop', value: 'cap_sys_everything', name: 'CAP_SYS_EVERYTHING' },
  ])('run rejects $option $value and creates nothing', async ({ option, value, name }) => {
    const result = await cli(['run', '--name', 'bad-capability', option, value, '--image', 'busybox', 'true']);
    const listed = await cli(['ps', '-a', '--format', 'json']);

    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      `m-docker: invalid ${option} ${JSON.stringify(value)}: unknown capability ${name}: give a name from capabilities(7), with or without CAP_, such as NET_ADMIN, or ALL\n`,
    );
    expect(listed.stdout.toString()).not.toContain('bad-capability');
  });

  // setpriv starts the CLI without CAP_SYS_NICE in its bounding set.
  describe.skipIf(setprivPath === undefined)('without CAP_SYS_NICE (needs setpriv)', () => {
    const withoutNice = () => [setprivPath ?? 'setpriv', '--bounding-set=-sys_nice'];

    it('run rejects --cap-add of a missing capability', async () => {
      const result = await cli(['run', '--rm', '--cap-add', 'sys_nice', '--image', 'busybox', 'true'], withoutNice());

      expect(result.status).toBe(125);
      expect(result.stderr).toBe(
        'm-docker: invalid --cap-add "sys_nice": m-docker itself lacks CAP_SYS_NICE (its bounding set does not contain it), so no container can get it: leave it out, or run m-docker with that capability\n',
      );
    });

    it('run --privileged gives what m-docker has', async () => {
      const own = BigInt(`0x${ownCapabilities().CapBnd}`);
      const expected = (own & ~(1n << 23n)).toString(16).padStart(16, '0');

      const result = await cli(['run', '--rm', '--privileged', '--image', 'busybox', ...READ_CAPABILITIES], withoutNice());

      expect(result.stderr).toBe('');
      expect(parseCapabilities(result.stdout)).toMatchObject({ CapBnd: expected, CapEff: expected });
    });
  });

  it.each([
    { name: 'none given', options: [], hostConfig: { CapAdd: null, CapDrop: null, Privileged: false } },
    {
      name: 'normalized lists',
      options: ['--cap-add', 'sys_admin', '--cap-add', 'CAP_NET_ADMIN', '--cap-drop', 'net_raw', '--cap-drop', 'net_admin'],
      hostConfig: { CapAdd: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'], CapDrop: ['CAP_NET_RAW'], Privileged: false },
    },
    { name: 'privileged', options: ['--privileged', '--cap-drop', 'all'], hostConfig: { CapAdd: null, CapDrop: ['ALL'], Privileged: true } },
  ])('inspect shows HostConfig: $name', async ({ options, hostConfig }) => {
    const name = `inspected-${options.length}`;
    await runDetached(name, [...options, '--image', 'busybox', 'true']);

    const inspected = await cli(['inspect', name]);
    await cli(['rm', '-f', name]);

    expect(JSON.parse(inspected.stdout.toString())[0].HostConfig).toEqual(hostConfig);
  });
});

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('capabilities of exec (root only; needs /bin/busybox)', () => {
  beforeAll(async () => {
    await runDetached('default-box', ['--image', 'busybox', 'sleep', '1000']);
    await runDetached('admin-box', ['--cap-add', 'SYS_ADMIN', '--image', 'busybox', 'sleep', '1000']);
    await runDetached('privileged-box', ['--privileged', '--image', 'busybox', 'sleep', '1000']);
    await runDetached('bare-box', ['--cap-drop', 'ALL', '--image', 'busybox', 'sleep', '1000']);
  });

  afterAll(async () => {
    if (store !== undefined) await cli(['rm', '-f', 'default-box', 'admin-box', 'privileged-box', 'bare-box']);
  });

  it.each([
    { name: 'plain', options: [] },
    { name: '-t', options: ['-t'] },
  ])('exec gives the default set: $name', async ({ options }) => {
    const result = await cli(['exec', ...options, 'default-box', ...READ_CAPABILITIES]);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(parseCapabilities(result.stdout)).toEqual(DEFAULT_SETS);
  });

  it('exec -u gives only the bounding set', async () => {
    const result = await cli(['exec', '-u', 'app', 'default-box', ...READ_CAPABILITIES]);

    expect(result.stderr).toBe('');
    expect(parseCapabilities(result.stdout)).toEqual({ ...DEFAULT_SETS, CapPrm: NONE, CapEff: NONE });
  });

  it("exec gives the container's own set", async () => {
    // The default set plus SYS_ADMIN, bit 21.
    const result = await cli(['exec', 'admin-box', ...READ_CAPABILITIES]);

    expect(parseCapabilities(result.stdout)).toMatchObject({ CapBnd: '00000000a82425fb', CapEff: '00000000a82425fb' });
  });

  // An empty set is a limit too, not the absence of one.
  it('exec into --cap-drop ALL gives none', async () => {
    const result = await cli(['exec', 'bare-box', ...READ_CAPABILITIES]);

    expect(parseCapabilities(result.stdout)).toEqual({ CapInh: NONE, CapPrm: NONE, CapEff: NONE, CapBnd: NONE, CapAmb: NONE });
  });

  it.each([
    { name: 'exec --privileged', container: 'default-box', options: ['--privileged'] },
    { name: 'a privileged container', container: 'privileged-box', options: [] },
    { name: 'exec -t --privileged', container: 'default-box', options: ['-t', '--privileged'] },
  ])('every capability for $name', async ({ container, options }) => {
    const own = ownCapabilities();

    const result = await cli(['exec', ...options, container, ...READ_CAPABILITIES]);

    expect(parseCapabilities(result.stdout)).toEqual({ CapInh: NONE, CapPrm: own.CapBnd, CapEff: own.CapBnd, CapBnd: own.CapBnd, CapAmb: NONE });
  });

  it('exec mount needs SYS_ADMIN', async () => {
    const script = 'mkdir -p /tmp/e && mount -t tmpfs none /tmp/e && echo mounted';

    const denied = await cli(['exec', 'default-box', 'sh', '-c', script]);
    const allowed = await cli(['exec', 'admin-box', 'sh', '-c', script]);

    expect(denied.status).not.toBe(0);
    expect(denied.stdout.toString()).toBe('');
    expect(allowed.stdout.toString()).toBe('mounted\n');
  });
});

// These containers run on the host's root file system, so that the host's
// node, the one running these tests, runs the probes inside them.
describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('/proc/PID/exe of joining processes (root only)', () => {
  const node = process.execPath;

  // hold-non-dumpable.mjs stays in the state of a process that exec forks
  // into the container before its execve: the host's node, non-dumpable,
  // with every capability of the CLI. A probe with the container's set
  // cannot open its /proc/PID/exe. With CAP_SYS_PTRACE it can, which shows
  // that the probe would notice.
  it.each([
    { name: 'default set', options: [], expected: { path: 'EACCES', read: 'EACCES' } },
    { name: 'with SYS_PTRACE', options: ['--cap-add', 'SYS_PTRACE'], expected: { path: 'opened', read: 'opened' } },
  ])('non-dumpable host binary: $name', async ({ options, expected }) => {
    const name = `holder-${options.length}`;
    const dir = makeTempDir('holder');
    const pidFile = join(dir.path, 'pid');
    try {
      await runDetached(name, [...options, 'sleep', '1000']);
      const holder = cli(['exec', '--privileged', name, node, join(FIXTURES, 'hold-non-dumpable.mjs'), pidFile]);
      await waitFor(() => existsSync(pidFile), 'the non-dumpable process to start');
      const pid = readFileSync(pidFile, 'utf8').trim();

      const probe = await cli(['exec', name, node, join(FIXTURES, 'probe-exe-path.mjs'), pid]);
      await cli(['rm', '-f', name]);
      const holderExit = await holder;

      expect(probe.stderr).toBe('');
      expect(JSON.parse(probe.stdout.toString())).toEqual(expected);
      // rm -f ended the container's PID namespace, and the holder with it.
      expect(holderExit.status).toBe(137);
    } finally {
      await cli(['rm', '-f', name]);
      dir.remove();
    }
  });

  // The prober keeps trying while exec forks 21 commands into its
  // container. With --cap-add SYS_PTRACE the same prober reached the
  // runtime's binary within 20 execs under Bun and Node on the project's
  // machine, so the window is wide enough to be hit.
  it('exe of joining processes is never reached', async () => {
    await runDetached('prober', [node, join(FIXTURES, 'probe-joining-exe.mjs')]);
    await waitForLogs('prober', 'ready\n');

    const results = [];
    for (let index = 0; index < 20; index++) results.push(await cli(['exec', 'prober', '/bin/true']));
    const withTerminal = await cli(['exec', '-t', 'prober', '/bin/true']);
    const logs = (await cli(['logs', 'prober'])).stdout.toString();
    await cli(['rm', '-f', 'prober']);

    expect(results.map((result) => result.status)).toEqual(Array(20).fill(0));
    expect(withTerminal.status).toBe(0);
    // The prober may reach /bin/true after its execve; nothing else runs in there.
    const reached = logs
      .split('\n')
      .filter((line) => line.startsWith('opened '))
      .map((line) => line.split(' ')[2]);
    expect(reached.filter((path) => path !== realpathSync('/bin/true'))).toEqual([]);
  });
});

// Polls `m-docker logs` until the container's output contains `text`;
// fails after a deadline, so a prober that never starts fails the test.
async function waitForLogs(name: string, text: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const logs = await cli(['logs', name]);
    if (logs.stdout.toString().includes(text)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${JSON.stringify(text)} in the logs of ${name}: ${logs.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
