import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';

import { childPids, isAlive, killStartedCli, makeTempDir, NOT_ROOT, runCli, waitFor } from './helpers.js';

afterEach(killStartedCli);

describe.skipIf(NOT_ROOT)('run exit status (needs root)', () => {
  it.each([0, 1, 7, 255])('command exit %i is passed on', async (code) => {
    const result = await runCli(['run', '/bin/sh', '-c', `exit ${code}`]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(code);
  });

  it('command killed by SIGKILL gives 137', async () => {
    let cliPid = 0;
    const running = runCli(['run', '/bin/sleep', '1000'], {
      onSpawn: (child) => {
        cliPid = child.pid as number;
      },
    });
    // The CLI's child is the container's PID 1: the init, then sleep once it
    // has exec'd. Kill it from the host.
    let containerPid = 0;
    await waitFor(() => {
      containerPid = childPids(cliPid)[0] ?? 0;
      return containerPid > 0 && commandName(containerPid) === 'sleep';
    }, 'the container to exec sleep');
    process.kill(containerPid, 'SIGKILL');

    const result = await running;
    expect(result.status).toBe(128 + 9);
    expect(result.stderr).toBe('');
  });

  it('missing command gives 127', async () => {
    const result = await runCli(['run', 'no-such-command-m-docker']);
    expect(result.status).toBe(127);
    expect(result.stderr).toBe(
      'm-docker: cannot run "no-such-command-m-docker": executable file "no-such-command-m-docker" not found in $PATH: check the command name and the container\'s PATH\n',
    );
  });

  it('missing path gives 127', async () => {
    const result = await runCli(['run', '/no/such/file']);
    expect(result.status).toBe(127);
    expect(result.stderr).toContain('"/no/such/file": no such file or directory');
  });

  it('command not on the container PATH gives 127', async () => {
    const result = await runCli(['run', '-e', 'PATH=/nonexistent', 'true']);
    expect(result.status).toBe(127);
  });

  it('directory gives 126', async () => {
    const result = await runCli(['run', '/tmp']);
    expect(result.status).toBe(126);
    expect(result.stderr).toBe('m-docker: cannot run "/tmp": "/tmp" is a directory: check that it is an executable file\n');
  });

  it('file without execute permission gives 126', async () => {
    const dir = makeTempDir('noexec');
    try {
      writeFileSync(`${dir.path}/script`, '#!/bin/sh\necho never\n');
      chmodSync(`${dir.path}/script`, 0o644);
      const result = await runCli(['run', `${dir.path}/script`]);
      expect(result.status).toBe(126);
      expect(result.stderr).toContain('permission denied');
      expect(result.stdout.toString()).toBe('');
    } finally {
      dir.remove();
    }
  });

  it('missing #! interpreter gives 127', async () => {
    const dir = makeTempDir('interpreter');
    try {
      writeFileSync(`${dir.path}/script`, '#!/nonexistent/interpreter\n');
      chmodSync(`${dir.path}/script`, 0o755);
      const result = await runCli(['run', `${dir.path}/script`]);
      expect(result.status).toBe(127);
      expect(result.stderr).toContain("the interpreter named on its '#!' line is missing");
    } finally {
      dir.remove();
    }
  });

  it('file that is not a program gives 126', async () => {
    const dir = makeTempDir('noexec');
    try {
      writeFileSync(`${dir.path}/data`, Buffer.from([0, 1, 2, 3, 4, 5, 6, 7]));
      chmodSync(`${dir.path}/data`, 0o755);
      const result = await runCli(['run', `${dir.path}/data`]);
      expect(result.status).toBe(126);
      expect(result.stderr).toContain('ENOEXEC');
    } finally {
      dir.remove();
    }
  });

  it('container leaves no process after the command is killed', async () => {
    let cliPid = 0;
    const running = runCli(['run', '/bin/sh', '-c', 'sleep 4712 & exec sleep 4713'], {
      onSpawn: (child) => {
        cliPid = child.pid as number;
      },
    });
    let containerPid = 0;
    await waitFor(() => {
      containerPid = childPids(cliPid)[0] ?? 0;
      return containerPid > 0 && commandName(containerPid) === 'sleep';
    }, 'the container to exec sleep');
    const background = childPids(containerPid);
    process.kill(containerPid, 'SIGKILL');
    await running;
    for (const pid of background) expect(isAlive(pid)).toBe(false);
  });
});

function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
