import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

import { openImageStore } from '../src/index.js';
import { processStartTime } from '../src/store-staging.js';
import { dockerArchiveMembers, imageOf, layerOf, snapshotTree, type TestImage } from './image-archives.js';
import { NOT_ROOT, TempDirs, writeTar } from './store-helpers.js';

// Tests with other processes: parallel imports, a lock holder that dies, an
// import killed halfway, and store calls in a mount namespace of their own.

const temp = new TempDirs();
const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([...children].map(exited));
  temp.removeAll();
});

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const BUN = ['bun-linux-x64', 'bun-linux-x64-baseline', 'bun-linux-aarch64']
  .map((name) => fileURLToPath(new URL(`../../../node_modules/@oven/${name}/bin/bun`, import.meta.url)))
  .find((path) => existsSync(path) && spawnSync(path, ['--version']).status === 0);
const HAS_UNSHARE = spawnSync('unshare', ['--version']).status === 0;
// The holder refreshes its lock every second, proper-lockfile's minimum.
// A waiter takes the lock over after 5 s without a refresh, so a holder
// slowed down by a busy machine keeps it, and a killed one loses it.
const HOLDER_STALE_MS = 2000;
const LOCK = { staleMs: 5000, waitMs: 20_000 };

const image: TestImage = imageOf([await layerOf({ 'etc/motd': 'lower\n' }), await layerOf({ big: 'x'.repeat(200_000) })]);

function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Resolves with the child's first stdout line; rejects when the child exits before it writes one. */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk;
      const end = output.indexOf('\n');
      if (end !== -1) resolve(output.slice(0, end));
    });
    child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before a line: ${output}${stderr}`)));
  });
}

/** Polls until `condition` holds; the deadline turns a hang into a failure and is no speed check. */
async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 20_000; !condition(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

async function holdLock(root: string): Promise<ChildProcess> {
  mkdirSync(root, { recursive: true });
  const holder = start(process.execPath, [join(FIXTURES, 'hold-lock.mjs'), root, String(HOLDER_STALE_MS)]);
  expect(await firstLine(holder)).toBe('locked');
  return holder;
}

function stagedLayerCount(root: string): number {
  const tmp = join(root, 'tmp');
  if (!existsSync(tmp)) return 0;
  return readdirSync(tmp)
    .filter((name) => name.startsWith('import-'))
    .flatMap((name) => image.diffIds.filter((diffId) => existsSync(join(tmp, name, 'layers', diffId.slice(7), 'layer.json'))))
    .length;
}

describe.skipIf(NOT_ROOT)('parallel imports', () => {
  it('of one archive share layer directories', async () => {
    const root = temp.make();
    const input = await writeTar(temp.make(), 'image.tar', dockerArchiveMembers(image));
    const store = openImageStore(root, { lock: LOCK });

    const results = await Promise.all([1, 2, 3, 4].map(() => store.importArchive(input)));

    expect(results.map((result) => result.image.id)).toEqual([image.id, image.id, image.id, image.id]);
    expect(readdirSync(join(root, 'layers', 'sha256')).sort()).toEqual(image.diffIds.map((diffId) => diffId.slice(7)).sort());
    expect(JSON.parse(readFileSync(join(root, 'repositories.json'), 'utf8'))).toEqual({ references: { 'busybox:latest': image.id } });
    expect(readdirSync(join(root, 'images'))).toEqual([`${image.id.slice(7)}.json`]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('of different images keep records whole', async () => {
    const root = temp.make();
    const store = openImageStore(root, { lock: LOCK });
    const images = await Promise.all([1, 2, 3, 4].map(async (n) => imageOf([await layerOf({ [`file-${n}`]: String(n) })], { label: String(n) })));
    const inputs = await Promise.all(images.map((each) => writeTar(temp.make(), 'image.tar', dockerArchiveMembers(each, { repoTags: ['same:tag', `own:${images.indexOf(each)}`] }))));

    await Promise.all(inputs.map((input) => store.importArchive(input)));

    expect(store.referencesSync()).toEqual(['own:0', 'own:1', 'own:2', 'own:3', 'same:tag']);
    expect(images.map((each) => each.id)).toContain((await store.resolve('same:tag')).id);
    for (const each of images) {
      for (const dir of store.layerDirs(await store.resolve(each.id))) expect(existsSync(dir)).toBe(true);
    }
  });
});

describe.skipIf(NOT_ROOT)('store lock', () => {
  it('import waits for killed holder', async () => {
    const root = temp.make();
    const holder = await holdLock(root);
    const store = openImageStore(root, { lock: LOCK });

    const importing = store.importArchive(await writeTar(temp.make(), 'image.tar', dockerArchiveMembers(image)));
    await waitFor(() => stagedLayerCount(root) === image.diffIds.length, 'the import to stage its layers');
    expect(existsSync(join(root, 'repositories.json'))).toBe(false);
    holder.kill('SIGKILL');

    expect((await importing).image.id).toBe(image.id);
    expect(store.referencesSync()).toEqual(['busybox:latest']);
  });

  it('live holder gives LOCKED', async () => {
    const root = temp.make();
    await holdLock(root);
    const store = openImageStore(root, { lock: { staleMs: LOCK.staleMs, waitMs: 300 } });

    const importing = store.importArchive(await writeTar(temp.make(), 'image.tar', dockerArchiveMembers(image)));

    await expect(importing).rejects.toMatchObject({ code: 'LOCKED', path: join(root, 'lock') });
    expect(existsSync(join(root, 'repositories.json'))).toBe(false);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });
});

describe.skipIf(NOT_ROOT)('cleanStale', () => {
  it('removes entries of dead owners', async () => {
    const root = temp.make();
    const tmp = join(root, 'tmp');
    const sleeper = start('sleep', ['1000']);
    const sleeperStart = processStartTime(sleeper.pid as number) as string;
    const entry = (owner: string): string => join(tmp, `import-${owner}-0123abcd`);
    const owners = {
      sleeper: `${sleeper.pid}-${sleeperStart}`,
      self: `${process.pid}-${processStartTime('self')}`,
      reusedPid: `${process.pid}-1`,
      unrelated: 'not-an-owner',
    };
    for (const owner of Object.values(owners)) mkdirSync(join(entry(owner), 'layers', 'abc', 'diff'), { recursive: true });
    // A whiteout device, as unpackLayer writes them, inside a staged layer.
    expect(spawnSync('mknod', [join(entry(owners.sleeper), 'layers', 'abc', 'diff', 'gone'), 'c', '0', '0']).status).toBe(0);
    const store = openImageStore(root);

    expect(await store.cleanStale()).toEqual([entry(owners.reusedPid)]);
    sleeper.kill('SIGKILL');
    await exited(sleeper);
    expect(await store.cleanStale()).toEqual([entry(owners.sleeper)]);

    expect(readdirSync(tmp).sort()).toEqual([entry(owners.unrelated), entry(owners.self)].map((path) => path.slice(tmp.length + 1)).sort());
  });

  it.skipIf(BUN === undefined)('removes killed import staging', async () => {
    const root = temp.make();
    const input = await writeTar(temp.make(), 'image.tar', dockerArchiveMembers(image));
    const holder = await holdLock(root);

    const importer = start(BUN as string, [join(FIXTURES, 'store-call.ts'), 'import', root, input]);
    await waitFor(() => stagedLayerCount(root) === image.diffIds.length, 'the import to stage its layers');
    importer.kill('SIGKILL');
    await exited(importer);
    holder.kill('SIGKILL');
    await exited(holder);

    const [staging] = readdirSync(join(root, 'tmp'));
    expect(await openImageStore(root).cleanStale()).toEqual([join(root, 'tmp', staging as string)]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    expect(existsSync(join(root, 'repositories.json'))).toBe(false);
    expect(existsSync(join(root, 'images'))).toBe(false);
    expect(existsSync(join(root, 'layers'))).toBe(false);
  });
});

describe.skipIf(NOT_ROOT || BUN === undefined || !HAS_UNSHARE)('store calls with a mount', () => {
  // The mount exists only in the mount namespace that unshare(1) creates
  // for the store call, with private propagation, and ends with it.
  function callWithMount(mountPoint: string, args: string[], mountOptions = 'size=1m'): Promise<string> {
    const script = 'mount -t tmpfs -o "$1" m-docker-test "$0" && shift && exec "$@"';
    const child = start('unshare', [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      script,
      mountPoint,
      mountOptions,
      BUN as string,
      join(FIXTURES, 'store-call.ts'),
      ...args,
    ]);
    return firstLine(child);
  }

  it('import into a full file system fails cleanly', async () => {
    const root = temp.make();
    const store = openImageStore(root);
    await store.importArchive(await writeTar(temp.make(), 'image.tar', dockerArchiveMembers(image)));
    const other = imageOf([await layerOf({ data: 'y'.repeat(300_000) })], { label: 'other' });
    const input = await writeTar(temp.make(), 'other.tar', dockerArchiveMembers(other, { repoTags: ['other:1'] }));
    const before = snapshotTree(root);

    // The staging directories live on a 64 KiB tmpfs mounted over <root>/tmp.
    const outcome = JSON.parse(await callWithMount(join(root, 'tmp'), ['import', root, input], 'size=64k'));

    expect(outcome.message).toContain('ENOSPC');
    expect(outcome).toMatchObject({ ok: false, code: 'STORE_FAILED' });
    expect(snapshotTree(root)).toEqual(before);
  });

  it('remove rejects mounted layer', async () => {
    const root = temp.make();
    const store = openImageStore(root);
    await store.importArchive(await writeTar(temp.make(), 'image.tar', dockerArchiveMembers(image)));
    const mountPoint = join(root, 'layers', 'sha256', (image.diffIds[1] as string).slice(7), 'diff', 'mnt');
    mkdirSync(mountPoint);
    const before = snapshotTree(root);

    const outcome = JSON.parse(await callWithMount(mountPoint, ['remove', root, 'busybox']));

    expect(outcome).toMatchObject({ ok: false, code: 'STORE_FAILED' });
    expect(outcome.message).toContain(`${mountPoint} is mounted inside it, and removing would delete the mounted files: unmount it first`);
    expect(snapshotTree(root)).toEqual(before);
  });

  it('cleanStale rejects mounted staging', async () => {
    const root = temp.make();
    // This process's pid with another start time: the owner is gone.
    const staging = join(root, 'tmp', `import-${process.pid}-1-0123abcd`);
    mkdirSync(join(staging, 'mnt'), { recursive: true });

    const outcome = JSON.parse(await callWithMount(join(staging, 'mnt'), ['clean', root, '']));

    expect(outcome).toMatchObject({ ok: false, code: 'STORE_FAILED' });
    expect(outcome.message).toContain('is mounted there, and removing would delete the mounted files: unmount it first');
    expect(readdirSync(join(root, 'tmp'))).toHaveLength(1);
  });
});
