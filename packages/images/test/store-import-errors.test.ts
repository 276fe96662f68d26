import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { formatPlatform, machinePlatform } from '../src/image-platform.js';
import { ImageError, type ImageErrorCode, openImageStore } from '../src/index.js';
import {
  dockerArchiveMembers,
  imageOf,
  layerOf,
  type Member,
  ociLayoutMembers,
  sha256,
  snapshotTree,
  type TestImage,
  tarOf,
} from './image-archives.js';
import { NOT_ROOT, TempDirs, writeTar } from './store-helpers.js';

const temp = new TempDirs();
afterEach(() => temp.removeAll());

const machine = machinePlatform();
const otherArchitecture = machine.architecture === 's390x' ? 'amd64' : 's390x';

const lower = await layerOf({ 'etc/motd': 'lower\n' });
const image: TestImage = imageOf([lower, await layerOf({ 'etc/motd': 'upper\n' })]);
// Shares the lower layer, so a failed import must not touch a layer that existed before.
const shared: TestImage = imageOf([lower, await layerOf({ other: 'layer' })], { label: 'shared' });

/** Replaces the data of the member whose name matches, keeping its name. */
function replaceData(members: Member[], match: (name: string) => boolean, data: (old: Buffer) => Buffer): Member[] {
  return members.map((member) => (match(member.name) ? { ...member, data: data(Buffer.from(member.data ?? '')) } : member));
}

// The gzip-compressed layer blobs of ociLayoutMembers(image); gzipSync gives the same bytes each time.
const layerBlobs = new Set(image.layers.map((layer) => `blobs/sha256/${sha256(gzipSync(layer))}`));
const isLayerBlob = (name: string): boolean => layerBlobs.has(name);

interface FailureCase {
  name: string;
  /** Writes the input into `directory` and returns its path. */
  input: (directory: string) => Promise<string>;
  code: ImageErrorCode;
  /** Text the message must contain. */
  message: string | ((input: string) => string);
  reference?: string;
  /** The member the error must name in its `entry` field. */
  entry?: string;
}

const firstLayerName = (): string => (dockerArchiveMembers(image)[0] as Member).name;

const CASES: FailureCase[] = [
  {
    name: 'OCI layer blob whose content differs from its digest',
    input: (dir) =>
      writeTar(dir, 'oci.tar', ociLayoutMembers(image, { edit: (list) => replaceData(list, isLayerBlob, (old) => Buffer.from(old.map((byte, index) => (index === 20 ? byte ^ 1 : byte)))) })),
    code: 'DIGEST_MISMATCH',
    message: 'has digest sha256:',
    entry: [...layerBlobs][0],
  },
  {
    name: 'OCI layer blob of another size than its descriptor',
    input: (dir) => writeTar(dir, 'oci.tar', ociLayoutMembers(image, { edit: (list) => replaceData(list, isLayerBlob, (old) => Buffer.concat([old, Buffer.from('x')])) })),
    code: 'DIGEST_MISMATCH',
    message: 'bytes, but image manifest',
    entry: [...layerBlobs][0],
  },
  {
    name: 'layer whose tar differs from the diff id',
    input: (dir) => writeTar(dir, 'docker.tar', dockerArchiveMembers(imageOf(image.layers, { diffIds: (ids) => [ids[0] as string, `sha256:${sha256('other')}`] }))),
    code: 'DIGEST_MISMATCH',
    message: `has diff id ${image.diffIds[1]}, but the image config says sha256:${sha256('other')}`,
  },
  {
    name: 'docker config whose content differs from its name',
    input: (dir) => writeTar(dir, 'docker.tar', dockerArchiveMembers(image, { edit: (list) => replaceData(list, (name) => name.endsWith('.json') && name !== 'manifest.json', (old) => Buffer.from(`${old} `)) })),
    code: 'DIGEST_MISMATCH',
    message: 'but its name says',
  },
  {
    name: 'archive cut in the middle of a layer member',
    input: async (dir) => {
      const bytes = await tarOf(dockerArchiveMembers(image));
      writeFileSync(join(dir, 'cut.tar'), bytes.subarray(0, 512 + 100));
      return join(dir, 'cut.tar');
    },
    code: 'TRUNCATED',
    message: `ends in the middle of member ${JSON.stringify(firstLayerName())}`,
    entry: firstLayerName(),
  },
  {
    name: 'gzip-compressed archive cut in half',
    input: async (dir) => {
      const bytes = gzipSync(await tarOf(dockerArchiveMembers(image)));
      writeFileSync(join(dir, 'cut.tar.gz'), bytes.subarray(0, bytes.length >> 1));
      return join(dir, 'cut.tar.gz');
    },
    code: 'TRUNCATED',
    message: 'ends in the middle of its gzip stream',
  },
  {
    name: 'gzip layer cut in half inside a complete archive',
    input: (dir) =>
      writeTar(dir, 'docker.tar', dockerArchiveMembers(image, { gzipLayers: true, edit: (list) => replaceData(list, (name) => name.endsWith('/layer.tar'), (old) => old.subarray(0, old.length >> 1)) })),
    code: 'TRUNCATED',
    message: '/layer.tar in ',
  },
  ...(
    [
      ['zstd', [0x28, 0xb5, 0x2f, 0xfd], 'zstd -d'],
      ['bzip2', [0x42, 0x5a, 0x68, 0x39], 'bzip2 -d'],
      ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz -d'],
    ] as const
  ).map(
    ([compression, magic, command]): FailureCase => ({
      name: `${compression}-compressed archive`,
      input: async (dir) => {
        writeFileSync(join(dir, `image.tar.${compression}`), Buffer.concat([Buffer.from(magic), Buffer.alloc(100)]));
        return join(dir, `image.tar.${compression}`);
      },
      code: 'UNSUPPORTED_COMPRESSION',
      message: (input) => `${input} is compressed with ${compression}, which m-docker cannot decompress: decompress it first with \`${command} ${input}\``,
    }),
  ),
  {
    name: 'OCI layer of media type +zstd',
    input: (dir) => writeTar(dir, 'oci.tar', ociLayoutMembers(image, { gzipLayers: false, layerType: 'application/vnd.oci.image.layer.v1.tar+zstd' })),
    code: 'UNSUPPORTED_COMPRESSION',
    message: 'zstd-compressed layer',
  },
  {
    name: 'OCI layer of an unknown media type',
    input: (dir) => writeTar(dir, 'oci.tar', ociLayoutMembers(image, { layerType: 'application/x-unknown' })),
    code: 'UNKNOWN_MEDIA_TYPE',
    message: 'has media type "application/x-unknown"',
  },
  {
    name: 'image for another architecture',
    input: (dir) => writeTar(dir, 'docker.tar', dockerArchiveMembers(imageOf(image.layers, { architecture: otherArchitecture }))),
    code: 'WRONG_PLATFORM',
    message: `is for linux/${otherArchitecture}, this machine is ${formatPlatform(machine)}`,
  },
  {
    name: 'nested index without this platform',
    input: (dir) => writeTar(dir, 'oci.tar', ociLayoutMembers(image, { nested: true, otherPlatforms: [{ os: 'linux', architecture: otherArchitecture }], onlyOtherPlatforms: true })),
    code: 'WRONG_PLATFORM',
    message: `has no image for ${formatPlatform(machine)}, only for linux/${otherArchitecture}`,
  },
  {
    name: 'outer member leaving the archive with ..',
    input: (dir) => writeTar(dir, 'docker.tar', [...dockerArchiveMembers(image), { name: '../escape', data: 'x' }]),
    code: 'UNSAFE_PATH',
    message: 'member "../escape" is absolute or leaves the archive',
    entry: '../escape',
  },
  {
    name: 'outer member with an absolute name',
    input: (dir) => writeTar(dir, 'docker.tar', [{ name: '/etc/escape', data: 'x' }, ...dockerArchiveMembers(image)]),
    code: 'UNSAFE_PATH',
    message: 'member "/etc/escape"',
    entry: '/etc/escape',
  },
  {
    name: 'outer symlink pointing outside the archive',
    input: (dir) => writeTar(dir, 'docker.tar', [...dockerArchiveMembers(image), { name: 'evil', type: 'symlink', linkname: '../../etc/passwd' }]),
    code: 'UNSAFE_PATH',
    message: 'link member "evil" points outside the archive',
    entry: 'evil',
  },
  {
    name: 'manifest.json naming a layer outside the archive',
    input: (dir) =>
      writeTar(dir, 'docker.tar', dockerArchiveMembers(image, { edit: (list) => replaceData(list, (name) => name === 'manifest.json', (old) => Buffer.from(old.toString().replace(firstLayerName(), '../../etc/passwd'))) })),
    code: 'UNSAFE_PATH',
    message: 'member "../../etc/passwd"',
  },
  {
    name: 'layer member leaving the layer',
    input: async (dir) => writeTar(dir, 'docker.tar', dockerArchiveMembers(imageOf([image.layers[0] as Buffer, await tarOf([{ name: '../../escape-traversal', data: 'x' }])]))),
    code: 'UNSAFE_PATH',
    message: '../../escape-traversal',
  },
  {
    name: 'text file',
    input: async (dir) => {
      writeFileSync(join(dir, 'notes.txt'), 'not an archive\n'.repeat(100));
      return join(dir, 'notes.txt');
    },
    code: 'UNKNOWN_FORMAT',
    message: 'is not a tar archive',
  },
  {
    name: 'empty file',
    input: async (dir) => {
      writeFileSync(join(dir, 'empty.tar'), '');
      return join(dir, 'empty.tar');
    },
    code: 'UNKNOWN_FORMAT',
    message: 'is empty',
  },
  {
    name: 'missing file',
    input: async (dir) => join(dir, 'missing.tar'),
    code: 'READ_FAILED',
    message: 'no such file or directory: check the path',
  },
  {
    name: 'image blobs without manifest.json or index.json',
    input: (dir) => writeTar(dir, 'blobs.tar', ociLayoutMembers(image).filter((member) => member.name !== 'index.json')),
    code: 'UNKNOWN_FORMAT',
    message: 'but neither manifest.json nor index.json',
  },
  {
    name: 'OCI layout without oci-layout',
    input: (dir) => writeTar(dir, 'oci.tar', ociLayoutMembers(image).filter((member) => member.name !== 'oci-layout')),
    code: 'UNKNOWN_FORMAT',
    message: 'has no OCI layout file "oci-layout"',
  },
  {
    name: 'manifest.json with two images',
    input: (dir) =>
      writeTar(dir, 'docker.tar', dockerArchiveMembers(image, { edit: (list) => replaceData(list, (name) => name === 'manifest.json', (old) => Buffer.from(JSON.stringify([...JSON.parse(old.toString()), ...JSON.parse(old.toString())]))) })),
    code: 'MULTIPLE_IMAGES',
    message: 'contains 2 images',
  },
  {
    name: 'manifest.json that is not JSON',
    input: (dir) => writeTar(dir, 'docker.tar', dockerArchiveMembers(image, { edit: (list) => replaceData(list, (name) => name === 'manifest.json', () => Buffer.from('[{')) })),
    code: 'INVALID_MANIFEST',
    message: 'manifest.json is not valid JSON',
  },
  {
    name: 'invalid reference',
    input: (dir) => writeTar(dir, 'docker.tar', dockerArchiveMembers(image)),
    reference: 'BusyBox',
    code: 'INVALID_REFERENCE',
    message: 'invalid reference "BusyBox": repository names must be lowercase',
  },
];

describe.skipIf(NOT_ROOT)('importArchive rejects', () => {
  it.each(CASES)('$name: $code, store unchanged', async (failure) => {
    const root = temp.make();
    const store = openImageStore(root);
    await store.importArchive(await writeTar(temp.make(), 'shared.tar', dockerArchiveMembers(shared, { repoTags: ['shared:1'] })));
    const before = snapshotTree(root);
    const input = await failure.input(temp.make());

    const error = await store.importArchive(input, failure.reference === undefined ? {} : { reference: failure.reference }).then(
      () => undefined,
      (caught: unknown) => caught,
    );

    expect(ImageError.isInstance(error), String(error)).toBe(true);
    expect((error as ImageError).code, (error as Error).message).toBe(failure.code);
    expect((error as Error).message).toContain(typeof failure.message === 'string' ? failure.message : failure.message(input));
    if (failure.entry !== undefined) expect((error as ImageError).entry).toBe(failure.entry);
    expect(snapshotTree(root)).toEqual(before);
    expect(store.referencesSync()).toEqual(['shared:1']);
  });
});

describe.skipIf(NOT_ROOT)('importArchive commit failure', () => {
  it('failed commit renames layers back', async () => {
    const root = temp.make();
    const store = openImageStore(root);
    await store.importArchive(await writeTar(temp.make(), 'shared.tar', dockerArchiveMembers(shared, { repoTags: ['shared:1'] })));
    // A directory where repositories.json belongs makes the commit's last step fail.
    rmSync(join(root, 'repositories.json'));
    mkdirSync(join(root, 'repositories.json'));
    const before = snapshotTree(root);

    const importing = store.importArchive(await writeTar(temp.make(), 'docker.tar', dockerArchiveMembers(image)));

    await expect(importing).rejects.toMatchObject({ code: 'STORE_FAILED', path: join(root, 'repositories.json') });
    expect(snapshotTree(root)).toEqual(before);
  });
});
