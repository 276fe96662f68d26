import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { CliError } from '../src/cli-error.js';
import { buildEnvironment, DEFAULT_PATH, readEnvFile } from '../src/run/environment.js';
import { makeTempDir } from './helpers.js';

const base = { hostname: 'h', tty: false, env: [], envFiles: [], hostEnv: {} };

describe('buildEnvironment', () => {
  it('starts with PATH and HOSTNAME', () => {
    expect(buildEnvironment(base)).toEqual([`PATH=${DEFAULT_PATH}`, 'HOSTNAME=h', 'HOME=/root']);
  });

  it('adds TERM with a terminal', () => {
    expect(buildEnvironment({ ...base, tty: true })).toContain('TERM=xterm');
  });

  it.each([
    [['A=1'], ['A=1']],
    [['A=1', 'A=2'], ['A=2']],
    [['A='], ['A=']],
    [['A=b=c'], ['A=b=c']],
    [['HOME_DIR'], ['HOME_DIR=/root']],
    [['NOT_ON_HOST'], []],
    [['A=line\nbreak'], ['A=line\nbreak']],
  ])('-e %j gives %j', (env, added) => {
    const result = buildEnvironment({ ...base, env, hostEnv: { HOME_DIR: '/root' } });
    expect(result.slice(2, -1)).toEqual(added);
  });

  it('-e replaces a default in its place', () => {
    expect(buildEnvironment({ ...base, env: ['PATH=/bin'] })).toEqual(['PATH=/bin', 'HOSTNAME=h', 'HOME=/root']);
  });

  it('-e HOME replaces the default home', () => {
    expect(buildEnvironment({ ...base, env: ['HOME=/tmp'] })).toEqual([`PATH=${DEFAULT_PATH}`, 'HOSTNAME=h', 'HOME=/tmp']);
  });

  it.each([
    ['=x', /the name before '=' is empty/],
    ['', /give KEY=VALUE, or KEY to copy it/],
    ['A B=1', /names cannot contain whitespace/],
    ['A=\0', /contains a NUL byte/],
  ])('-e %j is rejected', (item, message) => {
    expect(() => buildEnvironment({ ...base, env: [item] })).toThrow(CliError);
    expect(() => buildEnvironment({ ...base, env: [item] })).toThrow(message);
  });

  it('env files come before -e', () => {
    const dir = makeTempDir('unit-env');
    try {
      writeFileSync(`${dir.path}/a.env`, 'A=file\nB=file\n');
      const result = buildEnvironment({ ...base, envFiles: [`${dir.path}/a.env`], env: ['A=flag'] });
      expect(result.slice(2, -1)).toEqual(['A=flag', 'B=file']);
    } finally {
      dir.remove();
    }
  });
});

describe('readEnvFile', () => {
  it('keeps line numbers and values as written', () => {
    const dir = makeTempDir('unit-env');
    try {
      writeFileSync(`${dir.path}/a.env`, '# c\n\n  A = x \r\nB="q"\n\t#indented comment\n');
      expect(readEnvFile(`${dir.path}/a.env`)).toEqual(['', '', 'A = x ', 'B="q"', '', '']);
    } finally {
      dir.remove();
    }
  });
});
