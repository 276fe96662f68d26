import { afterEach, describe, expect, it } from 'vitest';

import { cleanUp, isRoot, makeConfig, NEEDS_ROOT, runInit } from './helpers.js';

afterEach(cleanUp);

// `m-docker[init] debug +12.3ms <message> id=<12 hex> <fields>`: the time is
// milliseconds since the init started.
function debugLine(id: string, message: string, fields = ''): RegExp {
  return new RegExp(`^m-docker\\[init\\] debug \\+\\d+\\.\\dms ${message} id=${id.slice(0, 12)}${fields}$`);
}

const DURATION = '\\d+\\.\\d\\d';

describe.skipIf(!isRoot)(`init logs (${NEEDS_ROOT})`, () => {
  it('logs each protocol step at debug', async () => {
    const config = makeConfig({ argv: ['/bin/true'], env: ['PATH=/usr/bin:/bin', 'A=1'], logLevel: 'debug' });

    const run = await runInit(config);
    const lines = run.stderr.split('\n').filter((line) => line !== '');

    expect(run.status).toBe(0);
    expect(lines).toHaveLength(6);
    expect(lines[0]).toMatch(debugLine(config.id, 'config received', ' argc=1 envc=2'));
    expect(lines[1]).toMatch(debugLine(config.id, 'bounding set limited', ' capabilities=0xa80425fb'));
    expect(lines[2]).toMatch(debugLine(config.id, 'container set up', ` executable=/bin/true ms=${DURATION}`));
    expect(lines[3]).toMatch(debugLine(config.id, 'ready sent, waiting for start'));
    expect(lines[4]).toMatch(debugLine(config.id, 'start received'));
    expect(lines[5]).toMatch(debugLine(config.id, 'execve', ` executable=/bin/true initMs=${DURATION}`));
  });

  it('logs failure at debug', async () => {
    const config = makeConfig({ cwd: '/nonexistent', logLevel: 'debug' });

    const run = await runInit(config);
    const lines = run.stderr.split('\n').filter((line) => line !== '');

    expect(run.status).toBe(1);
    expect(lines.at(-1)).toMatch(debugLine(config.id, 'failed', ' stage=chdir code=ENOENT message=".*/nonexistent.*"'));
  });

  it('prints nothing at warn', async () => {
    const success = await runInit(makeConfig({ argv: ['/bin/true'], logLevel: 'warn' }));
    const failure = await runInit(makeConfig({ cwd: '/nonexistent', logLevel: 'warn' }));

    expect(success.stderr).toBe('');
    expect(failure.stderr).toBe('');
  });
});
