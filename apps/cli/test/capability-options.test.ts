import { DEFAULT_CAPABILITIES } from '@m-docker/ipc';
import { CAPABILITIES, capabilityMask } from '@m-docker/syscalls';
import { describe, expect, it } from 'vitest';

import { CliError } from '../src/cli-error.js';
import { parseCommandLine } from '../src/command-line.js';
import {
  type CapabilityOptions,
  containerCapabilities,
  execCapabilities,
  parseCapabilityOptions,
} from '../src/run/capability-options.js';

// --cap-add, --cap-drop and --privileged through the real parser, and the
// set that docker's rules give for them.

const EVERY = Object.keys(CAPABILITIES);

function parseRun(options: string[]): CapabilityOptions {
  const parsed = parseCommandLine(['run', ...options, 'true']);
  if (parsed.kind !== 'run') throw new Error(`expected a run request, got ${parsed.kind}`);
  return parsed.request.capabilities;
}

function errorOf(action: () => unknown): CliError {
  try {
    action();
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error('expected a CliError');
}

function options(overrides: Partial<CapabilityOptions>): CapabilityOptions {
  return { capAdd: [], capDrop: [], privileged: false, ...overrides };
}

describe('capability options', () => {
  it.each([
    { name: 'none', argv: [], expected: options({}) },
    {
      name: 'any case, with or without CAP_',
      argv: ['--cap-add', 'net_admin', '--cap-add', 'CAP_SYS_ADMIN', '--cap-add', 'Net_Admin'],
      expected: options({ capAdd: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'] }),
    },
    { name: 'attached values', argv: ['--cap-add=chown', '--cap-drop=cap_kill'], expected: options({ capAdd: ['CAP_CHOWN'], capDrop: ['CAP_KILL'] }) },
    { name: 'spaces around a name', argv: ['--cap-add', ' sys_time '], expected: options({ capAdd: ['CAP_SYS_TIME'] }) },
    { name: 'drop ALL', argv: ['--cap-drop', 'all', '--cap-add', 'kill'], expected: options({ capAdd: ['CAP_KILL'], capDrop: ['ALL'] }) },
    { name: 'ALL hides other names', argv: ['--cap-add', 'ALL', '--cap-add', 'kill'], expected: options({ capAdd: ['ALL'] }) },
    {
      name: 'add wins over drop',
      argv: ['--cap-add', 'kill', '--cap-drop', 'KILL', '--cap-drop', 'net_raw'],
      expected: options({ capAdd: ['CAP_KILL'], capDrop: ['CAP_NET_RAW'] }),
    },
    { name: 'add ALL wins over drop ALL', argv: ['--cap-add', 'all', '--cap-drop', 'all'], expected: options({ capAdd: ['ALL'] }) },
    { name: 'privileged', argv: ['--privileged'], expected: options({ privileged: true }) },
  ])('run parses $name', ({ argv, expected }) => {
    expect(parseRun(argv)).toEqual(expected);
  });

  it.each([
    {
      name: 'unknown --cap-add',
      argv: ['--cap-add', 'FOO'],
      message: 'invalid --cap-add "FOO": unknown capability CAP_FOO: give a name from capabilities(7), with or without CAP_, such as NET_ADMIN, or ALL',
    },
    {
      name: 'unknown --cap-drop',
      argv: ['--cap-drop', 'cap_sys_everything'],
      message:
        'invalid --cap-drop "cap_sys_everything": unknown capability CAP_SYS_EVERYTHING: give a name from capabilities(7), with or without CAP_, such as NET_ADMIN, or ALL',
    },
    {
      name: 'empty name',
      argv: ['--cap-add', ''],
      message: 'invalid --cap-add "": the value is empty: give a capability name such as NET_ADMIN, or ALL',
    },
    {
      name: 'unknown name with --privileged',
      argv: ['--privileged', '--cap-drop', 'nothing'],
      message: 'invalid --cap-drop "nothing": unknown capability CAP_NOTHING: give a name from capabilities(7), with or without CAP_, such as NET_ADMIN, or ALL',
    },
  ])('run rejects $name', ({ argv, message }) => {
    const error = errorOf(() => parseRun(argv));

    expect(error.message).toBe(message);
    expect(error.status).toBe(125);
  });

  it('parse rejects a capability m-docker lacks', () => {
    const available = capabilityMask(['CAP_KILL', 'CAP_CHOWN']);

    const error = errorOf(() => parseCapabilityOptions(['kill', 'sys_nice'], [], false, available));

    expect(error.message).toBe(
      'invalid --cap-add "sys_nice": m-docker itself lacks CAP_SYS_NICE (its bounding set does not contain it), so no container can get it: leave it out, or run m-docker with that capability',
    );
  });

  it('parse with --privileged skips that check', () => {
    const available = capabilityMask(['CAP_KILL']);

    expect(parseCapabilityOptions(['sys_nice'], [], true, available)).toEqual(options({ capAdd: ['CAP_SYS_NICE'], privileged: true }));
  });
});

describe('container capabilities', () => {
  const withoutNetRaw = DEFAULT_CAPABILITIES.filter((name) => name !== 'CAP_NET_RAW');

  it.each([
    { name: "docker's default", given: options({}), expected: [...DEFAULT_CAPABILITIES] },
    {
      name: 'default minus drop plus add',
      given: options({ capAdd: ['CAP_NET_ADMIN'], capDrop: ['CAP_NET_RAW'] }),
      expected: [...withoutNetRaw.slice(0, 9), 'CAP_NET_ADMIN', ...withoutNetRaw.slice(9)],
    },
    { name: 'drop ALL keeps the adds', given: options({ capAdd: ['CAP_KILL'], capDrop: ['ALL'] }), expected: ['CAP_KILL'] },
    { name: 'drop ALL alone', given: options({ capDrop: ['ALL'] }), expected: [] },
    { name: 'add ALL minus drop', given: options({ capAdd: ['ALL'], capDrop: ['CAP_NET_RAW'] }), expected: EVERY.filter((name) => name !== 'CAP_NET_RAW') },
    { name: 'privileged ignores the lists', given: options({ capDrop: ['ALL'], privileged: true }), expected: EVERY },
  ])('containerCapabilities: $name', ({ given, expected }) => {
    expect(containerCapabilities(given)).toEqual(expected);
  });

  it.each([
    { name: 'default container', given: options({}), privileged: false, expected: 0xa80425fbn },
    { name: 'exec --privileged', given: options({}), privileged: true, expected: undefined },
    { name: 'privileged container', given: options({ privileged: true }), privileged: false, expected: undefined },
    { name: 'container with drop ALL', given: options({ capDrop: ['ALL'] }), privileged: false, expected: 0n },
  ])('execCapabilities: $name', ({ given, privileged, expected }) => {
    expect(execCapabilities(given, privileged)).toBe(expected);
  });
});
