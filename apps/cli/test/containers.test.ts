import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { type CliResult, killStartedCli, makeTempDir, NOT_ROOT, runCli, waitFor } from './helpers.js';

// Every run is a container in the store: ps, stop, kill, wait, inspect and
// rm work on foreground runs while they run and after they exited. Each
// test has a store of its own.

const base = makeTempDir('containers');
let storeCount = 0;

afterEach(killStartedCli);
afterAll(() => base.remove());

function newStore(): string {
  storeCount += 1;
  return join(base.path, `store-${storeCount}`);
}

function cli(store: string, args: string[]) {
  return runCli(['--root', store, ...args]);
}

interface Running {
  /** The run's result, once it exits. */
  ended: Promise<CliResult>;
  /** The pid of its m-docker process. */
  pid: number;
}

/** Starts `run --name NAME sh -c SCRIPT`; resolves once SCRIPT has printed its first output. */
async function startRunning(store: string, name: string, script: string): Promise<Running> {
  let up = false;
  let pid = 0;
  const ended = runCli(['--root', store, 'run', '--name', name, 'sh', '-c', script], {
    deadlineMs: 60_000,
    onSpawn: (child) => {
      pid = child.pid ?? 0;
      child.stdout?.once('data', () => {
        up = true;
      });
    },
  });
  await waitFor(() => up, `container ${name} to start`);
  return { ended, pid };
}

function jsonLines(text: string): Record<string, string>[] {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, string>);
}

describe.skipIf(NOT_ROOT)('containers of foreground runs (root only)', () => {
  it('ps lists running and exited containers', async () => {
    const store = newStore();
    await cli(store, ['run', '--name', 'done', 'sh', '-c', 'exit 3']);
    const running = await startRunning(store, 'busy', 'echo up; sleep 30');

    const table = (await cli(store, ['ps'])).stdout.toString();
    const all = jsonLines((await cli(store, ['ps', '-a', '--format', 'json'])).stdout.toString());
    const quiet = (await cli(store, ['ps', '-q'])).stdout.toString();
    process.kill(running.pid, 'SIGKILL');

    expect(table).toMatch(/^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +NAMES\n[0-9a-f]{12} +\/ +sh -c "echo up; sleep 30" +.+ago +Up .+ +busy\n$/);
    expect(all.map((line) => [line.Names, line.State])).toEqual([
      ['busy', 'running'],
      ['done', 'exited'],
    ]);
    expect(all[1]?.Status).toMatch(/^Exited \(3\) .+ ago$/);
    expect(quiet).toBe(`${all[0]?.ID}\n`);
  });

  it('duplicate name is rejected', async () => {
    const store = newStore();
    await cli(store, ['run', '--name', 'twice', 'true']);
    const second = await cli(store, ['run', '--name', 'twice', 'true']);

    expect(second.status).toBe(125);
    expect(second.stderr).toMatch(
      /^m-docker: the container name "twice" is already in use by container [0-9a-f]{12}: remove that container or choose another name\n$/,
    );
    expect(readdirSync(join(store, 'containers'))).toHaveLength(1);
  });

  it('invalid name is rejected', async () => {
    const result = await cli(newStore(), ['run', '--name', 'bad/name', 'true']);

    expect(result.status).toBe(125);
    expect(result.stderr).toContain('invalid container name "bad/name"');
  });

  it('parallel runs get distinct names', async () => {
    const store = newStore();
    const runs = await Promise.all(Array.from({ length: 10 }, () => cli(store, ['run', 'true'])));
    const listed = jsonLines((await cli(store, ['ps', '-a', '--format', 'json'])).stdout.toString());

    expect(runs.map((run) => run.status)).toEqual(Array(10).fill(0));
    expect(new Set(listed.map((line) => line.Names)).size).toBe(10);
    expect(new Set(listed.map((line) => line.ID)).size).toBe(10);
  });

  it('stop sends SIGTERM and waits for the exit', async () => {
    const store = newStore();
    const running = await startRunning(store, 'trapper', 'trap "exit 5" TERM; echo up; while :; do sleep 0.05; done');

    const stopped = await cli(store, ['stop', 'trapper']);
    const ended = await running.ended;
    const waited = await cli(store, ['wait', 'trapper']);

    expect(stopped.status).toBe(0);
    expect(stopped.stdout.toString()).toBe('trapper\n');
    expect(ended.status).toBe(5);
    expect(waited.stdout.toString()).toBe('5\n');
  });

  it('stop kills after the timeout', async () => {
    const store = newStore();
    const running = await startRunning(store, 'stubborn', 'echo up; exec sleep 100');

    const stopped = await cli(store, ['stop', '-t', '1', 'stubborn']);
    const ended = await running.ended;

    expect(stopped.status).toBe(0);
    expect(ended.status).toBe(137);
    expect((await cli(store, ['ps', '-q'])).stdout.toString()).toBe('');
  });

  // b exits on SIGTERM at once; a, a sleep as PID 1, ignores it until the
  // SIGKILL. Stopped one after the other, a would come first.
  it('stop stops several containers at once', async () => {
    const store = newStore();
    await cli(store, ['run', '-d', '--name', 'a', 'sleep', '100']);
    await cli(store, ['run', '-d', '--name', 'b', 'sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.05; done']);

    const stopped = await cli(store, ['stop', '-t', '2', 'a', 'b']);

    expect(stopped.status).toBe(0);
    expect(stopped.stdout.toString()).toBe('b\na\n');
  });

  it('too long name is rejected', async () => {
    const store = newStore();
    const result = await cli(store, ['run', '--name', 'n'.repeat(256), 'true']);

    expect(result.status).toBe(125);
    expect(result.stderr).toBe('m-docker: invalid container name of 256 characters: use at most 255\n');
    expect(existsSync(join(store, 'containers')) ? readdirSync(join(store, 'containers')) : []).toEqual([]);
  });

  it('store root that is a file is rejected', async () => {
    const file = join(base.path, 'not-a-directory');
    writeFileSync(file, '');

    const listed = await cli(file, ['ps']);
    const ran = await cli(file, ['run', '--rm', 'true']);

    for (const result of [listed, ran]) {
      expect(result.status).toBe(125);
      expect(result.stderr).toBe(`m-docker: invalid store root "${file}": it is not a directory: point --root or M_DOCKER_ROOT at a directory, or at a path that does not exist yet\n`);
    }
  });

  it('stop of an exited container changes nothing', async () => {
    const store = newStore();
    await cli(store, ['run', '--name', 'over', 'sh', '-c', 'exit 2']);
    const stopped = await cli(store, ['stop', 'over']);
    const waited = await cli(store, ['wait', 'over']);

    expect(stopped.status).toBe(0);
    expect(stopped.stdout.toString()).toBe('over\n');
    expect(waited.stdout.toString()).toBe('2\n');
  });

  it('kill sends the signal', async () => {
    const store = newStore();
    const running = await startRunning(store, 'signalled', 'trap "exit 9" USR1; echo up; while :; do sleep 0.05; done');

    const killed = await cli(store, ['kill', '-s', 'USR1', 'signalled']);
    const ended = await running.ended;
    const again = await cli(store, ['kill', 'signalled']);

    expect(killed.status).toBe(0);
    expect(ended.status).toBe(9);
    expect(again.status).toBe(1);
    expect(again.stderr).toBe('m-docker: container signalled is not running\n');
  });

  it('kill rejects an unknown signal', async () => {
    const store = newStore();
    await cli(store, ['run', '--name', 'x1', 'true']);
    const result = await cli(store, ['kill', '-s', 'NOPE', 'x1']);

    expect(result.status).toBe(1);
    expect(result.stderr).toContain('invalid signal "NOPE"');
  });

  it('wait fails when the owner is killed', async () => {
    const store = newStore();
    const running = await startRunning(store, 'orphan', 'echo up; sleep 100');
    const waiting = cli(store, ['wait', 'orphan']);

    process.kill(running.pid, 'SIGKILL');
    const waited = await waiting;

    expect(waited.status).toBe(1);
    expect(waited.stderr).toBe('m-docker: container orphan ended without an exit status: the m-docker process that ran it was killed\n');
  });

  it('inspect prints the record', async () => {
    const store = newStore();
    await cli(store, ['run', '--name', 'seen', 'sh', '-c', 'exit 4']);
    const result = await cli(store, ['inspect', 'seen', 'missing']);
    const [record] = JSON.parse(result.stdout.toString());

    expect(result.status).toBe(1);
    expect(result.stderr).toBe('m-docker: no such container: "missing": see \'m-docker ps -a\'\n');
    expect(record).toMatchObject({ Name: '/seen', Path: 'sh', Args: ['-c', 'exit 4'], State: { Status: 'exited', Running: false, OOMKilled: false, ExitCode: 4 } });
  });

  it('rm refuses a running container without -f', async () => {
    const store = newStore();
    const running = await startRunning(store, 'alive', 'echo up; sleep 100');

    const refused = await cli(store, ['rm', 'alive']);
    const forced = await cli(store, ['rm', '-f', 'alive']);
    const ended = await running.ended;

    expect(refused.status).toBe(1);
    expect(forced.status).toBe(0);
    expect(ended.status).toBe(137);
    expect(readdirSync(join(store, 'containers'))).toEqual([]);
    expect(existsSync(join(store, 'names', 'alive'))).toBe(false);
  });

  it('run --rm frees the name', async () => {
    const store = newStore();
    await cli(store, ['run', '--rm', '--name', 'gone', 'true']);
    const again = await cli(store, ['run', '--rm', '--name', 'gone', 'true']);

    expect(again.status).toBe(0);
    expect(readdirSync(join(store, 'containers'))).toEqual([]);
  });

  it('ambiguous id prefix is rejected', async () => {
    const store = newStore();
    await Promise.all(Array.from({ length: 20 }, () => cli(store, ['run', 'true'])));
    const ids = readdirSync(join(store, 'containers'));
    // With 20 random ids, two share a first hex digit (pigeonhole over 16 digits).
    const digit = ids.map((id) => id[0]).find((first, index, all) => all.indexOf(first) !== index) as string;

    const result = await cli(store, ['rm', digit]);

    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`container id prefix "${digit}" is ambiguous`);
  });
});

describe.skipIf(NOT_ROOT)('detached containers (root only)', () => {
  it('run -d prints the id and returns', async () => {
    const store = newStore();
    const started = await cli(store, ['run', '-d', '--name', 'bg', 'sh', '-c', 'echo out; echo err >&2; sleep 100']);
    const id = started.stdout.toString().trim();

    expect(started.status).toBe(0);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect((await cli(store, ['ps', '-q'])).stdout.toString()).toBe(`${id.slice(0, 12)}\n`);
    await waitFor(() => existsSync(join(store, 'containers', id, 'container.log')), 'the first log line');
    await cli(store, ['rm', '-f', 'bg']);
  });

  it('logs keeps stdout and stderr apart', async () => {
    const store = newStore();
    await cli(store, ['run', '-d', '--name', 'talker', 'sh', '-c', 'echo one; echo two >&2; sleep 0.2; echo three; exit 3']);
    await cli(store, ['wait', 'talker']);

    const all = await cli(store, ['logs', 'talker']);
    const tail = await cli(store, ['logs', '--tail', '1', 'talker']);
    const stamped = await cli(store, ['logs', '-t', 'talker']);

    expect(all.stdout.toString()).toBe('one\nthree\n');
    expect(all.stderr).toBe('two\n');
    expect(tail.stdout.toString() + tail.stderr).toBe('three\n');
    expect(stamped.stdout.toString()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z one\n/);
  });

  it('logs -f follows until the exit', async () => {
    const store = newStore();
    await cli(store, ['run', '-d', '--name', 'slow', 'sh', '-c', 'echo first; sleep 1; echo second']);

    const followed = await cli(store, ['logs', '-f', 'slow']);
    const waited = await cli(store, ['wait', 'slow']);

    expect(followed.stdout.toString()).toBe('first\nsecond\n');
    expect(waited.stdout.toString()).toBe('0\n');
  });

  it('run -d --rm removes the container after its exit', async () => {
    const store = newStore();
    const started = await cli(store, ['run', '-d', '--rm', 'sh', '-c', 'sleep 0.2']);
    const id = started.stdout.toString().trim();

    await waitFor(() => !existsSync(join(store, 'containers', id)), 'the container directory to go', 10_000);
    expect((await cli(store, ['ps', '-a', '-q'])).stdout.toString()).toBe('');
  });

  it('wait after a --rm container is gone prints its exit code', async () => {
    const store = newStore();
    const started = await cli(store, ['run', '-d', '--rm', 'sh', '-c', 'exit 3']);
    const id = started.stdout.toString().trim();
    await waitFor(() => !existsSync(join(store, 'containers', id)), 'the container directory to go', 10_000);

    const waited = await cli(store, ['wait', id]);

    expect(waited.stdout.toString()).toBe('3\n');
    expect(waited.status).toBe(0);
  });

  it('run -d reports a failed start', async () => {
    const store = newStore();
    const result = await cli(store, ['run', '-d', 'nosuchcommand']);

    expect(result.status).toBe(127);
    expect(result.stderr).toContain('cannot run "nosuchcommand"');
    expect(readdirSync(join(store, 'containers'))).toEqual([]);
  });

  it('20 parallel run -d come up distinct', async () => {
    const store = newStore();
    const runs = await Promise.all(Array.from({ length: 20 }, () => cli(store, ['run', '-d', 'sleep', '100'])));
    const ids = runs.map((run) => run.stdout.toString().trim().slice(0, 12)).sort();
    const listed = jsonLines((await cli(store, ['ps', '--format', 'json'])).stdout.toString());

    expect(runs.map((run) => run.status)).toEqual(Array(20).fill(0));
    expect(new Set(ids).size).toBe(20);
    expect(listed.map((line) => line.ID).sort()).toEqual(ids);
    expect(new Set(listed.map((line) => line.Names)).size).toBe(20);
    const removed = await cli(store, ['rm', '-f', ...ids]);
    expect(removed.status).toBe(0);
  });

  it('killed monitor leaves a container rm -f removes', async () => {
    const store = newStore();
    const started = await cli(store, ['run', '-d', '--name', 'lost', 'sleep', '100']);
    const id = started.stdout.toString().trim();
    const record = JSON.parse(readFileSync(join(store, 'containers', id, 'container.json'), 'utf8'));

    process.kill(record.owner.pid, 'SIGKILL');
    await waitFor(() => !existsSync(`/proc/${record.init.pid}`) || readFileSync(`/proc/${record.init.pid}/stat`, 'utf8').includes(') Z '), 'the container to die with its monitor');
    const listed = jsonLines((await cli(store, ['ps', '-a', '--format', 'json'])).stdout.toString());
    const removed = await cli(store, ['rm', '-f', 'lost']);

    expect(listed[0]?.Status).toBe('Exited (unknown: its m-docker process was killed)');
    expect(removed.status).toBe(0);
    expect(readdirSync(join(store, 'containers'))).toEqual([]);
  });

  it('stop with --init ends every process on SIGTERM', async () => {
    const store = newStore();
    const started = await cli(store, ['run', '-d', '--init', '--name', 'pair', 'sh', '-c', 'sleep 100 & sleep 100']);
    expect(started.status).toBe(0);

    const stopped = await cli(store, ['stop', '-t', '20', 'pair']);
    const waited = await cli(store, ['wait', 'pair']);

    expect(stopped.status).toBe(0);
    // 143 is SIGTERM through tini; 137 would mean stop fell back to SIGKILL after its timeout.
    expect(waited.stdout.toString()).toBe('143\n');
  });

  it('wait and logs -f work on a --rm container', async () => {
    const store = newStore();
    await cli(store, ['run', '-d', '--rm', '--name', 'brief', 'sh', '-c', 'echo bye; sleep 0.5; exit 4']);

    const [followed, waited] = await Promise.all([cli(store, ['logs', '-f', 'brief']), cli(store, ['wait', 'brief'])]);

    expect(waited.stderr).toBe('');
    expect(waited.stdout.toString()).toBe('4\n');
    expect(followed.status).toBe(0);
    expect(followed.stdout.toString()).toBe('bye\n');
  });
});
