import { readlinkSync } from 'node:fs';

import { spawnInNamespaces } from '@m-docker/syscalls';
import { afterEach, describe, expect, it } from 'vitest';

import {
  cleanUp,
  fixturePath,
  isRoot,
  makeConfig,
  NEEDS_ROOT,
  readHostMountinfo,
  runCommand,
  trackProcess,
  waitForProcess,
} from './helpers.js';

afterEach(cleanUp);

/** One line of /proc/PID/mountinfo (proc(5)): the fields the tests check. */
interface MountEntry {
  mountPoint: string;
  options: string[];
  optionalFields: string[];
  fsType: string;
}

function parseMountinfo(text: string): MountEntry[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [before = '', after = ''] = line.split(' - ');
      const fields = before.split(' ');
      return {
        mountPoint: fields[4] ?? '',
        options: (fields[5] ?? '').split(','),
        optionalFields: fields.slice(6),
        fsType: after.split(' ')[0] ?? '',
      };
    });
}

describe.skipIf(!isRoot)(`init mounts (${NEEDS_ROOT})`, () => {
  it('mounts proc nosuid,nodev,noexec on /proc', async () => {
    const mounts = parseMountinfo(await runCommand(['/bin/cat', '/proc/self/mountinfo']));
    // The new proc is mounted over the copy of the host's, so it is the last /proc line.
    const proc = mounts.filter((entry) => entry.mountPoint === '/proc').at(-1);

    expect(proc?.fsType).toBe('proc');
    expect(proc?.options).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
  });

  it('makes every mount private', async () => {
    const mounts = parseMountinfo(await runCommand(['/bin/cat', '/proc/self/mountinfo']));
    const propagated = mounts.filter((entry) =>
      entry.optionalFields.some((field) => field.startsWith('shared:') || field.startsWith('master:')),
    );

    expect(mounts.length).toBeGreaterThan(1);
    expect(propagated).toEqual([]);
  });

  it('shows container PID namespace in /proc', async () => {
    // ls runs as PID 1 and is the namespace's only process.
    expect(await runCommand(['/bin/readlink', '/proc/self'])).toBe('1\n');
    const entries = (await runCommand(['/bin/ls', '/proc'])).split('\n');
    expect(entries.filter((name) => /^\d+$/.test(name))).toEqual(['1']);
  });

  it('leaves host mountinfo unchanged', async () => {
    const before = readHostMountinfo();

    await runCommand(['/bin/cat', '/proc/self/mountinfo']);

    expect(readHostMountinfo()).toBe(before);
    expect(before.split('\n').filter((line) => line.split(' ')[4] === '/proc')).toHaveLength(1);
  });

  it('keeps proc mount out of shared parent tree', async () => {
    // fixtures/shared-root.mjs runs in a mount namespace of its own, makes
    // its tree shared and starts a container from there. Without the init's
    // MS_REC|MS_PRIVATE, the new proc mount would propagate back into it.
    const config = makeConfig({ argv: ['/bin/true'] });
    const child = trackProcess(
      spawnInNamespaces(process.execPath, [fixturePath('shared-root.mjs'), JSON.stringify(config), readlinkSync('/proc/self/ns/mnt')], {
        namespaces: ['mnt'],
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const result = await waitForProcess(child);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ status: 0, rootShared: true, procMounts: 1 });
  });
});
