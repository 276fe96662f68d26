import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { MountConfig } from '@m-docker/ipc';
import { afterEach, describe, expect, it } from 'vitest';

import {
  cleanUp,
  failureOf,
  hasBusybox,
  isRoot,
  makeConfig,
  makeRoot,
  makeTempDir,
  NEEDS_ROOT,
  readHostMountinfo,
  rootBase,
  runCommand,
  runInit,
} from './helpers.js';

afterEach(cleanUp);

const canRun = isRoot && hasBusybox;
const REASON = `${NEEDS_ROOT}; the test root file system copies /bin/busybox (Debian busybox-static)`;

/** Mount points and file system types of /proc/self/mountinfo, as [mountPoint, fsType, options]. */
function mountsOf(mountinfo: string): [string, string, string][] {
  return mountinfo
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [before = '', after = ''] = line.split(' - ');
      const fields = before.split(' ');
      return [fields[4] ?? '', after.split(' ')[0] ?? '', fields[5] ?? ''];
    });
}

function bind(source: string, destination: string, readonly = false): MountConfig {
  return { type: 'bind', source, destination, readonly, data: '' };
}

describe.skipIf(!canRun)(`init root file system (${REASON})`, () => {
  it('pivot_root leaves only the container root', async () => {
    const root = makeRoot();
    const hostBefore = readHostMountinfo();

    const listing = await runCommand(['/bin/ls', '-a', '/'], { root });
    const mounts = mountsOf(await runCommand(['/bin/cat', '/proc/self/mountinfo'], { root: makeRoot() }));

    expect(listing.split('\n').filter(Boolean).sort()).toEqual(['.', '..', 'bin', 'dev', 'etc', 'proc', 'sys']);
    expect(mounts.map(([point, type]) => `${point} ${type}`)).toEqual([
      '/ overlay',
      '/proc proc',
      '/dev tmpfs',
      '/dev/pts devpts',
      '/dev/shm tmpfs',
      '/dev/mqueue mqueue',
      '/sys sysfs',
    ]);
    expect(readHostMountinfo()).toBe(hostBefore);
  });

  it('writes go to the upper directory', async () => {
    const root = makeRoot();
    await runCommand(['/bin/sh', '-c', 'echo new > /etc/new-file && echo changed > /etc/passwd'], { root });

    const lower = root.lowerDirs[0] as string;
    expect(readFileSync(join(root.upperDir, 'etc', 'new-file'), 'utf8')).toBe('new\n');
    expect(readFileSync(join(root.upperDir, 'etc', 'passwd'), 'utf8')).toBe('changed\n');
    expect(existsSync(join(lower, 'etc', 'new-file'))).toBe(false);
    expect(readFileSync(join(lower, 'etc', 'passwd'), 'utf8')).toContain('app:x:1000');
    expect(readdirSync(root.target)).toEqual([]);
  });

  it('layers stack with the first on top', async () => {
    const root = makeRoot();
    const upperLayer = join(rootBase(root), 'layer-top');
    mkdirSync(join(upperLayer, 'etc'), { recursive: true });
    writeFileSync(join(upperLayer, 'etc', 'motd'), 'top\n');
    writeFileSync(join(root.lowerDirs[0] as string, 'etc', 'motd'), 'bottom\n');

    const output = await runCommand(['/bin/cat', '/etc/motd'], { root: { ...root, lowerDirs: [upperLayer, ...root.lowerDirs] } });

    expect(output).toBe('top\n');
  });

  it('dev has devices, ptys, shm and mqueue', async () => {
    const root = makeRoot({ shmSize: 8 * 1024 * 1024 });
    const script = [
      'for name in null zero full random urandom tty; do stat -c "%n %F %t:%T %a" /dev/$name; done',
      'for name in fd stdin stdout stderr ptmx; do echo "/dev/$name -> $(readlink /dev/$name)"; done',
      'echo hi > /dev/null && echo null-writable',
    ].join('\n');
    const output = await runCommand(['/bin/sh', '-c', script], { root });
    const mounts = mountsOf(await runCommand(['/bin/cat', '/proc/self/mountinfo'], { root: makeRoot({ shmSize: 8 * 1024 * 1024 }) }));

    expect(output.split('\n').filter(Boolean)).toEqual([
      '/dev/null character special file 1:3 666',
      '/dev/zero character special file 1:5 666',
      '/dev/full character special file 1:7 666',
      '/dev/random character special file 1:8 666',
      '/dev/urandom character special file 1:9 666',
      '/dev/tty character special file 5:0 666',
      '/dev/fd -> /proc/self/fd',
      '/dev/stdin -> /proc/self/fd/0',
      '/dev/stdout -> /proc/self/fd/1',
      '/dev/stderr -> /proc/self/fd/2',
      '/dev/ptmx -> pts/ptmx',
      'null-writable',
    ]);
    const shm = mounts.find(([point]) => point === '/dev/shm');
    const sys = mounts.find(([point]) => point === '/sys');
    expect(shm?.[2]).toContain('noexec');
    expect(sys?.[2].split(',')).toContain('ro');
  });

  it('shm size reaches the tmpfs', async () => {
    const output = await runCommand(['/bin/sh', '-c', 'cat /proc/mounts'], { root: makeRoot({ shmSize: 8 * 1024 * 1024 }) });

    expect(output).toMatch(/^shm \/dev\/shm tmpfs \S*size=8192k/m);
  });

  it('read-only root rejects writes', async () => {
    const output = await runCommand(['/bin/sh', '-c', 'touch /new 2>&1; echo status=$?; touch /dev/shm/ok && echo shm-writable'], {
      root: makeRoot({ readonly: true }),
      cwd: '/made-before-remount',
    });

    expect(output).toContain('Read-only file system');
    expect(output).toContain('status=1');
    expect(output).toContain('shm-writable');
  });

  it('working directory is created', async () => {
    const output = await runCommand(['/bin/pwd'], { root: makeRoot(), cwd: '/srv/work/deep' });

    expect(output).toBe('/srv/work/deep\n');
  });

  it('bind mounts read-write and read-only', async () => {
    const host = makeTempDir();
    const readable = join(host, 'readable');
    const writable = join(host, 'writable');
    mkdirSync(readable);
    mkdirSync(writable);
    writeFileSync(join(readable, 'file'), 'from host\n');

    const script = 'cat /in/file; echo written > /out/file; (echo x > /in/new) 2>&1; echo status=$?';
    const output = await runCommand(['/bin/sh', '-c', script], {
      root: makeRoot(),
      mounts: [bind(readable, '/in', true), bind(writable, '/out')],
    });

    expect(output).toContain('from host\n');
    expect(output).toContain('Read-only file system');
    expect(output).toContain('status=1');
    expect(readFileSync(join(writable, 'file'), 'utf8')).toBe('written\n');
    expect(existsSync(join(readable, 'new'))).toBe(false);
  });

  it('file bind creates its mount point', async () => {
    const host = makeTempDir();
    writeFileSync(join(host, 'hostname'), 'box\n');

    const output = await runCommand(['/bin/cat', '/etc/generated/hostname'], {
      root: makeRoot(),
      mounts: [bind(join(host, 'hostname'), '/etc/generated/hostname')],
    });

    expect(output).toBe('box\n');
  });

  it('tmpfs mount takes its data', async () => {
    const output = await runCommand(['/bin/sh', '-c', 'cat /proc/mounts; touch /scratch/ok && echo ok'], {
      root: makeRoot(),
      mounts: [{ type: 'tmpfs', source: 'tmpfs', destination: '/scratch', readonly: false, data: 'size=1m,mode=1777' }],
    });

    expect(output).toMatch(/^tmpfs \/scratch tmpfs rw,relatime,size=1024k/m);
    expect(output).toContain('ok\n');
  });

  it('tmpfs flag words become mount flags', async () => {
    const output = await runCommand(['/bin/cat', '/proc/mounts'], {
      root: makeRoot(),
      mounts: [{ type: 'tmpfs', source: 'tmpfs', destination: '/scratch', readonly: true, data: 'noexec,nosuid,nodev,size=1m' }],
    });

    expect(output).toMatch(/^tmpfs \/scratch tmpfs ro,nosuid,nodev,noexec,relatime,size=1024k/m);
  });

  it('symlinked destination stays inside the root', async () => {
    const root = makeRoot();
    const lower = root.lowerDirs[0] as string;
    const hostTarget = makeTempDir();
    symlinkSync(hostTarget, join(lower, 'absolute-link'));
    symlinkSync('../../../../../../..', join(lower, 'relative-link'));
    const source = makeTempDir();
    writeFileSync(join(source, 'marker'), 'mounted\n');

    const output = await runCommand(['/bin/sh', '-c', `cat ${hostTarget}/inside/marker /escape-root/marker`], {
      root,
      mounts: [bind(source, '/absolute-link/inside'), bind(source, '/relative-link/escape-root')],
    });

    expect(output).toBe('mounted\nmounted\n');
    expect(readdirSync(hostTarget)).toEqual([]);
    expect(existsSync('/escape-root')).toBe(false);
    expect(lstatSync(join(root.upperDir, hostTarget.slice(1), 'inside')).isDirectory()).toBe(true);
  });

  it('symlink loop in a destination fails', async () => {
    const root = makeRoot();
    symlinkSync('/loop-b', join(root.lowerDirs[0] as string, 'loop-a'));
    symlinkSync('/loop-a', join(root.lowerDirs[0] as string, 'loop-b'));

    const source = makeTempDir();
    const run = await runInit(makeConfig({ root, mounts: [bind(source, '/loop-a/data')] }));

    expect(failureOf(run)).toMatchObject({
      stage: 'rootfs',
      message: `cannot mount ${source} on /loop-a/data: too many levels of symbolic links in /loop-a/data inside the container: choose another container path`,
    });
    expect(run.status).toBe(1);
  });

  it('missing lower directory fails at rootfs', async () => {
    const root = makeRoot();
    const run = await runInit(makeConfig({ root: { ...root, lowerDirs: [join(rootBase(root), 'missing')] } }));

    expect(failureOf(run)).toMatchObject({ stage: 'rootfs', code: 'ENOENT' });
  });
});

describe.skipIf(!canRun)(`init user switch (${REASON})`, () => {
  const idScript = 'echo "$(id -u) $(id -g) $(id -G) $HOME"';

  it.each([
    ['app', true, '1000 1000 1000 2000 2001 /home/app'],
    ['app:extra', true, '1000 2000 2000 /home/app'],
    ['1000', true, '1000 1000 1000 2000 2001 /home/app'],
    ['4242', true, '4242 0 0 /'],
    ['4242:4343', true, '4242 4343 4343 /'],
    ['root', true, '0 0 0 2001 /root'],
    ['app', false, '1000 1000 1000 2000 2001 /preset'],
  ])('user %s (setHome %s)', async (spec, setHome, expected) => {
    const output = await runCommand(['/bin/sh', '-c', idScript], {
      root: makeRoot(),
      user: { spec, setHome },
      env: ['PATH=/bin', 'HOME=/preset'],
    });

    expect(output).toBe(`${expected}\n`);
  });

  it.each([
    ['nobody-here', 'user "nobody-here" not found in the container\'s /etc/passwd: give a name it lists or a numeric uid'],
    ['app:nogroup', 'group "nogroup" not found in the container\'s /etc/group: give a name it lists or a numeric gid'],
    ['99999999999', 'invalid user in "99999999999": expected a name or a number from 0 to 4294967294'],
  ])('unknown user %s fails', async (spec, message) => {
    const run = await runInit(makeConfig({ argv: ['/bin/id'], root: makeRoot(), user: { spec, setHome: true } }));

    expect(failureOf(run)).toMatchObject({ stage: 'user', message });
    expect(run.status).toBe(1);
  });

  it('user cannot enter a root-only directory', async () => {
    const root = makeRoot();
    mkdirSync(join(root.lowerDirs[0] as string, 'private'), { mode: 0o700 });

    const run = await runInit(makeConfig({ argv: ['/bin/pwd'], root, cwd: '/private', user: { spec: 'app', setHome: true } }));

    expect(failureOf(run)).toMatchObject({ stage: 'chdir', code: 'EACCES' });
  });
});
