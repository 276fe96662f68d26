import { afterEach, describe, expect, it } from 'vitest';

import { cleanUp, isRoot, runFixture } from './helpers.js';

/*
 * spawnOnTerminal and reapChild, each scenario in a fixture process under
 * the runtime that M_DOCKER_JS_RUNTIME names, so the tests run through
 * koffi and through bun:ffi. The children are the host's /bin/sh on ptys of
 * the host's /dev/ptmx.
 */

afterEach(cleanUp);

// biome-ignore lint/suspicious/noExplicitAny: each scenario prints its own shape.
async function runScenario(name: string): Promise<any> {
  const result = await runFixture('spawn-on-terminal.mjs', [name]);
  if (result.status !== 0) throw new Error(`spawn-on-terminal.mjs ${name} exited with ${result.status ?? result.signal}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

describe('spawnOnTerminal', () => {
  it('child leads a session with the terminal as controlling terminal', async () => {
    const result = await runScenario('session');

    expect(result.report.pid).toBe(String(result.pid));
    expect(result.report.session).toBe(String(result.pid));
    expect(result.report.tty).not.toBe('0');
    expect(result.report.name).toBe(result.path);
    expect(result.exit).toEqual({ code: 0, signal: null });
  });

  it('child gets fds 0 to 2 only', async () => {
    const result = await runScenario('session');

    expect(result.report.fds).toEqual(['0', '1', '2']);
  });

  it('child has no blocked or ignored signal', async () => {
    const result = await runScenario('signals');

    expect(result.exit).toEqual({ code: 0, signal: null });
    expect(result.report.SigIgn).toBe('0000000000000000');
    expect(result.report.SigBlk).toBe('0000000000000000');
  });

  it.skipIf(!isRoot)('child runs as the given user without capabilities (root only)', async () => {
    const result = await runScenario('user');

    expect(result.exit).toEqual({ code: 0, signal: null });
    expect(result.report.Uid.split(/\s+/)).toEqual(['1000', '1000', '1000', '1000']);
    expect(result.report.Gid.split(/\s+/)).toEqual(['1001', '1001', '1001', '1001']);
    expect(result.report.Groups.split(/\s+/)).toEqual(['1001', '2000']);
    expect(result.report.CapEff).toBe('0000000000000000');
    expect(result.report.CapPrm).toBe('0000000000000000');
  });

  it.skipIf(!isRoot)('calling thread keeps its ids after a user switch (root only)', async () => {
    const result = await runScenario('user');

    expect(result.after).toEqual(result.before);
  });

  it('missing program fails with ENOENT and leaves no child', async () => {
    const result = await runScenario('missing');

    expect(result).toEqual({ syscall: 'posix_spawn', code: 'ENOENT', path: '/nonexistent/program', childLeft: false });
  });

  it('terminal that cannot be opened fails and leaves no child', async () => {
    const result = await runScenario('missingTerminal');

    expect(result).toEqual({ syscall: 'posix_spawn', code: 'ENOENT', childLeft: false });
  });
});

describe('reapChild', () => {
  it('reap reports exit code, signal and a running child', async () => {
    const result = await runScenario('exitStates');

    expect(result.code).toEqual({ code: 7, signal: null });
    expect(result.signal).toEqual({ code: null, signal: 15 });
    expect(result.running).toBe(true);
  });

  it('closed master hangs up a waiting child, which is reaped once', async () => {
    const result = await runScenario('exitStates');

    // The hangup ends cat through SIGHUP, or through end of input.
    expect(result.hungUp.code === 0 || result.hungUp.signal === 1).toBe(true);
    expect(result.again).toBe('ECHILD');
  });
});
