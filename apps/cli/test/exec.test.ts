import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { buildTestImages, type TestImages } from '../../../scripts/test-images/build-test-images.mjs';
import { HAS_BUSYBOX, killStartedCli, makeTempDir, NOT_ROOT, runCli, waitFor } from './helpers.js';

// `m-docker exec` into a detached container made from the busybox test
// image: namespaces, root, environment, user, cgroup, statuses, and that a
// container that is not running never gets a command on the host.

let base: { path: string; remove: () => void };
let images: TestImages;
let store: string;

beforeAll(async () => {
  if (NOT_ROOT || !HAS_BUSYBOX) return;
  base = makeTempDir('exec');
  images = await buildTestImages(join(base.path, 'images'));
  store = join(base.path, 'store');
  const imported = await runCli(['--root', store, 'image', 'import', images.dockerArchive]);
  if (imported.status !== 0) throw new Error(`import failed: ${imported.stderr}`);
}, 60_000);

afterEach(killStartedCli);
afterAll(async () => {
  if (store !== undefined) await runCli(['--root', store, 'rm', '-f', 'target']);
  base?.remove();
});

function cli(args: string[]) {
  return runCli(['--root', store, ...args]);
}

async function startTarget(name: string): Promise<void> {
  const started = await cli(['run', '-d', '--name', name, '--hostname', 'target-host', '-e', 'FROM_RUN=yes', '-w', '/tmp', '--image', 'busybox', 'sleep', '100']);
  if (started.status !== 0) throw new Error(`run -d failed: ${started.stderr}`);
}

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('exec (root only; needs /bin/busybox)', () => {
  beforeAll(() => startTarget('target'));

  it('exec joins the container', async () => {
    const result = await cli(['exec', 'target', 'sh', '-c', 'hostname; pwd; echo $FROM_RUN; cat /etc/os-release | head -1; echo $$']);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const [hostname, cwd, variable, osRelease, pid] = result.stdout.toString().trim().split('\n');
    expect(hostname).toBe('target-host');
    expect(cwd).toBe('/tmp');
    expect(variable).toBe('yes');
    expect(osRelease).toBe('NAME="m-docker test busybox"');
    expect(Number(pid)).toBeGreaterThan(1);
    expect(Number(pid)).toBeLessThan(100);
  });

  it('exec takes -e, -w and -u', async () => {
    const result = await runCli(
      ['--root', store, 'exec', '-e', 'EXTRA=1', '-e', 'COPIED', '-w', '/home/app', '-u', 'app', 'target', 'sh', '-c', 'echo $EXTRA $COPIED $HOME $(pwd) $(id -u):$(id -g)'],
      { env: { COPIED: 'from-caller' } },
    );

    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toBe('1 from-caller /home/app /home/app 1000:1000\n');
  });

  it('exec -u with an empty value fails', async () => {
    const result = await cli(['exec', '-u', '', 'target', 'true']);

    expect(result.status).toBe(125);
    expect(result.stderr).toBe('m-docker: invalid -u "": the value is empty: give a user name or uid, or leave -u out for PID 1\'s user\n');
  });

  it('exec passes the exit status on', async () => {
    const result = await cli(['exec', 'target', 'sh', '-c', 'exit 7']);

    expect(result.status).toBe(7);
  });

  it('exec of a missing command gives 127', async () => {
    const result = await cli(['exec', 'target', 'nosuchcommand']);
    const still = await cli(['ps', '--format', 'json']);

    expect(result.status).toBe(127);
    expect(result.stderr).toBe('m-docker: cannot run "nosuchcommand": executable file "nosuchcommand" not found in $PATH: check the command name and the container\'s PATH\n');
    expect(still.stdout.toString()).toContain('"Names":"target"');
  });

  it('exec gives the command only fds 0 to 2', async () => {
    // `; :` keeps sh from exec'ing ls, so the listing is sh's own descriptors.
    const result = await cli(['exec', 'target', 'sh', '-c', 'ls /proc/$$/fd; :']);

    expect(result.stdout.toString()).toBe('0\n1\n2\n');
  });

  it('exec puts the command into the container cgroup', async () => {
    // cat reads its cgroups right after its execve.
    const result = await cli(['exec', 'target', 'cat', '/proc/self/cgroup']);
    const [containerId] = (await cli(['ps', '-q'])).stdout.toString().split('\n');

    expect(result.stdout.toString()).toContain(`/${containerId}`);
  });

  it('exec into a stopped container runs nothing', async () => {
    await startTarget('stopped');
    await cli(['stop', '-t', '0', 'stopped']);
    const marker = join(base.path, 'exec-ran-on-host');

    const result = await cli(['exec', 'stopped', 'touch', marker]);

    expect(result.status).toBe(125);
    expect(result.stderr).toBe("m-docker: container stopped is not running: exec needs a running container (see 'm-docker ps')\n");
    expect(existsSync(marker)).toBe(false);
    await cli(['rm', 'stopped']);
  });

  it('exec of a folder gives 126', async () => {
    const result = await cli(['exec', 'target', '/etc']);

    expect(result.status).toBe(126);
    expect(result.stderr).toBe('m-docker: cannot run "/etc": "/etc" is a directory: check that it is an executable file\n');
  });

  it('exec -w of a missing folder fails', async () => {
    const result = await cli(['exec', '-w', '/nonexistent', 'target', 'true']);

    expect(result.status).toBe(125);
    expect(result.stderr).toContain('cannot use working directory "/nonexistent"');
    expect(result.stderr).toContain('give -w an existing folder');
  });

  // The CLI's thread counts in the container's pids cgroup from the fork
  // until it has moved back, a moment in which the command may already
  // fork. With one slot to spare for that thread, the command's first
  // fork always succeeds.
  it('exec command forks at once under a small pids limit', async () => {
    const started = await cli(['run', '-d', '--name', 'small', '--pids-limit', '4', '--image', 'busybox', 'sleep', '100']);
    expect(started.status).toBe(0);

    const results = [];
    for (let round = 0; round < 5; round++) results.push(await cli(['exec', 'small', 'sh', '-c', 'sleep 0 & wait; echo forked']));
    await cli(['rm', '-f', 'small']);

    for (const result of results) {
      expect(result.stderr).toBe('');
      expect(result.stdout.toString()).toBe('forked\n');
    }
  });

  it('exec of an unknown container fails', async () => {
    const result = await cli(['exec', 'nosuchcontainer', 'true']);

    expect(result.status).toBe(125);
    expect(result.stderr).toContain('no such container: "nosuchcontainer"');
  });

  // The command starts in the container's cgroups: a container at its pids
  // limit refuses the fork itself, as it would inside the container.
  it('exec into a container at its pids limit fails and leaves it running', async () => {
    // The marker file comes from a redirection, which needs no fork.
    const fill = 'i=1; while [ $i -lt 20 ]; do sleep 1000 & i=$((i+1)); done; : > /tmp/full; wait';
    const started = await cli(['run', '-d', '--name', 'full', '--pids-limit', '20', '--image', 'busybox', 'sh', '-c', fill]);
    expect(started.status).toBe(0);
    const pid = JSON.parse((await cli(['inspect', 'full'])).stdout.toString())[0].State.Pid as number;
    await waitFor(() => existsSync(`/proc/${pid}/root/tmp/full`), 'the container to reach its pids limit');

    const plain = await cli(['exec', 'full', 'true']);
    const withTerminal = await cli(['exec', '-t', 'full', 'true']);
    const listed = await cli(['ps', '--format', 'json']);
    await cli(['rm', '-f', 'full']);

    for (const result of [plain, withTerminal]) {
      expect(result.status).toBe(125);
      expect(result.stderr.toString()).toContain('the container may be at its pids limit (--pids-limit), and exec needs two free slots');
    }
    expect(listed.stdout.toString()).toContain('"Names":"full"');
  });

  // The class of runc's CVE-2019-5736: a process in the container opens the
  // runtime's binary through /proc/PID/exe of a process that joins the
  // container, and overwrites it. Writing must never succeed.
  it('exe of joining processes is never writable', async () => {
    const probe = 'while :; do for exe in /proc/[0-9]*/exe; do if (: >> "$exe") 2>/dev/null; then echo "OPENED $exe $(readlink $exe)"; fi; done; done';
    const started = await cli(['run', '-d', '--name', 'prober', '--image', 'busybox', 'sh', '-c', probe]);
    expect(started.status).toBe(0);

    const results = [];
    for (let index = 0; index < 20; index++) results.push(await cli(['exec', 'prober', '/bin/true']));
    const logs = await cli(['logs', 'prober']);
    await cli(['rm', '-f', 'prober']);

    expect(results.map((result) => result.status)).toEqual(Array(20).fill(0));
    expect(logs.stdout.toString()).toBe('');
  });
});
