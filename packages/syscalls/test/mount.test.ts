import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';

import { MNT_DETACH, MS_PRIVATE, MS_REC, MS_SHARED } from '../src/index.js';
import { type CallResult, cleanUp, isRoot, makeTempDir, runCalls, startCalls } from './helpers.js';

// Every mount here happens in a fixtures/run-calls.mjs process that has
// unshared its mount namespace and made / private first.

/** One line of /proc/PID/mountinfo, as proc(5) describes it. */
interface MountInfo {
  mountPoint: string;
  optionalFields: string[];
  fsType: string;
}

function parseMountInfo(text: string): MountInfo[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [before = '', after = ''] = line.split(' - ');
      const fields = before.split(' ');
      return { mountPoint: fields[4] ?? '', optionalFields: fields.slice(6), fsType: after.split(' ')[0] ?? '' };
    });
}

function mountInfoOf(result: CallResult | undefined): MountInfo[] {
  expect(result?.call).toBe('mountinfo');
  return parseMountInfo(String(result?.value));
}

function hostMountPoints(): string[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).map((mount) => mount.mountPoint);
}

describe.skipIf(!isRoot)('mount (root only: mounting needs CAP_SYS_ADMIN)', () => {
  afterEach(cleanUp);

  it('mount puts a tmpfs only in the new namespace', async () => {
    const dir = makeTempDir();
    const fixture = startCalls(
      ['mnt'],
      [['mount', 'tmpfs', dir, 'tmpfs', 0, 'size=1m'], ['mountinfo'], ['waitForInput'], ['umount2', dir], ['mountinfo']],
    );

    expect(await fixture.nextResult()).toEqual({ call: 'mount', value: null });
    const mounted = mountInfoOf(await fixture.nextResult()).filter((mount) => mount.mountPoint === dir);
    expect(mounted).toEqual([expect.objectContaining({ fsType: 'tmpfs' })]);

    expect(await fixture.nextResult()).toEqual({ call: 'waitForInput', value: 'waiting' });
    expect(hostMountPoints()).not.toContain(dir);
    fixture.resume();

    expect(await fixture.nextResult()).toEqual({ call: 'waitForInput', value: 'resumed' });
    expect(await fixture.nextResult()).toEqual({ call: 'umount2', value: null });
    const afterUnmount = mountInfoOf(await fixture.nextResult());
    expect(afterUnmount.map((mount) => mount.mountPoint)).not.toContain(dir);
    expect(await fixture.exited).toBe(0);
  });

  it('mount changes the propagation of /', async () => {
    const results = await runCalls(
      ['mnt'],
      [['mount', null, '/', null, MS_SHARED], ['mountinfo'], ['mount', null, '/', null, MS_REC | MS_PRIVATE], ['mountinfo']],
    );
    const rootOf = (result: CallResult | undefined) =>
      mountInfoOf(result).find((mount) => mount.mountPoint === '/')?.optionalFields ?? [];

    expect(results[0]).toEqual({ call: 'mount', value: null });
    expect(rootOf(results[1])).toEqual([expect.stringMatching(/^shared:\d+$/)]);
    expect(results[2]).toEqual({ call: 'mount', value: null });
    expect(rootOf(results[3])).toEqual([]);
  });

  it('pivotRoot makes a tmpfs the root', async () => {
    const dir = makeTempDir();

    const results = await runCalls(
      ['mnt'],
      [
        ['mount', 'tmpfs', dir, 'tmpfs', 0, 'size=1m'],
        ['mkdir', `${dir}/old`],
        ['mkdir', `${dir}/marker`],
        ['pivotRoot', dir, `${dir}/old`],
        ['readdir', '/'],
        ['umount2', '/old', MNT_DETACH],
        ['readdir', '/old'],
      ],
    );

    expect(results).toEqual([
      { call: 'mount', value: null },
      { call: 'mkdir', value: null },
      { call: 'mkdir', value: null },
      { call: 'pivotRoot', value: null },
      { call: 'readdir', value: ['marker', 'old'] },
      { call: 'umount2', value: null },
      { call: 'readdir', value: [] },
    ]);
    expect(hostMountPoints()).not.toContain(dir);
  });
});
