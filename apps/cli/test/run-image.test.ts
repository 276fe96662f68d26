import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dockerArchiveMembers, imageOf, tarOf } from '../../../packages/images/test/image-archives.js';
import {
  type BuiltBadArchive,
  buildBadArchives,
  buildTestImages,
  type TestImages,
} from '../../../scripts/test-images/build-test-images.mjs';
import { HAS_BUSYBOX, hostMounts, killStartedCli, listTree, makeTempDir, NOT_ROOT, runCli } from './helpers.js';

// Images through the m-docker command: import in each format, run in the
// image's root, and the errors users see. The busybox test image has two
// layers: the upper one deletes /lower-only, makes /data opaque (data/old.txt
// gone, data/new.txt added) and replaces /etc/motd ("lower" to "upper").

let base: { path: string; remove: () => void };
let images: TestImages;
let badArchives: BuiltBadArchive[];
let mountsBefore: string;
let storeCount = 0;

beforeAll(async () => {
  if (NOT_ROOT || !HAS_BUSYBOX) return;
  base = makeTempDir('image');
  images = await buildTestImages(join(base.path, 'images'));
  badArchives = await buildBadArchives(join(base.path, 'bad'));
  mountsBefore = hostMounts();
}, 60_000);

afterEach(() => {
  killStartedCli();
  if (mountsBefore !== undefined) expect(hostMounts()).toBe(mountsBefore);
});

afterAll(() => base?.remove());

function newStore(): string {
  storeCount += 1;
  return join(base.path, `store-${storeCount}`);
}

function cli(store: string, args: string[]) {
  return runCli(['--root', store, ...args], { deadlineMs: 60_000 });
}

async function importedStore(file = images.dockerArchive, reference?: string): Promise<string> {
  const store = newStore();
  const result = await cli(store, ['image', 'import', file, ...(reference === undefined ? [] : [reference])]);
  if (result.status !== 0) throw new Error(`import of ${file} failed: ${result.stderr}`);
  return store;
}

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('image import through the CLI (root only; needs /bin/busybox)', () => {
  it.each([
    ['docker save archive', () => ['image', 'import', images.dockerArchive]],
    ['OCI layout tar via load', () => ['load', '-i', images.ociArchive]],
    ['OCI layout directory', () => ['image', 'import', images.ociLayout]],
  ])('%s is imported as busybox:latest', async (_name, args) => {
    const store = newStore();
    const imported = await cli(store, args());
    const listed = await cli(store, ['image', 'ls']);

    expect(imported.stderr).toBe('');
    expect(imported.status).toBe(0);
    expect(imported.stdout.toString()).toContain(images.configDigest);
    expect(listed.stdout.toString()).toMatch(new RegExp(`^busybox +latest +${images.configDigest.slice(7, 19)} `, 'm'));
  });

  it('rootfs tarball gets the given name', async () => {
    const store = await importedStore(images.rootfsTarGz, 'flat:v1');
    const result = await cli(store, ['run', '--rm', '--image', 'flat:v1', 'cat', '/etc/motd']);

    expect(result.stdout.toString()).toBe('upper\n');
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])('bad archive %i is rejected and changes nothing', async (index) => {
    const bad = badArchives[index] as BuiltBadArchive;
    const store = await importedStore();
    const before = listTree(store);

    const result = await cli(store, ['image', 'import', bad.path, 'bad:1']);

    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^m-docker: /);
    if (bad.entry !== null) expect(result.stderr).toContain(bad.entry);
    expect(listTree(store)).toEqual(before);
  });

  it('every bad archive has a case', () => {
    expect(badArchives).toHaveLength(11);
  });
});

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('run --image (root only; needs /bin/busybox)', () => {
  it('layers stack with deletions', async () => {
    const store = await importedStore();
    const script = 'cat /etc/os-release; ls /; ls /data; cat /etc/motd; ls /lower-only 2>&1';
    const result = await cli(store, ['run', '--rm', '--image', 'busybox', 'sh', '-c', script]);
    const output = result.stdout.toString();

    expect(result.status).toBe(1);
    expect(output).toContain('NAME="m-docker test busybox"');
    expect(output).toContain('upper-only\n');
    expect(output).toContain('new.txt\nupper\n');
    expect(output).not.toContain('old.txt');
    expect(output).toContain('ls: /lower-only: No such file or directory');
  });

  it('image Cmd runs without COMMAND', async () => {
    const store = await importedStore();
    const result = await cli(store, ['run', '--rm', '--image', 'busybox']);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('entrypoint replaces Cmd', async () => {
    const store = await importedStore();
    const result = await cli(store, ['run', '--rm', '--entrypoint', '/bin/echo', '--image', 'busybox', 'from', 'entrypoint']);

    expect(result.stdout.toString()).toBe('from entrypoint\n');
  });

  it('mount shows only the container', async () => {
    const store = await importedStore();
    const result = await cli(store, ['run', '--rm', '--image', 'busybox', 'mount']);
    const points = result.stdout
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(' ')[2]);

    expect(points).toEqual(['/', '/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf']);
  });

  it('writes reach neither the image nor the next container', async () => {
    const store = await importedStore();
    const first = await cli(store, ['run', '--image', 'busybox', 'sh', '-c', 'echo mine > /etc/motd; rm /upper-only; echo x > /written']);
    const second = await cli(store, ['run', '--rm', '--image', 'busybox', 'sh', '-c', 'cat /etc/motd; ls /upper-only; ls /written 2>&1']);

    expect(first.status).toBe(0);
    expect(second.stdout.toString()).toBe('upper\n/upper-only\nls: /written: No such file or directory\n');
    const layers = readdirSync(join(store, 'layers', 'sha256')).map((hex) => join(store, 'layers', 'sha256', hex, 'diff'));
    for (const layer of layers) expect(existsSync(join(layer, 'written'))).toBe(false);
  });

  it('user from the image passwd', async () => {
    const store = await importedStore();
    const result = await cli(store, ['run', '--rm', '--image', 'busybox', '-u', 'app', 'sh', '-c', 'id; echo $HOME']);

    expect(result.stdout.toString()).toBe('uid=1000(app) gid=1000(app) groups=1000(app),2000(extra),2001(more)\n/home/app\n');
  });

  it('volumes reach the image root', async () => {
    const store = await importedStore();
    const script = 'echo v > /vol/file; (echo x > /ro/file) 2>&1; cat /vol/file';
    const result = await cli(store, ['run', '--rm', '--image', 'busybox', '-v', 'vol:/vol', '-v', `${base.path}:/ro:ro`, 'sh', '-c', script]);

    expect(result.stdout.toString()).toBe("sh: can't create /ro/file: Read-only file system\nv\n");
    expect(readFileSync(join(store, 'volumes', 'vol', '_data', 'file'), 'utf8')).toBe('v\n');
  });

  it('image name as COMMAND suggests --image', async () => {
    const store = await importedStore();
    const result = await cli(store, ['run', 'busybox', 'true']);

    expect(result.status).toBe(125);
    expect(result.stderr).toContain('did you mean --image busybox?');
  });

  it('missing image names the import command', async () => {
    const result = await cli(newStore(), ['run', '--image', 'nosuch', 'true']);

    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      "m-docker: image \"nosuch\" not found: import it with 'm-docker image import FILE nosuch' or see 'm-docker image ls'\n",
    );
  });

  it('image in use cannot be removed', async () => {
    const store = await importedStore();
    await cli(store, ['run', '--image', 'busybox', 'true']);
    const [container] = readdirSync(join(store, 'containers'));

    const refused = await cli(store, ['image', 'rm', 'busybox']);
    const listed = await cli(store, ['image', 'ls', '-q']);

    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain((container as string).slice(0, 12));
    expect(listed.stdout.toString()).toBe(`${images.configDigest.slice(7, 19)}\n`);
  });

  it('unused image is removed with its layers', async () => {
    const store = await importedStore();
    const removed = await cli(store, ['image', 'rm', 'busybox']);

    expect(removed.status).toBe(0);
    expect(readdirSync(join(store, 'layers', 'sha256'))).toEqual([]);
  });

  it('image config sets the defaults', async () => {
    // One layer, the flattened busybox root, under a config with every
    // field that run takes defaults from (User 1000:1000, WorkingDir /work).
    const layer = readFileSync(images.rootfsTar);
    const image = imageOf([layer], {
      entrypoint: ['/bin/sh', '-c'],
      cmd: ['echo "$(id -u) $(id -g) $PWD $FOO"'],
      env: ['PATH=/bin', 'FOO=from-image'],
    });
    const archive = join(base.path, 'configured.tar');
    writeFileSync(archive, await tarOf(dockerArchiveMembers(image, { repoTags: ['configured:1'] })));
    const store = await importedStore(archive);

    const defaults = await cli(store, ['run', '--rm', '--image', 'configured:1']);
    const overridden = await cli(store, ['run', '--rm', '-u', '0', '-w', '/', '-e', 'FOO=cli', '--image', 'configured:1']);
    const replaced = await cli(store, ['run', '--rm', '--image', 'configured:1', 'echo "replaced $FOO"']);

    expect(defaults.stderr).toBe('');
    expect(defaults.stdout.toString()).toBe('1000 1000 /work from-image\n');
    expect(overridden.stdout.toString()).toBe('0 0 / cli\n');
    expect(replaced.stdout.toString()).toBe('replaced from-image\n');
  });
});
