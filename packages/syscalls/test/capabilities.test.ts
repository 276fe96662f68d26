import { existsSync, readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { CAPABILITIES, type CapabilityName, capabilityMask, capabilityNames, isCapabilityName } from '../src/index.js';
import { type CallResult, isRoot, runCalls, runFixture } from './helpers.js';

// The calls change the capabilities of the calling thread for good, so
// each scenario runs in a fixture process (fixtures/run-calls.mjs) under
// the runtime that M_DOCKER_JS_RUNTIME selects, and reports hexadecimal
// sets. The table and mask functions run in the test process.

const setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));

const DOCKER_DEFAULT: CapabilityName[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_RAW',
  'CAP_SYS_CHROOT',
  'CAP_MKNOD',
  'CAP_AUDIT_WRITE',
  'CAP_SETFCAP',
];

const hex = (value: bigint) => `0x${value.toString(16)}`;

// The Cap* fields of this process's status, as bigints.
function ownCapabilities(): Record<string, bigint> {
  const lines = readFileSync('/proc/thread-self/status', 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('Cap'));
  return Object.fromEntries(lines.map((line) => line.split(':\t')).map(([name, value]) => [name, BigInt(`0x${value}`)]));
}

function resultValue(result: CallResult | undefined): unknown {
  if (result === undefined) throw new Error('the fixture printed fewer results than calls');
  if (result.error !== undefined) throw new Error(`${result.call} failed: ${result.error.message}`);
  return result.value;
}

describe('capability table', () => {
  it('capabilityMask of docker default is 0xa80425fb', () => {
    expect(capabilityMask(DOCKER_DEFAULT)).toBe(0xa80425fbn);
  });

  it.each([
    { name: 'no capability', mask: 0n, names: [] },
    { name: 'the lowest', mask: 1n, names: ['CAP_CHOWN'] },
    { name: 'the highest', mask: 1n << 40n, names: ['CAP_CHECKPOINT_RESTORE'] },
    { name: 'both words', mask: (1n << 21n) | (1n << 38n), names: ['CAP_SYS_ADMIN', 'CAP_PERFMON'] },
    { name: 'a bit without a name', mask: (1n << 5n) | (1n << 50n), names: ['CAP_KILL'] },
  ])('capabilityNames of $name', ({ mask, names }) => {
    expect(capabilityNames(mask)).toEqual(names);
  });

  it('capabilityNames orders by number', () => {
    expect(capabilityNames(capabilityMask([...DOCKER_DEFAULT].reverse()))).toEqual(DOCKER_DEFAULT);
  });

  it('CAPABILITIES numbers are 0 to 40', () => {
    expect(Object.values(CAPABILITIES)).toEqual([...Array(41).keys()]);
  });

  // A newer kernel with more capabilities makes this fail: the table then
  // needs the new names.
  it('CAPABILITIES covers the running kernel', () => {
    const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));

    expect(Math.max(...Object.values(CAPABILITIES))).toBeGreaterThanOrEqual(last);
  });

  it.each([
    ['CAP_SYS_ADMIN', true],
    ['SYS_ADMIN', false],
    ['cap_sys_admin', false],
    ['toString', false],
    ['__proto__', false],
  ])('isCapabilityName %s', (name, expected) => {
    expect(isCapabilityName(name)).toBe(expected);
  });
});

describe('capability calls', () => {
  it('getCapabilities matches /proc status', async () => {
    const [sets, thread] = await runCalls([], [['getCapabilities'], ['threadCapabilities']]);

    const status = resultValue(thread) as Record<string, string>;
    expect(resultValue(sets)).toEqual({ effective: status.CapEff, permitted: status.CapPrm, inheritable: status.CapInh });
  });

  it('readBoundingSet matches CapBnd', async () => {
    const [bounding] = await runCalls([], [['readBoundingSet']]);

    expect(resultValue(bounding)).toBe(hex(ownCapabilities().CapBnd as bigint));
  });
});

describe.skipIf(!isRoot)('capability calls as root (PR_CAPBSET_DROP needs CAP_SETPCAP)', () => {
  const keep = capabilityMask(DOCKER_DEFAULT);

  it('limitBoundingSet keeps the effective set', async () => {
    const own = ownCapabilities();

    const [limited, thread, child] = await runCalls([], [['limitBoundingSet', hex(keep)], ['threadCapabilities'], ['childCapabilities']]);

    expect(resultValue(limited)).toBeNull();
    expect(resultValue(thread)).toMatchObject({ CapBnd: hex(keep & (own.CapBnd as bigint)), CapEff: hex(own.CapEff as bigint) });
    // Root's execve gives the new program inheritable | bounding.
    expect(resultValue(child)).toEqual({ CapInh: '0x0', CapPrm: hex(keep), CapEff: hex(keep), CapBnd: hex(keep), CapAmb: '0x0' });
  });

  it('limitBoundingSet never adds a capability', async () => {
    const small = capabilityMask(['CAP_KILL', 'CAP_SETPCAP']);

    const [first, second, thread] = await runCalls([], [['limitBoundingSet', hex(small)], ['limitBoundingSet', hex(keep)], ['threadCapabilities']]);

    expect(resultValue(first)).toBeNull();
    expect(resultValue(second)).toBeNull();
    expect(resultValue(thread)).toMatchObject({ CapBnd: hex(small) });
  });

  it('limitCapabilities keeps the parent-death signal', async () => {
    const own = ownCapabilities();

    const [, limited, thread, signal] = await runCalls(
      [],
      [['setParentDeathSignal', 9], ['limitCapabilities', hex(keep)], ['threadCapabilities'], ['parentDeathSignal']],
    );

    expect(resultValue(limited)).toBeNull();
    expect(resultValue(thread)).toEqual({
      CapInh: '0x0',
      CapPrm: hex(keep),
      CapEff: hex(keep),
      CapBnd: hex(own.CapBnd as bigint),
      CapAmb: '0x0',
    });
    expect(resultValue(signal)).toBe(9);
  });

  it('limitCapabilities never raises a set', async () => {
    const [, , thread] = await runCalls([], [['limitCapabilities', hex(capabilityMask(['CAP_KILL']))], ['limitCapabilities', hex(keep)], ['threadCapabilities']]);

    expect(resultValue(thread)).toMatchObject({ CapPrm: '0x20', CapEff: '0x20' });
  });

  it('limitBoundingSet without CAP_SETPCAP throws EPERM', async () => {
    const own = ownCapabilities();
    const withoutSetpcap = hex((own.CapEff as bigint) & ~capabilityMask(['CAP_SETPCAP']));
    const sets = { effective: withoutSetpcap, permitted: hex(own.CapPrm as bigint), inheritable: '0x0' };

    const [lowered, limited] = await runCalls([], [['setCapabilities', sets], ['limitBoundingSet', hex(keep)]]);

    expect(resultValue(lowered)).toBeNull();
    expect(limited?.error).toEqual({
      name: 'SyscallError',
      isSyscallError: true,
      syscall: 'prctl',
      code: 'EPERM',
      errno: 1,
      message: 'prctl PR_CAPBSET_DROP CAP_DAC_READ_SEARCH: EPERM (operation not permitted)',
    });
  });

  it('setCapabilities raising permitted throws EPERM', async () => {
    const sets = { effective: '0x1', permitted: '0x1', inheritable: '0x0' };
    const raised = { effective: '0x3', permitted: '0x3', inheritable: '0x0' };

    const [, failed, thread] = await runCalls([], [['setCapabilities', sets], ['setCapabilities', raised], ['threadCapabilities']]);

    expect(failed?.error).toMatchObject({
      syscall: 'capset',
      code: 'EPERM',
      message: 'capset effective=0x3 permitted=0x3 inheritable=0x0: EPERM (operation not permitted)',
    });
    expect(resultValue(thread)).toMatchObject({ CapPrm: '0x1', CapEff: '0x1' });
  });

  // setpriv starts the fixture with CAP_NET_RAW in its inheritable and
  // ambient sets.
  it.skipIf(setprivPath === undefined)('clearAmbientCapabilities empties CapAmb (needs setpriv)', async () => {
    const setpriv = [setprivPath ?? 'setpriv', '--inh-caps=+net_raw', '--ambient-caps=+net_raw'];
    const calls = [['threadCapabilities'], ['clearAmbientCapabilities'], ['threadCapabilities']];

    const result = await runFixture('run-calls.mjs', [JSON.stringify({ namespaces: [], calls })], setpriv);
    const [before, cleared, after] = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as CallResult);

    expect(result.stderr).toBe('');
    expect(resultValue(before)).toMatchObject({ CapAmb: '0x2000', CapInh: '0x2000' });
    expect(resultValue(cleared)).toBeNull();
    expect(resultValue(after)).toMatchObject({ CapAmb: '0x0', CapInh: '0x2000' });
  });
});
