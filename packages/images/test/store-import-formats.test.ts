import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { machinePlatform } from '../src/image-platform.js';
import { type ImportProgress, openImageStore } from '../src/index.js';
import {
  dockerArchiveMembers,
  imageOf,
  layerOf,
  type Member,
  ociLayoutMembers,
  sha256,
  type TestImage,
  tarOf,
} from './image-archives.js';
import { NOT_ROOT, TempDirs, writeLayoutDirectory, writeTar } from './store-helpers.js';

const temp = new TempDirs();
afterEach(() => temp.removeAll());

let image: TestImage;
beforeAll(async () => {
  const lower = await layerOf({ 'etc/motd': 'lower\n', 'lower-only': 'x' });
  const upper = await layerOf({ 'etc/motd': 'upper\n', 'upper-only': 'y' });
  image = imageOf([lower, upper]);
});

/** Builds one input file or directory from members. */
type Build = (directory: string, members: Member[]) => Promise<string>;
const asTar: Build = (directory, members) => writeTar(directory, 'image.tar', members);
const asTarGz: Build = (directory, members) => writeTar(directory, 'image.tar.gz', members, true);
const asDirectory: Build = async (directory, members) => writeLayoutDirectory(directory, 'layout', members);

describe.skipIf(NOT_ROOT)('importArchive formats', () => {
  it.each([
    ['docker save, classic layout', () => dockerArchiveMembers(image), asTar],
    ['docker save, classic layout, gzip layers', () => dockerArchiveMembers(image, { gzipLayers: true }), asTar],
    ['docker save, blobs layout with index.json', () => dockerArchiveMembers(image, { layout: 'blobs' }), asTar],
    ['docker save, gzip-compressed archive', () => dockerArchiveMembers(image), asTarGz],
    ['docker save, unpacked into a directory', () => dockerArchiveMembers(image), asDirectory],
    ['OCI layout tar, gzip layers', () => ociLayoutMembers(image), asTar],
    ['OCI layout tar, uncompressed layers', () => ociLayoutMembers(image, { gzipLayers: false }), asTar],
    ['OCI layout tar, gzip-compressed archive', () => ociLayoutMembers(image), asTarGz],
    ['OCI layout directory', () => ociLayoutMembers(image), asDirectory],
    ['OCI layout with Docker v2 layer media types', () => ociLayoutMembers(image, { layerType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' }), asTar],
    [
      'OCI flat index with one entry per platform',
      () =>
        ociLayoutMembers(image, {
          edit: (members) =>
            members.map((member) => {
              if (member.name !== 'index.json') return member;
              const index = JSON.parse(String(member.data));
              const entry = { ...index.manifests[0], platform: { os: 'linux', architecture: machinePlatform().architecture } };
              const other = { ...entry, digest: `sha256:${sha256('absent')}`, platform: { os: 'linux', architecture: 'riscv64' } };
              return { ...member, data: JSON.stringify({ ...index, manifests: [other, entry] }) };
            }),
        }),
      asTar,
    ],
    [
      'OCI nested index with other platforms',
      () => ociLayoutMembers(image, { nested: true, otherPlatforms: [{ os: 'linux', architecture: 's390x' }] }),
      asTar,
    ],
  ] as const)('%s gives busybox:latest with both layers', async (_name, members, build) => {
    const root = temp.make();
    const input = await build(temp.make(), members());
    const store = openImageStore(root);

    const result = await store.importArchive(input);

    expect(result.references).toEqual(['busybox:latest']);
    expect(result.image.id).toBe(image.id);
    expect(result.image.repoTags).toEqual(['busybox:latest']);
    expect(result.image.layers).toEqual(image.diffIds);
    expect(result.image.config).toEqual({ Env: ['PATH=/usr/bin:/bin'], Cmd: ['sh'], WorkingDir: '/work', User: '1000:1000' });
    expect(result.image.architecture).toBe(machinePlatform().architecture);
    expect(result.image.size).toBe('lower\nx'.length + 'upper\ny'.length);

    const [upperDir, lowerDir] = store.layerDirs(result.image) as [string, string];
    expect(readFileSync(join(upperDir, 'etc/motd'), 'utf8')).toBe('upper\n');
    expect(readFileSync(join(lowerDir, 'etc/motd'), 'utf8')).toBe('lower\n');
    expect(await store.resolve('busybox')).toEqual(result.image);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('stores the layout the README describes', async () => {
    const root = temp.make();
    const store = openImageStore(root);
    await store.importArchive(await asTar(temp.make(), dockerArchiveMembers(image)));

    const hex = image.id.slice('sha256:'.length);
    expect(JSON.parse(readFileSync(join(root, 'repositories.json'), 'utf8'))).toEqual({ references: { 'busybox:latest': image.id } });
    expect(JSON.parse(readFileSync(join(root, 'images', `${hex}.json`), 'utf8'))).toMatchObject({ id: image.id, layers: image.diffIds });
    for (const diffId of image.diffIds) {
      const dir = join(root, 'layers', 'sha256', diffId.slice('sha256:'.length));
      expect(JSON.parse(readFileSync(join(dir, 'layer.json'), 'utf8'))).toMatchObject({ diffId });
      expect(existsSync(join(dir, 'diff'))).toBe(true);
    }
    expect(store.layerDirs({ layers: image.diffIds })).toEqual(
      [...image.diffIds].reverse().map((diffId) => join(root, 'layers', 'sha256', diffId.slice('sha256:'.length), 'diff')),
    );
  });

  it.each([
    ['plain', false],
    ['gzip-compressed', true],
  ])('%s root file system tarball becomes one layer', async (_name, gzip) => {
    const rootfs: Member[] = [
      { name: './', type: 'directory', mode: 0o755 },
      { name: './bin/', type: 'directory', mode: 0o755 },
      { name: './bin/busybox', data: 'binary', mode: 0o755 },
      { name: './bin/sh', type: 'symlink', linkname: 'busybox' },
      { name: './usr/share/doc/busybox/README', data: 'deep path' },
      { name: './dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    ];
    const bytes = await tarOf(rootfs);
    const input = await writeTar(temp.make(), 'rootfs.tar', rootfs, gzip);
    const store = openImageStore(temp.make());

    const { image: imported, references } = await store.importArchive(input, { reference: 'debian:bookworm' });

    expect(references).toEqual(['debian:bookworm']);
    expect(imported.layers).toEqual([`sha256:${sha256(bytes)}`]);
    expect(imported.config).toEqual({});
    expect(imported.architecture).toBe(machinePlatform().architecture);
    expect(imported.os).toBe('linux');
    const [diff] = store.layerDirs(imported) as [string];
    expect(readFileSync(join(diff, 'bin/busybox'), 'utf8')).toBe('binary');
    expect(readFileSync(join(diff, 'usr/share/doc/busybox/README'), 'utf8')).toBe('deep path');
  });

  it('shallow root file system tarball', async () => {
    const rootfs: Member[] = [
      { name: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' },
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
    ];
    const input = await writeTar(temp.make(), 'rootfs.tar', rootfs);
    const store = openImageStore(temp.make());

    const { image: imported, references } = await store.importArchive(input);

    expect(references).toEqual([]);
    expect(imported.repoTags).toEqual([]);
    expect(imported.layers).toEqual([`sha256:${sha256(await tarOf(rootfs))}`]);
    expect(await store.list()).toMatchObject([{ repository: '<none>', tag: '<none>', id: imported.id }]);
  });

  it('reference replaces the names in the archive', async () => {
    const store = openImageStore(temp.make());
    const input = await asTar(temp.make(), dockerArchiveMembers(image, { repoTags: ['busybox:latest', 'busybox:1.36'] }));

    const result = await store.importArchive(input, { reference: 'Example.com:5000/team/box' });

    expect(result.references).toEqual(['Example.com:5000/team/box:latest']);
    expect(store.referencesSync()).toEqual(['Example.com:5000/team/box:latest']);
  });

  it('docker save with several RepoTags sets each', async () => {
    const store = openImageStore(temp.make());
    const input = await asTar(temp.make(), dockerArchiveMembers(image, { repoTags: ['busybox:latest', 'docker.io/library/busybox:1.36'] }));

    const result = await store.importArchive(input);

    expect(result.references).toEqual(['busybox:latest', 'busybox:1.36']);
    expect(result.image.repoTags).toEqual(['busybox:1.36', 'busybox:latest']);
  });

  it('bare OCI tag annotation leaves untagged', async () => {
    const store = openImageStore(temp.make());
    const input = await asTar(temp.make(), ociLayoutMembers(image, { annotations: { 'org.opencontainers.image.ref.name': 'latest' } }));

    const result = await store.importArchive(input);

    expect(result.references).toEqual([]);
    expect(store.referencesSync()).toEqual([]);
  });

  it('docker save layer symlink followed', async () => {
    const layer = await layerOf({ file: 'same' });
    const twice = imageOf([layer, layer]);
    const members = dockerArchiveMembers(twice, {
      edit: (list) => {
        const second = list[1] as Member;
        const first = list[0] as Member;
        // docker writes the second copy as a symlink to the first.
        return [first, { name: second.name, type: 'symlink', linkname: `../${first.name}` }, ...list.slice(2)];
      },
    });
    const store = openImageStore(temp.make());

    const result = await store.importArchive(await asTar(temp.make(), members));

    expect(result.image.layers).toEqual([twice.diffIds[0], twice.diffIds[0]]);
    expect(store.layerDirs(result.image)).toHaveLength(1);
    expect(result.image.size).toBe('same'.length);
  });

  it('progress reaches both phase totals', async () => {
    const input = await asTarGz(temp.make(), dockerArchiveMembers(image));
    const events: ImportProgress[] = [];
    const store = openImageStore(temp.make());

    await store.importArchive(input, { onProgress: (progress) => events.push({ ...progress }) });

    for (const phase of ['read', 'unpack'] as const) {
      const ofPhase = events.filter((event) => event.phase === phase);
      const last = ofPhase.at(-1) as ImportProgress;
      expect(ofPhase.length).toBeGreaterThan(1);
      expect(last.bytesDone).toBe(last.bytesTotal);
      expect(ofPhase.every((event, index) => index === 0 || event.bytesDone >= (ofPhase[index - 1] as ImportProgress).bytesDone)).toBe(true);
    }
    expect(events.findIndex((event) => event.phase === 'unpack')).toBeGreaterThan(events.findLastIndex((event) => event.phase === 'read'));
  });
});
