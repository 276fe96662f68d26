import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';

import { killStartedCli, makeTempDir, NOT_ROOT, runCli } from './helpers.js';

afterEach(killStartedCli);

const NASTY_ARGUMENTS = [
  'two words',
  "it's",
  '"double"',
  'line\nbreak',
  'tab\there',
  'ünïcødé 中文 🚀',
  '$(echo injected)',
  '`echo injected`',
  ';',
  '&&',
  '*',
  '?[a-z]',
  '',
  ' ',
  '--',
  '-c',
  '--hostname',
  '\\',
];

function withEnvFile(lines: string[], run: (file: string) => Promise<void>): Promise<void> {
  const dir = makeTempDir('env');
  const file = `${dir.path}/vars.env`;
  writeFileSync(file, lines.join('\n'));
  return run(file).finally(dir.remove);
}

describe.skipIf(NOT_ROOT)('run arguments (needs root)', () => {
  it('arguments arrive byte for byte', async () => {
    const outside = spawnSync('/usr/bin/printf', ['%s\\0', ...NASTY_ARGUMENTS]).stdout;
    const inside = await runCli(['run', '/usr/bin/printf', '%s\\0', ...NASTY_ARGUMENTS]);
    expect(inside.stderr).toBe('');
    expect(inside.status).toBe(0);
    expect(inside.stdout.equals(outside)).toBe(true);
  });

  it('options after COMMAND belong to COMMAND', async () => {
    const result = await runCli(['run', 'echo', '--hostname', 'x', '-e', 'A=1', '-it']);
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toBe('--hostname x -e A=1 -it\n');
  });

  it('sh -c receives its script', async () => {
    const result = await runCli(['run', 'sh', '-c', 'echo hi']);
    expect(result.stdout.toString()).toBe('hi\n');
  });

  it('double dash ends m-docker options', async () => {
    const result = await runCli(['run', '--', 'echo', 'after']);
    expect(result.stdout.toString()).toBe('after\n');
  });
});

describe.skipIf(NOT_ROOT)('run environment (needs root)', () => {
  it('environment starts from the default, not the host', async () => {
    const result = await runCli(['run', '--hostname', 'envbox', '/usr/bin/env'], {
      env: { HOST_ONLY: 'secret' },
    });
    expect(result.stdout.toString()).toBe(
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=envbox\nHOME=/root\n',
    );
  });

  it('-t adds TERM', async () => {
    const result = await runCli(['run', '-t', '--hostname', 'h', '/usr/bin/env']);
    expect(result.stdout.toString()).toContain('TERM=xterm\r\n');
  });

  it('-e sets, replaces and copies variables', async () => {
    const result = await runCli(['run', '-e', 'A=1', '-e', 'PATH=/bin', '-e', 'B=x=y', '-e', 'FROM_HOST', '-e', 'UNSET_ON_HOST', '-e', 'EMPTY=', '/bin/env'], {
      env: { FROM_HOST: 'copied' },
    });
    const lines = result.stdout.toString().trimEnd().split('\n');
    expect(lines).toEqual(['PATH=/bin', expect.stringMatching(/^HOSTNAME=/), 'A=1', 'B=x=y', 'FROM_HOST=copied', 'EMPTY=', 'HOME=/root']);
  });

  it('--env-file reads variables, skipping comments and blank lines', async () => {
    await withEnvFile(['# comment', '', '  SPACED=  kept  ', 'QUOTED="as is"', 'CRLF=yes\r', 'FROM_HOST'], async (file) => {
      const result = await runCli(['run', '--env-file', file, '-e', 'QUOTED=override', '/bin/env'], {
        env: { FROM_HOST: 'h' },
      });
      expect(result.stderr).toBe('');
      const lines = result.stdout.toString().trimEnd().split('\n').slice(2, -1);
      expect(lines).toEqual(['SPACED=  kept  ', 'QUOTED=override', 'CRLF=yes', 'FROM_HOST=h']);
    });
  });

  it('1 MiB environment from --env-file arrives intact', async () => {
    // 1024 variables of 1 KiB each: far beyond the 64 KiB socket buffer, within ARG_MAX.
    const lines = Array.from({ length: 1024 }, (_, index) => `VAR_${index}=${String(index % 10).repeat(1024 - 10)}`);
    await withEnvFile(lines, async (file) => {
      const result = await runCli(['run', '--env-file', file, '/bin/env']);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const received = result.stdout.toString().trimEnd().split('\n').slice(2, -1);
      expect(received).toEqual(lines);
    });
  });

  it('env string over 128 KiB gives 126', async () => {
    await withEnvFile([`HUGE=${'x'.repeat(129 * 1024)}`], async (file) => {
      const result = await runCli(['run', '--env-file', file, '/bin/true']);
      expect(result.status).toBe(126);
      expect(result.stderr).toMatch(/^m-docker: cannot run "\/bin\/true": argument list too long/);
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    });
  });

  it('environment over ARG_MAX gives 126', async () => {
    const argMax = Number(spawnSync('getconf', ['ARG_MAX']).stdout.toString());
    const count = Math.ceil(argMax / (100 * 1024)) + 2;
    const lines = Array.from({ length: count }, (_, index) => `BIG_${index}=${'y'.repeat(100 * 1024)}`);
    await withEnvFile(lines, async (file) => {
      const result = await runCli(['run', '--env-file', file, '/bin/true']);
      expect(result.status).toBe(126);
      expect(result.stderr).toContain('argument list too long');
    });
  });

  it.each([
    [['-e', '=value'], 'invalid environment variable "=value" (-e): the name before \'=\' is empty'],
    [['-e', 'BAD KEY=1'], 'invalid environment variable name "BAD KEY" (-e): names cannot contain whitespace'],
    [['--env-file', '/nonexistent/vars.env'], 'cannot read env file "/nonexistent/vars.env": no such file (ENOENT)'],
    [['--env-file', ''], 'cannot read env file "": no such file (ENOENT)'],
  ])('bad environment %j gives 125', async (options, message) => {
    const result = await runCli(['run', ...options, '/bin/true']);
    expect(result.status).toBe(125);
    expect(result.stderr).toContain(`m-docker: ${message}`);
  });

  it('env file with a bad line names the line', async () => {
    await withEnvFile(['GOOD=1', '=bad'], async (file) => {
      const result = await runCli(['run', '--env-file', file, '/bin/true']);
      expect(result.status).toBe(125);
      expect(result.stderr).toContain(`(${file} line 2)`);
    });
  });

  it('env file that is not UTF-8 is rejected', async () => {
    const dir = makeTempDir('latin1');
    try {
      writeFileSync(`${dir.path}/vars.env`, Buffer.from([0x41, 0x3d, 0xe9, 0x0a]));
      const result = await runCli(['run', '--env-file', `${dir.path}/vars.env`, '/bin/true']);
      expect(result.status).toBe(125);
      expect(result.stderr).toContain('is not valid UTF-8');
    } finally {
      dir.remove();
    }
  });
});
