import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { type NamespaceName, spawnInNamespaces } from '../src/index.js';
import {
  cleanUp,
  fixturePath,
  isRoot,
  makeTempDir,
  readNamespaces,
  runFixture,
  track,
  waitForExit,
} from './helpers.js';

// The vitest forks pool runs this file in its own process, so the unshare
// calls below change only this process's main thread, and only until
// spawnInNamespaces moves it back.

const ALL_NAMESPACES: NamespaceName[] = ['uts', 'ipc', 'net', 'mnt', 'pid'];
const CLONE_FLAGS_OF_ALL = '0x6c020000';
const originalCwd = process.cwd();
const setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));

// cat runs until its stdin closes, so its namespaces stay readable in /proc
// and their inode numbers stay in use.
function startCat(namespaces: readonly NamespaceName[]): ChildProcess & { pid: number } {
  const child = track(spawnInNamespaces('/bin/cat', [], { namespaces, stdio: ['pipe', 'ignore', 'inherit'] }));
  if (child.pid === undefined) throw new Error('spawnInNamespaces returned a child without a pid');
  return child as ChildProcess & { pid: number };
}

async function stopCat(child: ChildProcess): Promise<void> {
  const exited = waitForExit(child);
  child.stdin?.end();
  await exited;
}

// The namespace a process is in, for each name of ALL_NAMESPACES. For pid
// that is /proc/PID/ns/pid, the namespace the process itself belongs to.
function namespacesOf(pid: number | 'thread-self'): Record<string, string | undefined> {
  const links = readNamespaces(pid);
  return Object.fromEntries(ALL_NAMESPACES.map((name) => [name, links[name]]));
}

function readThreadState() {
  return {
    namespaces: readNamespaces('thread-self'),
    cwd: readlinkSync('/proc/thread-self/cwd'),
    root: readlinkSync('/proc/thread-self/root'),
  };
}

describe.skipIf(!isRoot)('spawnInNamespaces (unshare needs CAP_SYS_ADMIN: run as root)', () => {
  afterEach(async () => {
    process.chdir(originalCwd);
    await cleanUp();
  });

  it('spawnInNamespaces gives the child new namespaces', async () => {
    const parent = namespacesOf('thread-self');

    const child = startCat(ALL_NAMESPACES);
    const inChild = namespacesOf(child.pid);

    for (const name of ALL_NAMESPACES) {
      expect(inChild[name], name).toMatch(/^[a-z]+:\[\d+\]$/);
      expect(inChild[name], name).not.toBe(parent[name]);
    }
    await stopCat(child);
  });

  it('spawnInNamespaces leaves the caller in its namespaces', async () => {
    const before = readNamespaces('thread-self');

    const child = startCat(ALL_NAMESPACES);
    const after = readNamespaces('thread-self');
    const plainChild = track(spawn('/bin/cat', [], { stdio: ['pipe', 'ignore', 'inherit'] }));
    const inPlainChild = namespacesOf(plainChild.pid ?? -1);

    expect(after).toEqual(before);
    expect(after.pid_for_children).toBe(before.pid);
    for (const name of ALL_NAMESPACES) {
      expect(inPlainChild[name], name).toBe(before[name]);
    }
    await stopCat(child);
    await stopCat(plainChild);
  });

  it('spawnInNamespaces restores working directory and root', async () => {
    const dir = realpathSync(makeTempDir());
    process.chdir(dir);

    const child = startCat(ALL_NAMESPACES);

    expect(readlinkSync('/proc/thread-self/cwd')).toBe(dir);
    expect(readlinkSync('/proc/thread-self/root')).toBe('/');
    expect(readlinkSync(`/proc/${child.pid}/cwd`)).toBe(dir);
    await stopCat(child);
  });

  it('spawnInNamespaces keeps relative paths working', async () => {
    const dir = realpathSync(makeTempDir());
    writeFileSync(join(dir, 'before.txt'), 'written before the call');
    process.chdir(dir);

    const child = startCat(ALL_NAMESPACES);
    writeFileSync('after.txt', 'written after the call');

    expect(readFileSync('before.txt', 'utf8')).toBe('written before the call');
    expect(readFileSync(join(dir, 'after.txt'), 'utf8')).toBe('written after the call');
    await stopCat(child);
  });

  it('spawnInNamespaces creates a cgroup namespace', async () => {
    const parent = readNamespaces('thread-self');

    const child = startCat(['cgroup']);

    expect(readNamespaces(child.pid).cgroup).not.toBe(parent.cgroup);
    expect(readNamespaces(child.pid).uts).toBe(parent.uts);
    expect(readNamespaces('thread-self')).toEqual(parent);
    await stopCat(child);
  });

  // unshare(CLONE_NEWNS) implies CLONE_FS, and nothing undoes that. From
  // then on process.chdir() moves only the main thread, while async fs calls
  // run on libuv's pool threads and keep their own working directory.
  it('spawnInNamespaces with mnt unshares CLONE_FS', async () => {
    const base = realpathSync(makeTempDir());
    for (const name of ['first', 'second']) {
      mkdirSync(join(base, name));
      writeFileSync(join(base, name, 'where.txt'), name);
    }
    process.chdir(join(base, 'first'));

    const child = startCat(['mnt']);
    process.chdir(join(base, 'second'));

    expect(readFileSync('where.txt', 'utf8')).toBe('second');
    expect(await readFile('where.txt', 'utf8').catch(() => 'not found')).not.toBe('second');
    await stopCat(child);
  });

  it('spawnInNamespaces gives the child PID 1', async () => {
    const child = track(
      spawnInNamespaces('/bin/sh', ['-c', 'echo $$'], { namespaces: ALL_NAMESPACES, stdio: ['ignore', 'pipe', 'pipe'] }),
    );

    const result = await waitForExit(child);

    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('1\n');
    expect(result.status).toBe(0);
  });

  it('spawnInNamespaces child sees only itself', async () => {
    const testMountNamespace = readlinkSync('/proc/thread-self/ns/mnt');
    const child = track(
      spawnInNamespaces(process.execPath, [fixturePath('pid-namespace-view.mjs'), testMountNamespace], {
        namespaces: ALL_NAMESPACES,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );

    const result = await waitForExit(child);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ getpid: 1, processPid: 1, pids: ['1'] });
  });

  it('spawnInNamespaces with no namespaces changes nothing', async () => {
    const before = readThreadState();

    const child = startCat([]);
    const inChild = namespacesOf(child.pid);

    expect(readThreadState()).toEqual(before);
    for (const name of ALL_NAMESPACES) {
      expect(inChild[name], name).toBe(before.namespaces[name]);
    }
    await stopCat(child);
  });

  it('spawnInNamespaces gives fresh namespaces per call', async () => {
    const parent = namespacesOf('thread-self');

    // All three children stay alive until the end, so that no namespace is
    // freed and its inode number given to the next one.
    const children = [startCat(ALL_NAMESPACES), startCat(ALL_NAMESPACES), startCat(ALL_NAMESPACES)];
    const seen = children.map((child) => namespacesOf(child.pid));

    for (const name of ALL_NAMESPACES) {
      const inodes = new Set([parent[name], ...seen.map((namespaces) => namespaces[name])]);
      expect(inodes.size, name).toBe(4);
    }
    expect(namespacesOf('thread-self')).toEqual(parent);
    for (const child of children) await stopCat(child);
  });

  it('spawnInNamespaces restores caller when spawn throws', () => {
    const dir = realpathSync(makeTempDir());
    process.chdir(dir);
    const before = readThreadState();

    const call = () => spawnInNamespaces('/bin/true', [], { namespaces: ALL_NAMESPACES, stdio: 'bogus' as 'pipe' });

    expect(call).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(readThreadState()).toEqual(before);
  });

  it('spawnInNamespaces with missing command restores caller', async () => {
    const dir = realpathSync(makeTempDir());
    process.chdir(dir);
    const before = readThreadState();

    const child = track(spawnInNamespaces('/nonexistent-m-docker-command', [], { namespaces: ALL_NAMESPACES }));
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve));

    expect(error.code).toBe('ENOENT');
    expect(child.pid).toBeUndefined();
    expect(readThreadState()).toEqual(before);
  });

  // setpriv with an empty bounding set gives root a process without
  // capabilities, so unshare fails with EPERM.
  it.skipIf(setprivPath === undefined)('spawnInNamespaces without CAP_SYS_ADMIN throws EPERM', async () => {
    const dir = realpathSync(makeTempDir());
    const setpriv = [setprivPath ?? 'setpriv', '--inh-caps=-all', '--bounding-set=-all'];

    const result = await runFixture('spawn-without-caps.mjs', [dir], setpriv);
    const report = JSON.parse(result.stdout);

    expect(result.stderr).toBe('');
    expect(report.spawned).toBe(false);
    expect(report.error.name).toBe('SyscallError');
    expect(report.error.syscall).toBe('unshare');
    expect(report.error.code).toBe('EPERM');
    expect(report.error.errno).toBe(1);
    expect(report.error.message).toMatch(new RegExp(`^unshare flags=${CLONE_FLAGS_OF_ALL}: EPERM \\(.+\\)$`));
    expect(report.before.cwd).toBe(dir);
    expect(report.after).toEqual(report.before);
  });
});
