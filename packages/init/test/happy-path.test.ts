import { hostname } from 'node:os';

import { afterEach, describe, expect, it } from 'vitest';

import { cleanUp, isRoot, makeConfig, NEEDS_ROOT, runInit } from './helpers.js';

afterEach(cleanUp);

describe.skipIf(!isRoot)(`init happy path (${NEEDS_ROOT})`, () => {
  it('runs command as pid 1 with hostname', async () => {
    const hostHostname = hostname();
    const run = await runInit(makeConfig({ argv: ['/bin/sh', '-c', 'echo $$; hostname'], hostname: 'box-one' }));

    expect(run.messages).toEqual([{ type: 'ready' }]);
    expect(run.stdout.toString('utf8')).toBe('1\nbox-one\n');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.signal).toBeNull();
    expect(hostname()).toBe(hostHostname);
  });

  it('passes exit status of command', async () => {
    const run = await runInit(makeConfig({ argv: ['/bin/sh', '-c', 'exit 7'] }));

    expect(run.messages).toEqual([{ type: 'ready' }]);
    expect(run.status).toBe(7);
  });

  it('passes argv and env unchanged', async () => {
    const argv = ['/bin/sh', '-c', 'printf "%s|" "$0" "$1" "$GREETING"', 'zero', 'one two'];
    const run = await runInit(makeConfig({ argv, env: ['PATH=/usr/bin:/bin', 'GREETING=hi there'] }));

    expect(run.stdout.toString('utf8')).toBe('zero|one two|hi there|');
    expect(run.status).toBe(0);
  });
});
