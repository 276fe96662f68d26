import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { hostMounts, killStartedCli, makeTempDir, NOT_ROOT, runCli } from './helpers.js';

// The host's view before any container ran; every test must leave it unchanged.
let mountsBefore: string;
beforeAll(() => {
  mountsBefore = hostMounts();
});
afterEach(killStartedCli);
afterAll(() => {
  expect(hostMounts()).toBe(mountsBefore);
});

describe.skipIf(NOT_ROOT)('run isolation (needs root)', () => {
  it('run gives PID 1, own hostname, processes and network', async () => {
    const script = 'echo $$; hostname; ps -e -o pid=,comm=; ip -o link';
    const result = await runCli(['run', '--hostname', 'box1', '/bin/sh', '-c', script]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);

    const lines = result.stdout.toString().trimEnd().split('\n');
    expect(lines[0]).toBe('1');
    expect(lines[1]).toBe('box1');
    const processes = lines.slice(2, -1).map((line) => line.trim().split(/\s+/));
    expect(processes).toEqual([
      ['1', 'sh'],
      [expect.stringMatching(/^\d+$/), 'ps'],
    ]);
    const links = lines.slice(-1);
    expect(links).toHaveLength(1);
    expect(links[0]).toMatch(/^1: lo: /);
  });

  it('run hostname defaults to the id prefix', async () => {
    const result = await runCli(['run', 'hostname']);
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toMatch(/^[0-9a-f]{12}\n$/);
  });

  it('run leaves the host hostname unchanged', async () => {
    const before = readFileSync('/proc/sys/kernel/hostname', 'utf8');
    await runCli(['run', '--hostname', 'other', 'hostname']);
    expect(readFileSync('/proc/sys/kernel/hostname', 'utf8')).toBe(before);
  });

  it('run mount inside is invisible on host', async () => {
    const dir = makeTempDir('mount');
    try {
      writeFileSync(`${dir.path}/host-file`, 'host');
      const script = `mount -t tmpfs m-docker-test-tmpfs "$1" && echo inside > "$1/container-file" && grep -c m-docker-test-tmpfs /proc/self/mountinfo && ls "$1"`;
      // Mounting needs CAP_SYS_ADMIN, which docker's default set lacks.
      const result = await runCli(['run', '--cap-add', 'SYS_ADMIN', '/bin/sh', '-c', script, 'sh', dir.path]);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(result.stdout.toString()).toBe('1\ncontainer-file\n');

      expect(hostMounts()).not.toContain('m-docker-test-tmpfs');
      expect(readFileSync(`${dir.path}/host-file`, 'utf8')).toBe('host');
      expect(() => readFileSync(`${dir.path}/container-file`)).toThrow(/ENOENT/);
    } finally {
      dir.remove();
    }
  });

  it('run mounts its own proc on /proc', async () => {
    const result = await runCli(['run', '/bin/sh', '-c', 'ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " "']);
    expect(result.status).toBe(0);
    // sh, ls, grep, sort and tr: pids of this container only, starting at 1.
    const pids = result.stdout.toString().trim().split(' ').map(Number);
    expect(pids[0]).toBe(1);
    expect(pids.length).toBeLessThanOrEqual(6);
  });

  it('run leaves no process behind', async () => {
    const result = await runCli(['run', '/bin/sh', '-c', 'sleep 4711 & echo started']);
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toBe('started\n');
    // The kernel kills the rest of a PID namespace when its PID 1 exits, and
    // PID 1's exit completes only after they are gone.
    expect(findProcesses('sleep 4711')).toEqual([]);
  });
});

function findProcesses(commandLine: string): number[] {
  const found: number[] = [];
  const pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  for (const entry of pids.map(Number)) {
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (cmdline === commandLine) found.push(entry);
    } catch {
      // The process ended while the folder was read.
    }
  }
  return found;
}
