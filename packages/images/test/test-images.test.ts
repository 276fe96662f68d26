import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar, { type Header } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BAD_ARCHIVES,
  type BuiltBadArchive,
  buildBadArchives,
  buildTestImages,
  ociArchitecture,
  type TestImages,
} from '../../../scripts/test-images/build-test-images.mjs';

// Checks the structure of the archives that scripts/test-images writes for
// the importer's and the CLI's tests. The importer itself is not used here:
// every check reads the archives with tar-stream, sha256 and gunzip.

interface Member {
  header: Header;
  data: Buffer;
}

interface DockerManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

interface OciManifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

interface ImageConfig {
  architecture: string;
  os: string;
  config: { Env: string[]; Cmd: string[] };
  rootfs: { type: string; diff_ids: string[] };
  history: unknown[];
}

const ERROR_CODES = [
  'UNSAFE_PATH',
  'DIGEST_MISMATCH',
  'TRUNCATED',
  'UNKNOWN_MEDIA_TYPE',
  'WRONG_PLATFORM',
  'UNSUPPORTED_COMPRESSION',
  'UNKNOWN_FORMAT',
];

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads every member of a tar archive with its data. Rejects when the archive is corrupt or truncated. */
async function readMembers(archive: Buffer): Promise<Member[]> {
  const extract = tar.extract();
  const members: Member[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      members.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  extract.end(archive);
  await reading;
  return members;
}

async function readMemberMap(archive: Buffer): Promise<Map<string, Member>> {
  const members = await readMembers(archive);
  return new Map(members.map((member) => [member.header.name, member]));
}

/** Returns the value of one pax extended header record of a member, such as `SCHILY.xattr.user.x`. */
function paxRecord(member: Member, key: string): string | undefined {
  const records = member.header.pax as Record<string, string> | null | undefined;
  return records?.[key];
}

function getMember(members: Map<string, Member>, name: string): Member {
  const member = members.get(name);
  if (member === undefined) throw new Error(`member ${name} not found among ${[...members.keys()].join(', ')}`);
  return member;
}

function parseJson<T>(data: Buffer): T {
  return JSON.parse(data.toString('utf8')) as T;
}

/** Lists the files below a directory as paths relative to it, sorted. */
function listFiles(root: string): string[] {
  const entries = readdirSync(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

async function readDockerArchive(path: string) {
  const members = await readMemberMap(readFileSync(path));
  const [manifest] = parseJson<DockerManifestEntry[]>(getMember(members, 'manifest.json').data);
  if (manifest === undefined) throw new Error(`${path}: manifest.json is empty`);
  const config = parseJson<ImageConfig>(getMember(members, manifest.Config).data);
  return { members, manifest, config };
}

let workDir: string;
let images: TestImages;
let badArchives: BuiltBadArchive[];

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'm-docker-test-images-'));
  images = await buildTestImages(join(workDir, 'first'));
  badArchives = await buildBadArchives(join(workDir, 'first'));
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

describe('busybox docker archive', () => {
  it('has manifest, config and layers', async () => {
    const { members, manifest } = await readDockerArchive(images.dockerArchive);
    const configData = getMember(members, manifest.Config).data;

    expect(manifest.RepoTags).toEqual(['busybox:latest']);
    expect(manifest.Config).toBe(`${sha256(configData)}.json`);
    expect(`sha256:${sha256(configData)}`).toBe(images.configDigest);
    expect(manifest.Layers).toHaveLength(2);
    for (const layer of manifest.Layers) expect(members.has(layer)).toBe(true);
  });

  it('diff ids match layer bytes', async () => {
    const { members, manifest, config } = await readDockerArchive(images.dockerArchive);
    const layerDigests = manifest.Layers.map((layer) => `sha256:${sha256(getMember(members, layer).data)}`);

    expect(config.rootfs.type).toBe('layers');
    expect(config.rootfs.diff_ids).toEqual(layerDigests);
    expect(images.diffIds).toEqual(layerDigests);
  });

  it('layer directories are not named after digests', async () => {
    const { manifest, config } = await readDockerArchive(images.dockerArchive);
    const directories = manifest.Layers.map((layer) => `sha256:${layer.split('/')[0]}`);

    for (const directory of directories) expect(config.rootfs.diff_ids).not.toContain(directory);
  });

  it('config sets platform, env and cmd', async () => {
    const { config } = await readDockerArchive(images.dockerArchive);

    expect(config.architecture).toBe(ociArchitecture(process.arch));
    expect(images.architecture).toBe(config.architecture);
    expect(config.os).toBe('linux');
    expect(config.config.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(config.config.Cmd).toEqual(['sh']);
    expect(config.history).toHaveLength(2);
  });
});

describe('busybox layers', () => {
  async function readLayers(): Promise<Map<string, Member>[]> {
    const { members, manifest } = await readDockerArchive(images.dockerArchive);
    return Promise.all(manifest.Layers.map((layer) => readMemberMap(getMember(members, layer).data)));
  }

  it('lower layer has busybox and its applet links', async () => {
    const [lower] = await readLayers();
    if (lower === undefined) throw new Error('no lower layer');
    const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter((applet) => applet !== 'busybox');

    const busybox = getMember(lower, 'bin/busybox');
    expect(busybox.header.mode).toBe(0o755);
    expect(busybox.data.equals(readFileSync('/bin/busybox'))).toBe(true);
    for (const applet of applets) {
      const link = getMember(lower, `bin/${applet}`);
      expect(link.header.type).toBe('symlink');
      expect(link.header.linkname).toBe('busybox');
    }
    const hardLink = getMember(lower, 'bin/busybox-hardlink');
    expect(hardLink.header.type).toBe('link');
    expect(hardLink.header.linkname).toBe('bin/busybox');
  });

  it('lower layer has users, groups and os-release', async () => {
    const [lower] = await readLayers();
    if (lower === undefined) throw new Error('no lower layer');
    const passwd = getMember(lower, 'etc/passwd').data.toString();
    const group = getMember(lower, 'etc/group').data.toString();
    const osRelease = getMember(lower, 'etc/os-release').data.toString();

    expect(passwd).toContain('root:x:0:0:root:/root:/bin/sh\n');
    expect(passwd).toContain('app:x:1000:1000:app:/home/app:/bin/sh\n');
    expect(passwd).toMatch(/^nobody:x:65534:65534:/m);
    expect(group).toContain('root:x:0:\n');
    expect(group).toContain('app:x:1000:\n');
    expect(group).toContain('extra:x:2000:app\n');
    expect(group).toContain('more:x:2001:app\n');
    expect(osRelease).toContain('NAME="m-docker test busybox"\n');
    expect(osRelease).toContain('ID=busybox\n');
    expect(osRelease).toMatch(/^VERSION_ID=\d+\.\d+\.\d+$/m);
  });

  it('lower layer has directory owners and modes', async () => {
    const [lower] = await readLayers();
    if (lower === undefined) throw new Error('no lower layer');

    const home = getMember(lower, 'home/app/');
    expect(home.header.type).toBe('directory');
    expect(home.header.uid).toBe(1000);
    expect(home.header.gid).toBe(1000);
    expect(getMember(lower, 'tmp/').header.mode).toBe(0o1777);
    expect(getMember(lower, 'root/').header.mode).toBe(0o700);
    for (const name of ['proc/', 'sys/', 'dev/', 'data/']) {
      expect(getMember(lower, name).header.type).toBe('directory');
    }
  });

  it('lower layer has the files layer 2 changes', async () => {
    const [lower] = await readLayers();
    if (lower === undefined) throw new Error('no lower layer');

    expect(getMember(lower, 'etc/motd').data.toString()).toBe('lower\n');
    expect(getMember(lower, 'lower-only').header.type).toBe('file');
    expect(getMember(lower, 'data/old.txt').data.toString()).toBe('old\n');
    expect(paxRecord(getMember(lower, 'xattr.txt'), 'SCHILY.xattr.user.m-docker.test')).toBe('lower');
  });

  it('upper layer has whiteouts and replacements', async () => {
    const [, upper] = await readLayers();
    if (upper === undefined) throw new Error('no upper layer');

    expect([...upper.keys()].sort()).toEqual([
      '.wh.lower-only',
      'data/',
      'data/.wh..wh..opq',
      'data/new.txt',
      'etc/',
      'etc/motd',
      'upper-only',
    ]);
    expect(getMember(upper, '.wh.lower-only').data.length).toBe(0);
    expect(getMember(upper, 'data/.wh..wh..opq').data.length).toBe(0);
    expect(getMember(upper, 'etc/motd').data.toString()).toBe('upper\n');
  });
});

describe('busybox rootfs tar', () => {
  it('is the merged tree without whiteouts', async () => {
    const { members: archive, manifest } = await readDockerArchive(images.dockerArchive);
    const [lowerLayer] = manifest.Layers;
    if (lowerLayer === undefined) throw new Error('no lower layer');
    const lowerNames = (await readMembers(getMember(archive, lowerLayer).data)).map((member) => member.header.name);
    const expected = [
      ...lowerNames.filter((name) => name !== 'lower-only' && name !== 'data/old.txt'),
      'data/new.txt',
      'upper-only',
    ].sort();

    const rootfs = await readMemberMap(readFileSync(images.rootfsTar));

    expect([...rootfs.keys()].sort()).toEqual(expected);
    expect(getMember(rootfs, 'etc/motd').data.toString()).toBe('upper\n');
    expect(paxRecord(getMember(rootfs, 'xattr.txt'), 'SCHILY.xattr.user.m-docker.test')).toBe('lower');
  });

  it('gzip file holds the same tar', () => {
    const plain = readFileSync(images.rootfsTar);
    const unpacked = gunzipSync(readFileSync(images.rootfsTarGz));

    expect(unpacked.equals(plain)).toBe(true);
  });
});

describe('busybox OCI layout', () => {
  function readBlob(digest: string): Buffer {
    return readFileSync(join(images.ociLayout, 'blobs', digest.replace(':', '/')));
  }

  function readManifest(): OciManifest {
    return parseJson<OciManifest>(readBlob(images.manifestDigest));
  }

  it('blob names match their sha256', () => {
    const blobDir = join(images.ociLayout, 'blobs', 'sha256');
    const names = readdirSync(blobDir);

    expect(names).toHaveLength(4);
    for (const name of names) expect(sha256(readFileSync(join(blobDir, name)))).toBe(name);
  });

  it('index names the image and its manifest', () => {
    const layout = parseJson<{ imageLayoutVersion: string }>(readFileSync(join(images.ociLayout, 'oci-layout')));
    const index = parseJson<{ mediaType: string; manifests: Descriptor[] }>(
      readFileSync(join(images.ociLayout, 'index.json')),
    );
    const [descriptor] = index.manifests;

    expect(layout.imageLayoutVersion).toBe('1.0.0');
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests).toHaveLength(1);
    expect(descriptor?.digest).toBe(images.manifestDigest);
    expect(descriptor?.size).toBe(readBlob(images.manifestDigest).length);
    expect(descriptor?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(descriptor?.platform).toEqual({ architecture: images.architecture, os: 'linux' });
    expect(descriptor?.annotations).toEqual({
      'io.containerd.image.name': 'busybox:latest',
      'org.opencontainers.image.ref.name': 'latest',
    });
  });

  it('config is the docker archive config', () => {
    const manifest = readManifest();

    expect(manifest.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expect(manifest.config.digest).toBe(images.configDigest);
    expect(manifest.config.size).toBe(readBlob(images.configDigest).length);
  });

  it('layers are gzip and unpack to the diff ids', () => {
    const manifest = readManifest();
    const config = parseJson<ImageConfig>(readBlob(manifest.config.digest));

    expect(manifest.layers).toHaveLength(2);
    for (const [index, layer] of manifest.layers.entries()) {
      const blob = readBlob(layer.digest);
      expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
      expect(layer.size).toBe(blob.length);
      expect(`sha256:${sha256(gunzipSync(blob))}`).toBe(config.rootfs.diff_ids[index]);
    }
  });

  it('archive holds the files of the layout', async () => {
    const members = await readMembers(readFileSync(images.ociArchive));
    const files = members.filter((member) => member.header.type === 'file');

    expect(files.map((member) => member.header.name).sort()).toEqual(listFiles(images.ociLayout));
    for (const member of files) {
      expect(member.data.equals(readFileSync(join(images.ociLayout, member.header.name)))).toBe(true);
    }
  });
});

describe('buildTestImages', () => {
  it('builds identical bytes twice', async () => {
    const second = join(workDir, 'second');
    await buildTestImages(second);
    await buildBadArchives(second);
    const first = join(workDir, 'first');

    expect(listFiles(second)).toEqual(listFiles(first));
    for (const path of listFiles(first)) {
      expect(readFileSync(join(second, path)).equals(readFileSync(join(first, path))), path).toBe(true);
    }
  });

  it('rejects missing busybox naming busybox-static', async () => {
    const missing = join(workDir, 'no-such-busybox');

    await expect(buildTestImages(join(workDir, 'missing'), { busyboxPath: missing })).rejects.toThrow(
      `${missing} not found: install the Debian package busybox-static`,
    );
  });

  it('rejects dynamically linked busybox', async () => {
    await expect(buildTestImages(join(workDir, 'dynamic'), { busyboxPath: process.execPath })).rejects.toThrow(
      `${process.execPath} is dynamically linked, so it cannot run in an image without libc: install the Debian package busybox-static`,
    );
  });

  it('rejects a busybox that is not ELF', async () => {
    const script = join(workDir, 'script-busybox');
    writeFileSync(script, '#!/bin/sh\necho busybox\n');

    await expect(buildTestImages(join(workDir, 'script'), { busyboxPath: script })).rejects.toThrow(
      `${script} is not an ELF executable: install the Debian package busybox-static`,
    );
  });
});

describe('buildBadArchives', () => {
  function row(file: string): BuiltBadArchive {
    const found = badArchives.find((archive) => archive.file === file);
    if (found === undefined) throw new Error(`no bad archive ${file}`);
    return found;
  }

  async function readLayer(archivePath: string): Promise<Map<string, Member>> {
    const { members, manifest } = await readDockerArchive(archivePath);
    const [layer] = manifest.Layers;
    if (layer === undefined) throw new Error(`${archivePath}: manifest has no layers`);
    return readMemberMap(getMember(members, layer).data);
  }

  it('writes one file per table row', () => {
    expect(badArchives.map((archive) => archive.file)).toEqual(BAD_ARCHIVES.map((archive) => archive.file));
    for (const archive of badArchives) {
      expect(existsSync(archive.path), archive.file).toBe(true);
      expect(ERROR_CODES).toContain(archive.expectedCode);
      expect(archive.defect.length).toBeGreaterThan(0);
    }
  });

  it('truncated archive ends inside its layer member', async () => {
    const archive = row('truncated.tar');

    expect(archive.expectedCode).toBe('TRUNCATED');
    expect(archive.entry).toMatch(/^[0-9a-f]{64}\/layer\.tar$/);
    await expect(readMembers(readFileSync(archive.path))).rejects.toThrow(/unexpected end of data/i);
  });

  it('wrong-digest layer differs from its diff id', async () => {
    const archive = row('wrong-digest.tar');
    const { members, manifest, config } = await readDockerArchive(archive.path);
    const layer = getMember(members, manifest.Layers[0] ?? '').data;

    expect(archive.entry).toBe(manifest.Layers[0]);
    expect(config.rootfs.diff_ids).toHaveLength(1);
    expect(config.rootfs.diff_ids[0]).not.toBe(`sha256:${sha256(layer)}`);
    await expect(readMembers(layer)).resolves.toHaveLength(2);
  });

  it('wrong-blob-digest blob differs from its name', async () => {
    const archive = row('wrong-blob-digest-oci.tar');
    const members = await readMemberMap(readFileSync(archive.path));
    const blobNames = [...members.keys()].filter((name) => name.startsWith('blobs/sha256/') && !name.endsWith('/'));
    const mismatched = blobNames.filter((name) => sha256(getMember(members, name).data) !== name.split('/')[2]);

    expect(mismatched).toEqual([archive.entry]);
    const [index] = parseJson<{ manifests: Descriptor[] }>(getMember(members, 'index.json').data).manifests;
    const manifest = parseJson<OciManifest>(getMember(members, `blobs/${index?.digest.replace(':', '/')}`).data);
    expect(manifest.layers[0]?.digest).toBe(archive.entry?.replace('blobs/sha256/', 'sha256:'));
    expect(manifest.layers[0]?.size).toBe(getMember(members, archive.entry ?? '').data.length);
  });

  it.each([
    ['traversal.tar', '../../escape-traversal', 'file', null],
    ['absolute.tar', '/escape-absolute', 'file', null],
    ['symlink-escape.tar', 'link/escape-symlink', 'file', null],
    ['symlink-escape.tar', 'link', 'symlink', '/tmp'],
    ['hardlink-escape.tar', 'escape-hardlink', 'link', '../../../etc/passwd'],
  ])('%s layer has member %s', async (file, name, type, linkname) => {
    const archive = row(file);
    const layer = await readLayer(archive.path);
    const member = getMember(layer, name);

    expect(archive.expectedCode).toBe('UNSAFE_PATH');
    expect(member.header.type).toBe(type);
    expect(member.header.linkname ?? null).toBe(linkname);
  });

  it.each([
    ['traversal.tar', '../../escape-traversal'],
    ['absolute.tar', '/escape-absolute'],
    ['symlink-escape.tar', 'link/escape-symlink'],
    ['hardlink-escape.tar', 'escape-hardlink'],
  ])('%s names entry %s', (file, entry) => {
    expect(row(file).entry).toBe(entry);
  });

  it('unknown-media-type manifest names application/x-unknown', async () => {
    const archive = row('unknown-media-type-oci.tar');
    const members = await readMemberMap(readFileSync(archive.path));
    const manifest = parseJson<OciManifest>(getMember(members, archive.entry ?? '').data);
    const blobNames = [...members.keys()].filter((name) => name.startsWith('blobs/sha256/') && !name.endsWith('/'));

    expect(manifest.layers.map((layer) => layer.mediaType)).toEqual(['application/x-unknown']);
    for (const name of blobNames) expect(sha256(getMember(members, name).data)).toBe(name.split('/')[2]);
  });

  it('wrong-arch config is for s390x', async () => {
    const archive = row('wrong-arch.tar');
    const { manifest, config } = await readDockerArchive(archive.path);

    expect(archive.entry).toBe(manifest.Config);
    expect(config.architecture).toBe('s390x');
  });

  it('zstd archive unpacks to the busybox docker archive', () => {
    const archive = row('zstd.tar.zst');
    const data = readFileSync(archive.path);
    const unpacked = execFileSync('zstd', ['-d', '-c', archive.path], { maxBuffer: 256 * 1024 * 1024 });

    expect(archive.entry).toBeNull();
    expect(data.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    expect(unpacked.equals(readFileSync(images.dockerArchive))).toBe(true);
  });

  it('plain text is no tar', async () => {
    const archive = row('not-an-archive.tar');
    const data = readFileSync(archive.path);

    expect(archive.entry).toBeNull();
    expect(data.length).toBeGreaterThan(512);
    await expect(readMembers(data)).rejects.toThrow(/invalid tar header/i);
  });

  describe('with a broken zstd command', () => {
    const savedPath = process.env.PATH;

    afterAll(() => {
      process.env.PATH = savedPath;
    });

    it('rejects missing zstd naming the package', async () => {
      const emptyBin = join(workDir, 'empty-bin');
      mkdirSync(emptyBin, { recursive: true });
      process.env.PATH = emptyBin;

      await expect(buildBadArchives(join(workDir, 'no-zstd'))).rejects.toThrow(
        'zstd not found: install the Debian package zstd',
      );
      process.env.PATH = savedPath;
    });

    it('rejects a zstd that is killed', async () => {
      const killedBin = join(workDir, 'killed-bin');
      mkdirSync(killedBin, { recursive: true });
      writeFileSync(join(killedBin, 'zstd'), '#!/bin/sh\nkill -KILL $$\n');
      chmodSync(join(killedBin, 'zstd'), 0o755);
      process.env.PATH = `${killedBin}:${savedPath}`;

      await expect(buildBadArchives(join(workDir, 'killed-zstd'))).rejects.toMatchObject({ signal: 'SIGKILL' });
      process.env.PATH = savedPath;
    });
  });
});
