import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { type CliResult, isAlive, killStartedCli, makeTempDir, NOT_ROOT, runCli, waitFor } from './helpers.js';

// The store's lock, <root>/containers.lock, against real m-docker
// processes: commands that wait for it while another process holds it,
// and commands that race on one store. After each race the store must be
// consistent: every container directory has a record that parses, every
// name points at its container, and nothing is half removed.

const base = makeTempDir('store-lock');
let storeCount = 0;
const holders = new Set<ChildProcess>();

afterEach(() => {
  killStartedCli();
  for (const holder of holders) holder.kill('SIGKILL');
  holders.clear();
});
afterAll(() => base.remove());

const HOLDER = fileURLToPath(new URL('./fixtures/hold-store-lock.mjs', import.meta.url));
const NO_SUCH_CONTAINER = /^m-docker: no such container: "[^"]+": see 'm-docker ps -a'\n$/;

function newStore(): string {
  storeCount += 1;
  return join(base.path, `store-${storeCount}`);
}

function cli(store: string, args: string[], onSpawn?: (child: ChildProcess) => void): Promise<CliResult> {
  return runCli(['--root', store, ...args], { deadlineMs: 60_000, ...(onSpawn ? { onSpawn } : {}) });
}

async function runDetached(store: string, args: string[]): Promise<string> {
  const started = await cli(store, ['run', '-d', ...args]);
  if (started.status !== 0) throw new Error(`run -d ${args.join(' ')} failed: ${started.stderr}`);
  return started.stdout.toString().trim();
}

/** Starts a process that holds the store's lock until the test kills it; resolves once it holds it. */
async function holdStoreLock(store: string): Promise<ChildProcess> {
  mkdirSync(store, { recursive: true });
  const holder = spawn(process.execPath, [HOLDER, join(store, 'containers.lock')], { stdio: ['ignore', 'pipe', 'inherit'] });
  holders.add(holder);
  await new Promise<void>((resolve, reject) => {
    holder.stdout?.once('data', () => resolve());
    holder.once('exit', (code, signal) => reject(new Error(`the lock holder exited with ${code ?? signal} before it locked`)));
  });
  return holder;
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** Returns the pids that wait in flock(2) for the store's lock, from /proc/locks (proc(5)): `N: -> FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE 0 EOF`. */
function lockWaiters(store: string): number[] {
  const inode = statSync(join(store, 'containers.lock')).ino;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[1] === '->' && fields[2] === 'FLOCK' && fields[6]?.endsWith(`:${inode}`))
    .map((fields) => Number(fields[5]));
}

// Field 22 of /proc/self/stat, counted after the command name in parentheses (proc(5)).
function ownStartTime(): string {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string;
}

function list(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

function psLines(result: CliResult): Record<string, string>[] {
  const text = result.stdout.toString();
  return text === '' ? [] : text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, string>);
}

/**
 * Checks that the store is consistent and returns its container ids. Each
 * container directory has a record that parses and names it, and each
 * record's name links to it. No name is left without a container, and no
 * removal is left half done. A remover deletes the renamed directory after
 * it releases the lock, and a monitor or `rm` may still do so when the
 * last command of a race has exited, so that is waited for first.
 */
async function checkStore(store: string): Promise<string[]> {
  await waitFor(() => list(join(store, 'removing')).length === 0, 'the removed containers to be deleted');
  const ids = list(join(store, 'containers'));
  const names = list(join(store, 'names'));
  for (const id of ids) {
    const record = JSON.parse(readFileSync(join(store, 'containers', id, 'container.json'), 'utf8'));
    expect(record.id).toBe(id);
    expect(readlinkSync(join(store, 'names', record.name))).toBe(id);
  }
  for (const name of names) {
    expect(ids).toContain(readlinkSync(join(store, 'names', name)));
  }
  expect(names).toHaveLength(ids.length);
  return ids;
}

describe.skipIf(NOT_ROOT)('store lock waits (root only)', () => {
  it('lock file is created with mode 0600', async () => {
    const store = newStore();
    await cli(store, ['run', 'true']);

    expect(statSync(join(store, 'containers.lock')).mode & 0o777).toBe(0o600);
  });

  it('run gives the command no lock descriptor', async () => {
    const store = newStore();
    // `; :` keeps sh from exec'ing ls, so the listing is sh's own descriptors.
    const result = await cli(store, ['run', 'sh', '-c', 'ls /proc/$$/fd; :']);

    expect(result.stdout.toString()).toBe('0\n1\n2\n');
  });

  it('rm waits for the holder and proceeds after its death', async () => {
    const store = newStore();
    await cli(store, ['run', '--name', 'done', 'true']);
    const [id] = list(join(store, 'containers')) as [string];
    const holder = await holdStoreLock(store);

    const removing = cli(store, ['rm', 'done']);
    await waitFor(() => lockWaiters(store).length === 1, 'rm to wait for the lock');
    const whileHeld = existsSync(join(store, 'containers', id));
    await kill(holder);
    const removed = await removing;

    expect(whileHeld).toBe(true);
    expect(removed.status).toBe(0);
    expect(removed.stdout.toString()).toBe('done\n');
    expect(await checkStore(store)).toEqual([]);
  });

  it('monitor waits for the holder to record the exit', async () => {
    const store = newStore();
    const flag = join(base.path, `flag-${storeCount}`);
    const id = await runDetached(store, ['--name', 'waiter', 'sh', '-c', `while [ ! -e ${flag} ]; do sleep 0.02; done; exit 3`]);
    const owner = JSON.parse(readFileSync(join(store, 'containers', id, 'container.json'), 'utf8')).owner.pid as number;
    const holder = await holdStoreLock(store);

    writeFileSync(flag, '');
    await waitFor(() => lockWaiters(store).includes(owner), 'the monitor to wait for the lock');
    const listed = psLines(await cli(store, ['ps', '-a', '--format', 'json']));
    await kill(holder);
    const waited = await cli(store, ['wait', 'waiter']);

    expect(listed.map((line) => [line.Names, line.State])).toEqual([['waiter', 'running']]);
    expect(waited.stdout.toString()).toBe('3\n');
    expect(await checkStore(store)).toEqual([id]);
  });
});

describe.skipIf(NOT_ROOT)('store races (root only)', () => {
  it('parallel rm -f, run -d and ps stay consistent', async () => {
    const store = newStore();
    const running = await Promise.all(Array.from({ length: 6 }, () => runDetached(store, ['sleep', '100'])));

    const removals = running.flatMap((id) => [cli(store, ['rm', '-f', id]), cli(store, ['rm', '-f', id.slice(0, 12)])]);
    const namedRuns = Array.from({ length: 6 }, (_, index) => cli(store, ['run', '-d', '--name', `kept_${index}`, 'true']));
    const brief = Array.from({ length: 6 }, () => cli(store, ['run', '-d', '--rm', 'true']));
    const listings = Array.from({ length: 8 }, () => cli(store, ['ps', '-a', '--format', 'json']));
    const [removed, created, briefRuns, listed] = await Promise.all([
      Promise.all(removals),
      Promise.all(namedRuns),
      Promise.all(brief),
      Promise.all(listings),
    ]);

    for (const result of removed) {
      expect(result.status).toBe(0);
      if (result.stderr !== '') expect(result.stderr).toMatch(NO_SUCH_CONTAINER);
    }
    expect(created.map((result) => result.status)).toEqual(Array(6).fill(0));
    expect(briefRuns.map((result) => result.status)).toEqual(Array(6).fill(0));
    for (const result of listed) {
      expect(result.status).toBe(0);
      expect(result.stderr).toBe('');
      expect(() => psLines(result)).not.toThrow();
    }
    await waitFor(() => list(join(store, 'containers')).length === 6, 'the --rm containers to go');
    const ids = await checkStore(store);
    const final = psLines(await cli(store, ['ps', '-a', '--format', 'json']));
    expect(final.map((line) => line.Names).sort()).toEqual(Array.from({ length: 6 }, (_, index) => `kept_${index}`));
    expect(ids.map((id) => id.slice(0, 12)).sort()).toEqual(final.map((line) => line.ID).sort());
  });

  it('monitor finishing while rm -f runs', async () => {
    const store = newStore();
    // Each container exits on its own after 0.3 s. The rm -f commands start
    // spread over that time, so some find it running, some find its monitor
    // recording the exit or removing a --rm container, and some find it
    // exited or gone.
    const ids = await Promise.all(
      Array.from({ length: 8 }, (_, index) => runDetached(store, [...(index % 2 === 0 ? ['--rm'] : []), 'sh', '-c', 'sleep 0.3'])),
    );
    const removed = await Promise.all(
      ids.map(async (id, index) => {
        await new Promise((resolve) => setTimeout(resolve, index * 60));
        return cli(store, ['rm', '-f', id]);
      }),
    );

    for (const result of removed) {
      expect(result.status).toBe(0);
      if (result.stderr !== '') expect(result.stderr).toMatch(NO_SUCH_CONTAINER);
    }
    expect(await checkStore(store)).toEqual([]);
    expect(list(join(store, 'names'))).toEqual([]);
  });

  it('rm racing the stale cleanup ends well', async () => {
    const store = newStore();
    const id = await runDetached(store, ['--rm', '--name', 'lost', 'sleep', '100']);
    const record = JSON.parse(readFileSync(join(store, 'containers', id, 'container.json'), 'utf8'));
    process.kill(record.owner.pid, 'SIGKILL');
    await waitFor(() => !isAlive(record.init.pid), 'the container to die with its monitor');

    // Every command first removes the --rm container of the killed run, so
    // each rm either removes it itself or finds it gone.
    const [plain, forced, listed] = await Promise.all([
      Promise.all(Array.from({ length: 3 }, () => cli(store, ['rm', 'lost']))),
      Promise.all(Array.from({ length: 3 }, () => cli(store, ['rm', '-f', 'lost']))),
      Promise.all(Array.from({ length: 3 }, () => cli(store, ['ps', '-a', '--format', 'json']))),
    ]);

    for (const result of plain) {
      if (result.status === 0) expect(result.stdout.toString()).toBe('lost\n');
      else expect(result.stderr).toMatch(NO_SUCH_CONTAINER);
    }
    for (const result of forced) expect(result.status).toBe(0);
    for (const result of listed) expect(result.status).toBe(0);
    expect(await checkStore(store)).toEqual([]);
    expect(list(join(store, 'names'))).toEqual([]);
  });

  it('parallel named runs and cleanups keep every name', async () => {
    const store = newStore();
    const runs = Array.from({ length: 10 }, (_, index) => cli(store, ['run', '--name', `named_${index}`, 'true']));
    const listings = Array.from({ length: 10 }, () => cli(store, ['ps', '-a', '-q']));
    const [ran, listed] = await Promise.all([Promise.all(runs), Promise.all(listings)]);

    expect(ran.map((result) => result.status)).toEqual(Array(10).fill(0));
    expect(listed.map((result) => result.status)).toEqual(Array(10).fill(0));
    expect(await checkStore(store)).toHaveLength(10);
    expect(list(join(store, 'names'))).toEqual(Array.from({ length: 10 }, (_, index) => `named_${index}`).sort());
  });

  it('rm -f of a missing container succeeds', async () => {
    const store = newStore();
    await cli(store, ['run', '--name', 'present', 'true']);

    const forced = await cli(store, ['rm', '-f', 'absent', 'present']);
    const plain = await cli(store, ['rm', 'absent']);

    expect(forced.status).toBe(0);
    expect(forced.stdout.toString()).toBe('present\n');
    expect(forced.stderr).toBe('m-docker: no such container: "absent": see \'m-docker ps -a\'\n');
    expect(plain.status).toBe(1);
    expect(await checkStore(store)).toEqual([]);
  });
});

describe.skipIf(NOT_ROOT)('left-overs of killed commands (root only)', () => {
  // Each case leaves what a command killed inside a locked section would:
  // the next command removes it at once, with no age limit.
  it('directory without a record is removed', async () => {
    const store = newStore();
    const id = 'a'.repeat(64);
    mkdirSync(join(store, 'containers', id), { recursive: true });

    const listed = await cli(store, ['ps', '-a', '-q']);

    expect(listed.status).toBe(0);
    expect(existsSync(join(store, 'containers', id))).toBe(false);
  });

  it('name without a container is removed', async () => {
    const store = newStore();
    mkdirSync(join(store, 'names'), { recursive: true });
    symlinkSync('b'.repeat(64), join(store, 'names', 'orphan'));

    const listed = await cli(store, ['ps', '-a', '-q']);
    const reused = await cli(store, ['run', '--name', 'orphan', 'true']);

    expect(listed.status).toBe(0);
    expect(reused.status).toBe(0);
    expect(await checkStore(store)).toHaveLength(1);
  });

  it('removal of a dead remover is finished', async () => {
    const store = newStore();
    // This pid with another start time names no running process.
    const abandoned = join(store, 'removing', `${'c'.repeat(64)}.${process.pid}.1`);
    const inProgress = join(store, 'removing', `${'d'.repeat(64)}.${process.pid}.${ownStartTime()}`);
    mkdirSync(join(abandoned, 'upper'), { recursive: true });
    mkdirSync(inProgress, { recursive: true });

    const listed = await cli(store, ['ps', '-a', '-q']);

    expect(listed.status).toBe(0);
    expect(existsSync(abandoned)).toBe(false);
    expect(existsSync(inProgress)).toBe(true);
  });
});
