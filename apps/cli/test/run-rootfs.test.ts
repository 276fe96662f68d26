import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  HAS_BUSYBOX,
  hostMounts,
  killStartedCli,
  listTree,
  makeTempDir,
  NOT_ROOT,
  runCli,
  waitFor,
  writeBusyboxRootfs,
} from './helpers.js';

// `run --rootfs DIR`: the container gets an overlay over DIR, its own
// /etc files, volumes and a user. Every test uses its own store root (--root),
// and checks that the host's mount table is unchanged afterwards.

let base: { path: string; remove: () => void };
let rootfs: string;
let mountsBefore: string;

beforeAll(() => {
  if (NOT_ROOT || !HAS_BUSYBOX) return;
  base = makeTempDir('rootfs');
  rootfs = join(base.path, 'rootfs');
  writeBusyboxRootfs(rootfs);
  mountsBefore = hostMounts();
});

afterEach(() => {
  killStartedCli();
  if (mountsBefore !== undefined) expect(hostMounts()).toBe(mountsBefore);
});

afterAll(() => base?.remove());

function newStore(): string {
  const dir = join(base.path, `store-${Math.random().toString(16).slice(2)}`);
  mkdirSync(dir);
  return dir;
}

function run(store: string, args: string[]) {
  return runCli(['--root', store, 'run', ...args]);
}

function containerIds(store: string): string[] {
  const dir = join(store, 'containers');
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('run --rootfs (root only; needs /bin/busybox)', () => {
  it('rootfs becomes the root directory', async () => {
    const store = newStore();
    const result = await run(store, ['--rm', '--rootfs', rootfs, '/bin/sh', '-c', 'ls /; cat /etc/motd']);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toBe('bin\ndev\netc\nproc\nsys\nfrom the rootfs\n');
  });

  it('etc files name the container', async () => {
    const store = newStore();
    const result = await run(store, ['--rm', '--hostname', 'box', '--rootfs', rootfs, 'sh', '-c', 'cat /etc/hostname /etc/hosts /etc/resolv.conf']);
    const output = result.stdout.toString();

    expect(result.status).toBe(0);
    expect(output.startsWith('box\n127.0.0.1\tlocalhost\n')).toBe(true);
    expect(output).toContain('127.0.0.1\tbox\n');
    expect(output).toMatch(/^nameserver /m);
    expect(output).not.toMatch(/^nameserver 127\./m);
  });

  it('writes stay in one container', async () => {
    const store = newStore();
    const first = await run(store, ['--rootfs', rootfs, 'sh', '-c', 'echo changed > /etc/motd; echo new > /new-file']);
    const second = await run(store, ['--rm', '--rootfs', rootfs, 'sh', '-c', 'cat /etc/motd; ls /new-file 2>&1']);

    expect(first.status).toBe(0);
    expect(second.stdout.toString()).toBe('from the rootfs\nls: /new-file: No such file or directory\n');
    expect(readFileSync(join(rootfs, 'etc', 'motd'), 'utf8')).toBe('from the rootfs\n');
    const [kept] = containerIds(store);
    expect(containerIds(store)).toHaveLength(1);
    expect(readFileSync(join(store, 'containers', kept as string, 'upper', 'new-file'), 'utf8')).toBe('new\n');
  });

  it('kept container records its exit', async () => {
    const store = newStore();
    const result = await run(store, ['--rootfs', rootfs, 'sh', '-c', 'exit 3']);
    const [id] = containerIds(store);
    const record = JSON.parse(readFileSync(join(store, 'containers', id as string, 'container.json'), 'utf8'));

    expect(result.status).toBe(3);
    expect(record).toMatchObject({ id, image: null, source: rootfs, command: ['sh', '-c', 'exit 3'], autoRemove: false, exitCode: 3 });
    expect(typeof record.finished).toBe('string');
  });

  it('--rm leaves nothing in the store', async () => {
    const store = newStore();
    const result = await run(store, ['--rm', '--rootfs', rootfs, '-v', '/scratch', 'sh', '-c', 'echo x > /scratch/x']);

    expect(result.status).toBe(0);
    expect(containerIds(store)).toEqual([]);
    expect(readdirSync(join(store, 'volumes'))).toEqual([]);
  });

  it('bind volumes read-write and read-only', async () => {
    const store = newStore();
    const host = join(base.path, `host-${Math.random().toString(16).slice(2)}`);
    mkdirSync(host);
    writeFileSync(join(host, 'in'), 'host data\n');

    const script = 'cat /ro/in; echo out > /rw/out; (echo x > /ro/new) 2>&1; echo status=$?';
    const result = await run(store, ['--rm', '--rootfs', rootfs, '-v', `${host}:/ro:ro`, '-v', `${host}:/rw`, 'sh', '-c', script]);

    expect(result.stdout.toString()).toBe('host data\nsh: can\'t create /ro/new: Read-only file system\nstatus=1\n');
    expect(readFileSync(join(host, 'out'), 'utf8')).toBe('out\n');
  });

  it('named volume outlives its container', async () => {
    const store = newStore();
    await run(store, ['--rm', '--rootfs', rootfs, '-v', 'data:/data', 'sh', '-c', 'echo kept > /data/file']);
    const second = await run(store, ['--rm', '--rootfs', rootfs, '-v', 'data:/data:ro', 'cat', '/data/file']);
    const listed = await runCli(['--root', store, 'volume', 'ls', '-q']);

    expect(second.stdout.toString()).toBe('kept\n');
    expect(listed.stdout.toString()).toBe('data\n');
    expect(readFileSync(join(store, 'volumes', 'data', '_data', 'file'), 'utf8')).toBe('kept\n');
  });

  it('user gets uid, gid and groups', async () => {
    const store = newStore();
    const result = await run(store, ['--rm', '--rootfs', rootfs, '-u', 'app', 'sh', '-c', 'id; echo $HOME']);

    expect(result.stdout.toString()).toBe('uid=1000(app) gid=1000(app) groups=1000(app),2000(extra),2001(more)\n/home/app\n');
  });

  it('user with a group replaces the groups', async () => {
    const store = newStore();
    const result = await run(store, ['--rm', '--rootfs', rootfs, '-u', '1000:2001', 'id']);

    expect(result.stdout.toString()).toBe('uid=1000(app) gid=2001(more) groups=2001(more)\n');
  });

  it('read-only root and created workdir', async () => {
    const store = newStore();
    const script = 'pwd; (touch /new) 2>&1; echo status=$?; touch /tmp-mount/ok && echo tmpfs-ok';
    const result = await run(store, ['--rm', '--rootfs', rootfs, '--read-only', '-w', '/work/dir', '--tmpfs', '/tmp-mount', 'sh', '-c', script]);

    expect(result.stdout.toString()).toBe('/work/dir\ntouch: /new: Read-only file system\nstatus=1\ntmpfs-ok\n');
  });

  it('tmpfs is noexec unless exec is given', async () => {
    const store = newStore();
    const result = await run(store, ['--rm', '--rootfs', rootfs, '--tmpfs', '/a', '--tmpfs', '/b:exec,size=2m', 'grep', 'tmpfs /[ab] ', '/proc/mounts']);

    expect(result.stdout.toString()).toBe('tmpfs /a tmpfs rw,nosuid,nodev,noexec,relatime 0 0\ntmpfs /b tmpfs rw,nosuid,nodev,relatime,size=2048k 0 0\n');
  });

  it('shm-size sets the size of /dev/shm', async () => {
    const store = newStore();
    const result = await run(store, ['--rm', '--rootfs', rootfs, '--shm-size', '16m', 'grep', '/dev/shm', '/proc/mounts']);

    expect(result.stdout.toString()).toMatch(/size=16384k/);
  });

  it('killed CLI leaves a record the next command removes', async () => {
    const store = newStore();
    let pid = 0;
    const killed = runCli(['--root', store, 'run', '--rm', '--rootfs', rootfs, 'sh', '-c', 'echo started; sleep 100'], {
      onSpawn: (child) => {
        child.stdout?.once('data', () => child.kill('SIGKILL'));
        pid = child.pid ?? 0;
      },
    });
    const result = await killed;
    expect(result.signal).toBe('SIGKILL');
    expect(pid).toBeGreaterThan(0);
    expect(containerIds(store)).toHaveLength(1);

    const next = await runCli(['--root', store, 'volume', 'ls']);

    expect(next.status).toBe(0);
    expect(containerIds(store)).toEqual([]);
  });
});

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('run --rootfs rejections (root only; needs /bin/busybox)', () => {
  it.each([
    [['--rootfs', '/nonexistent-m-docker-rootfs', 'true'], 'invalid --rootfs "/nonexistent-m-docker-rootfs": no such directory'],
    [['-v', '/nonexistent-m-docker-host:/data', 'true'], 'host path /nonexistent-m-docker-host does not exist'],
    [['-v', '/tmp:/data:rx', 'true'], 'invalid -v "/tmp:/data:rx": unknown option "rx": use ro or rw'],
    [['-v', '/tmp:data', 'true'], 'invalid -v "/tmp:data": the container path "data" must be absolute'],
    [['-v', '/tmp:/', 'true'], "a mount cannot replace the container's root directory /"],
    [['-v', 'x:/data', 'true'], 'is neither an absolute host path nor a volume name'],
    [['-v', '/tmp:/data', '-v', '/tmp:/data', 'true'], 'duplicate mount point /data'],
    [['--tmpfs', '/t:nosuchopt', 'true'], 'invalid --tmpfs "/t:nosuchopt": unknown option "nosuchopt"'],
    [['--tmpfs', '/t:size=abc', 'true'], 'invalid --tmpfs "/t:size=abc": invalid value "abc" for size: see tmpfs(5)'],
    [['--tmpfs', '/t:mode=999', 'true'], 'invalid value "999" for mode'],
    [['--tmpfs', '/proc', 'true'], 'cannot mount on /proc: /proc belongs to the container\'s PID namespace'],
    [['-v', '/tmp:/proc/sys', 'true'], 'cannot mount on /proc/sys'],
    [['--rootfs', '/etc/passwd', 'true'], 'invalid --rootfs "/etc/passwd": not a directory'],
    [['--rootfs', '', 'true'], 'invalid --rootfs "": the value is empty'],
    [['--shm-size', '12q', 'true'], 'invalid --shm-size "12q"'],
    [['--shm-size', '0', 'true'], 'invalid --shm-size "0"'],
  ])('run %j is rejected', async (args, message) => {
    const store = newStore();
    const hasRootfs = args.includes('--rootfs');
    const result = await run(store, hasRootfs ? args : ['--rootfs', rootfs, ...args]);

    expect(result.status).toBe(125);
    expect(result.stderr).toContain(message);
    expect(listTree(join(store, 'containers'))).toEqual([]);
  });

  it.each([
    [['-v', '/tmp:/data', 'true'], "-v needs a root file system of the container's own"],
    [['--read-only', 'true'], '--read-only needs'],
    [['--tmpfs', '/t', 'true'], '--tmpfs needs'],
    [['--image', 'x', '--rootfs', '/tmp', 'true'], '--image and --rootfs both choose the root file system'],
  ])('run %j without a root is rejected', async (args, message) => {
    const result = await run(newStore(), args);

    expect(result.status).toBe(125);
    expect(result.stderr).toContain(message);
  });

  it('empty --root is rejected', async () => {
    const result = await runCli(['--root', '', 'volume', 'ls']);

    expect(result.status).toBe(125);
    expect(result.stderr).toBe('m-docker: invalid --root "": the value is empty: give the store\'s directory or leave --root out\n');
  });

  it('--root after run names its value', async () => {
    const result = await runCli(['run', '--root', '/tmp/x', 'true']);

    expect(result.status).toBe(125);
    expect(result.stderr).toContain("put it before 'run', as in 'm-docker --root DIR run ...'");
  });

  it('unknown user fails and removes the container', async () => {
    const store = newStore();
    const result = await run(store, ['--rootfs', rootfs, '-u', 'ghost', 'true']);

    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      'm-docker: container setup failed at step user: user "ghost" not found in the container\'s /etc/passwd: give a name it lists or a numeric uid\n',
    );
    expect(containerIds(store)).toEqual([]);
  });

  it('missing command in rootfs gives 127', async () => {
    const store = newStore();
    const result = await run(store, ['--rm', '--rootfs', rootfs, 'bash']);

    expect(result.status).toBe(127);
    expect(containerIds(store)).toEqual([]);
  });

  it('volume in use cannot be removed', async () => {
    const store = newStore();
    await run(store, ['--rootfs', rootfs, '-v', 'busy:/data', 'true']);
    const refused = await runCli(['--root', store, 'volume', 'rm', 'busy']);
    const forced = await runCli(['--root', store, 'volume', 'rm', '-f', 'busy']);

    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^m-docker: volume "busy" is in use by container [0-9a-f]{12}: remove the container first\n$/);
    expect(forced.status).toBe(0);
    expect(existsSync(join(store, 'volumes', 'busy'))).toBe(false);
  });
});

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('ps and rm (root only; needs /bin/busybox)', () => {
  it('kept container is listed and removed', async () => {
    const store = newStore();
    await run(store, ['--rootfs', rootfs, '-v', '/anon', 'sh', '-c', 'exit 4']);
    const [id] = containerIds(store) as [string];
    const [anonymous] = readdirSync(join(store, 'volumes'));

    const running = await runCli(['--root', store, 'ps', '-q']);
    const all = await runCli(['--root', store, 'ps', '-a']);
    const removed = await runCli(['--root', store, 'rm', '-v', id.slice(0, 5)]);

    expect(running.stdout.toString()).toBe('');
    expect(all.stdout.toString()).toMatch(new RegExp(`^${id.slice(0, 12)} +${rootfs} +sh -c "exit 4" +.+ ago +Exited \\(4\\) .+ ago +\\w+\n`, 'm'));
    expect(removed.status).toBe(0);
    expect(removed.stdout.toString()).toBe(`${id.slice(0, 5)}\n`);
    expect(containerIds(store)).toEqual([]);
    expect(existsSync(join(store, 'volumes', anonymous as string))).toBe(false);
  });

  it('running container needs rm -f', async () => {
    const store = newStore();
    let up = false;
    const started = runCli(['--root', store, 'run', '--rootfs', rootfs, 'sh', '-c', 'echo up; sleep 100'], {
      onSpawn: (child) =>
        child.stdout?.once('data', () => {
          up = true;
        }),
    });
    await waitFor(() => up, 'the container to print up');
    const [id] = containerIds(store) as [string];
    const listed = await runCli(['--root', store, 'ps', '-q']);
    const refused = await runCli(['--root', store, 'rm', id]);
    const forced = await runCli(['--root', store, 'rm', '-f', id]);
    const ended = await started;

    expect(listed.stdout.toString()).toBe(`${id.slice(0, 12)}\n`);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`container ${id.slice(0, 12)} is running: stop it first, or remove it with rm -f`);
    expect(forced.status).toBe(0);
    expect(ended.status).toBe(137);
    expect(containerIds(store)).toEqual([]);
  });

  it('rm of unknown and ambiguous ids fails', async () => {
    const store = newStore();
    await run(store, ['--rootfs', rootfs, 'true']);
    await run(store, ['--rootfs', rootfs, 'true']);

    const unknown = await runCli(['--root', store, 'rm', 'zzz']);
    const ambiguous = await runCli(['--root', store, 'rm', '']);

    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('no such container: "zzz"');
    expect(ambiguous.status).toBe(1);
    expect(containerIds(store)).toHaveLength(2);
  });

  it('killed --rm run loses its anonymous volumes', async () => {
    const store = newStore();
    const killed = await runCli(['--root', store, 'run', '--rm', '--rootfs', rootfs, '-v', '/anon', '-v', 'named:/named', 'sh', '-c', 'echo up; sleep 100'], {
      onSpawn: (child) => child.stdout?.once('data', () => child.kill('SIGKILL')),
    });
    const volumesBefore = readdirSync(join(store, 'volumes')).sort();

    const next = await runCli(['--root', store, 'volume', 'ls', '-q']);

    expect(killed.signal).toBe('SIGKILL');
    expect(volumesBefore).toHaveLength(2);
    expect(next.stdout.toString()).toBe('named\n');
    expect(containerIds(store)).toEqual([]);
  });

  it('volume rm tries every name', async () => {
    const store = newStore();
    await runCli(['--root', store, 'volume', 'create', 'second']);

    const partly = await runCli(['--root', store, 'volume', 'rm', 'missing', 'second']);
    const forced = await runCli(['--root', store, 'volume', 'rm', '-f', 'missing']);

    expect(partly.status).toBe(1);
    expect(partly.stderr).toBe('m-docker: volume "missing" not found: see \'m-docker volume ls\'\n');
    expect(partly.stdout.toString()).toBe('second\n');
    expect(forced.status).toBe(0);
  });
});
