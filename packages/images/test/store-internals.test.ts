import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';
import { normalizeMemberName } from '../src/archive-files.js';
import { compressionOf } from '../src/archive-input.js';
import { machinePlatform } from '../src/image-platform.js';
import { storePaths } from '../src/store-paths.js';
import { layerDirectories } from '../src/store-query.js';
import { mountsBelow } from '../src/store-remove-tree.js';
import { isOwnerAlive, processStartTime } from '../src/store-staging.js';

describe('mountsBelow', () => {
  const mountinfo = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    '40 22 0:35 / /var/lib/m-docker/layers/sha256/abc/diff/mnt rw - tmpfs tmpfs rw',
    '41 22 0:36 / /var/lib/m-docker/layers/sha256/abcdef rw - tmpfs tmpfs rw',
    '42 22 0:37 / /var/lib/m-docker/tmp/with\\040space rw - tmpfs tmpfs rw',
    '',
  ].join('\n');

  it.each([
    ['/var/lib/m-docker/layers/sha256/abc', ['/var/lib/m-docker/layers/sha256/abc/diff/mnt']],
    ['/var/lib/m-docker/layers/sha256/abcdef', ['/var/lib/m-docker/layers/sha256/abcdef']],
    ['/var/lib/m-docker/layers/sha256/ab', []],
    ['/var/lib/m-docker/tmp', ['/var/lib/m-docker/tmp/with space']],
    ['/srv', []],
  ])('%s has %j', (path, expected) => {
    expect(mountsBelow(path, mountinfo)).toEqual(expected);
  });

  it('finds / on this machine', () => {
    expect(mountsBelow('/')).toContain('/');
  });
});

describe('processStartTime', () => {
  it('reads field 22 of this process', () => {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    expect(processStartTime('self')).toBe(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    expect(processStartTime(process.pid)).toMatch(/^\d+$/);
  });

  it('returns undefined for a pid without process', () => {
    expect(processStartTime(2 ** 22 + 1)).toBeUndefined();
  });

  it.each([
    [`import-${process.pid}-${processStartTime('self')}-00ff`, true],
    [`write-${process.pid}-${processStartTime('self')}-00ff.json`, true],
    [`import-${process.pid}-1-00ff`, false],
    [`import-${2 ** 22 + 1}-5-00ff`, false],
    ['lost+found', true],
  ])('isOwnerAlive(%s) is %s', (name, alive) => {
    expect(isOwnerAlive(name)).toBe(alive);
  });
});

describe('normalizeMemberName', () => {
  it.each([
    ['manifest.json', 'manifest.json'],
    ['./manifest.json', 'manifest.json'],
    ['././blobs//sha256/./ab/', 'blobs/sha256/ab'],
    ['./', ''],
  ])('%j gives %j', (name, normalized) => {
    expect(normalizeMemberName(name, 'a.tar')).toBe(normalized);
  });

  it.each(['/etc/passwd', '../x', 'a/../../x', 'a/..', 'a\0b'])('rejects %j with UNSAFE_PATH', (name) => {
    expect(() => normalizeMemberName(name, 'a.tar')).toThrow(expect.objectContaining({ code: 'UNSAFE_PATH', entry: name }));
  });
});

describe('compressionOf', () => {
  it.each([
    [[0x1f, 0x8b, 8, 0], 'gzip'],
    [[0x75, 0x73, 0x74], 'none'],
    [[], 'none'],
  ])('%j is %s', (bytes, compression) => {
    expect(compressionOf(Buffer.from(bytes), 'f', () => '')).toBe(compression);
  });
});

describe('layerDirectories', () => {
  const paths = storePaths('/store');
  const dir = (hex: string): string => `/store/layers/sha256/${hex}/diff`;

  it('lists the top layer first', () => {
    expect(layerDirectories(paths, { layers: ['sha256:a', 'sha256:b', 'sha256:c'] })).toEqual([dir('c'), dir('b'), dir('a')]);
  });

  it('repeated layer kept at upper position', () => {
    expect(layerDirectories(paths, { layers: ['sha256:e', 'sha256:a', 'sha256:e', 'sha256:b'] })).toEqual([dir('b'), dir('e'), dir('a')]);
  });
});

describe('machinePlatform', () => {
  it('names the architecture as Go does', () => {
    const expected = { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'] ?? process.arch;
    expect(machinePlatform()).toEqual({ os: 'linux', architecture: expected });
  });
});
