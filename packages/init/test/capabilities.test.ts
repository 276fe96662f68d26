import { readFileSync } from 'node:fs';

import { CAPABILITIES } from '@m-docker/syscalls';
import { afterEach, describe, expect, it } from 'vitest';

import { cleanUp, failureOf, isRoot, makeConfig, NEEDS_ROOT, runCommand, runInit } from './helpers.js';

// The capability sets of the command that the init execs, read from its
// own /proc/self/status: the bounding set comes from the config, root's
// permitted and effective sets equal it, and another user's are empty.

afterEach(cleanUp);

/** docker's default set, CAP_CHOWN to CAP_SETFCAP: 14 capabilities. */
const DOCKER_DEFAULT = '00000000a80425fb';
const NONE = '0000000000000000';

const READ_CAPABILITIES = ['/bin/sh', '-c', 'grep ^Cap /proc/self/status'];

// Parses `CapEff:\t000001ffffffffff` lines into { CapEff: '000001ffffffffff' }.
function parseCapabilities(status: string): Record<string, string> {
  const fields = status
    .trim()
    .split('\n')
    .map((line) => line.split(':\t') as [string, string]);
  return Object.fromEntries(fields);
}

// The test process's own bounding set, which the init cannot exceed.
function ownBoundingSet(): string {
  const status = parseCapabilities(
    readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('Cap'))
      .join('\n'),
  );
  return status.CapBnd as string;
}

describe.skipIf(!isRoot)(`init capabilities (${NEEDS_ROOT})`, () => {
  it('init gives root the default set', async () => {
    const caps = parseCapabilities(await runCommand(READ_CAPABILITIES));

    expect(caps).toEqual({ CapInh: NONE, CapPrm: DOCKER_DEFAULT, CapEff: DOCKER_DEFAULT, CapBnd: DOCKER_DEFAULT, CapAmb: NONE });
  });

  it('init gives root no capabilities', async () => {
    const caps = parseCapabilities(await runCommand(READ_CAPABILITIES, { capabilities: [] }));

    expect(caps).toEqual({ CapInh: NONE, CapPrm: NONE, CapEff: NONE, CapBnd: NONE, CapAmb: NONE });
  });

  it('init gives root only what it has', async () => {
    const every = Object.keys(CAPABILITIES);

    const caps = parseCapabilities(await runCommand(READ_CAPABILITIES, { capabilities: every }));

    expect(caps.CapBnd).toBe(ownBoundingSet());
    expect(caps.CapPrm).toBe(ownBoundingSet());
    expect(caps.CapEff).toBe(ownBoundingSet());
    expect(caps.CapInh).toBe(NONE);
  });

  // The bounding set still limits what a set-user-ID-root program inside
  // could gain. The switch to the user clears the other sets.
  it('init gives another user only the bounding set', async () => {
    const caps = parseCapabilities(await runCommand(READ_CAPABILITIES, { user: { spec: '1000:1000', setHome: false } }));

    expect(caps).toEqual({ CapInh: NONE, CapPrm: NONE, CapEff: NONE, CapBnd: DOCKER_DEFAULT, CapAmb: NONE });
  });

  // The container's set lacks CAP_SETUID and CAP_SETGID, which the switch
  // needs: the init keeps its effective set until right before execve.
  it('init switches user without CAP_SETUID', async () => {
    const config = { capabilities: ['CAP_KILL'], user: { spec: '1000:1000', setHome: false } };

    const output = await runCommand(['/bin/sh', '-c', 'id -u; grep ^CapBnd /proc/self/status'], config);

    expect(output).toBe('1000\nCapBnd:\t0000000000000020\n');
  });

  it('init rejects an unknown capability', async () => {
    const run = await runInit(makeConfig({ argv: ['/bin/true'], capabilities: ['CAP_CHOWN', 'CAP_NO_SUCH_THING'] }));

    expect(failureOf(run)).toEqual({
      stage: 'capabilities',
      code: '',
      errno: 0,
      message: 'unknown capability "CAP_NO_SUCH_THING": use a name from capabilities(7), such as CAP_CHOWN',
    });
    expect(run.status).toBe(1);
  });
});
