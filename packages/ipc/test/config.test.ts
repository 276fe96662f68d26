import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  type ContainerConfig,
  DEFAULT_CAPABILITIES,
  decodeFrames,
  decodeMessage,
  encodeFrame,
  validateConfig,
  WireFormatError,
} from '../src/index.js';
import { containerConfig, sampleConfig } from './arbitraries.js';

const SAMPLE_ROOT = {
  target: '/var/lib/m-docker/containers/a1/rootfs',
  lowerDirs: ['/var/lib/m-docker/layers/sha256/b2/diff', '/var/lib/m-docker/layers/sha256/c3/diff'],
  upperDir: '/var/lib/m-docker/containers/a1/upper',
  workDir: '/var/lib/m-docker/containers/a1/work',
  readonly: false,
  shmSize: 64 * 1024 * 1024,
};

function withoutField<T extends object>(value: T, field: keyof T): Partial<T> {
  const copy = { ...value };
  delete copy[field];
  return copy;
}

const SAMPLE_MOUNT = { type: 'bind', source: '/srv/data', destination: '/data', readonly: true, data: '' };

function catchWireFormatError(run: () => unknown): WireFormatError {
  try {
    run();
  } catch (error) {
    expect(WireFormatError.isInstance(error)).toBe(true);
    return error as WireFormatError;
  }
  throw new Error('expected a WireFormatError, but nothing was thrown');
}

describe('validateConfig', () => {
  it('validateConfig accepts a valid config', () => {
    const config = sampleConfig();

    expect(validateConfig(config)).toEqual(config);
  });

  it('validateConfig gives default capabilities', () => {
    const { capabilities: _capabilities, ...older } = sampleConfig();

    expect(validateConfig(older)).toEqual({ ...older, capabilities: [...DEFAULT_CAPABILITIES] });
  });

  // A config frame from a sender that predates the capabilities field: the
  // frame version is still 1, and the receiver fills in docker's default.
  it('decodeMessage reads config without capabilities', () => {
    const { capabilities: _capabilities, ...older } = sampleConfig();
    const [frame] = decodeFrames(encodeFrame('config', Buffer.from(JSON.stringify(older))));

    const message = decodeMessage(frame as Parameters<typeof decodeMessage>[0]);

    expect(message).toEqual({ type: 'config', config: { ...older, capabilities: [...DEFAULT_CAPABILITIES] } });
  });

  it('validateConfig returns a copy', () => {
    const config = sampleConfig();
    const validated = validateConfig(config);

    expect(validated).not.toBe(config);
    expect(validated.argv).not.toBe(config.argv);
    expect(validated.env).not.toBe(config.env);
  });

  it('validateConfig accepts arbitrary valid configs', () => {
    fc.assert(
      fc.property(containerConfig, (config) => {
        expect(validateConfig(config)).toEqual(config);
      }),
    );
  });

  it.each([
    ['empty argument', { argv: ['/bin/echo', ''] }],
    ['empty env value', { env: ['A='] }],
    ['env value with =', { env: ['A=b=c', 'OPTS==x'] }],
    ['empty env', { env: [] }],
    ['64-byte hostname', { hostname: 'h'.repeat(64) }],
    ['multibyte hostname', { hostname: 'é'.repeat(32) }],
    ['hostname with spaces', { hostname: 'my box' }],
    ['root cwd', { cwd: '/' }],
    ['cwd with spaces', { cwd: '/my dir/ünïcode' }],
    ['each log level', { logLevel: 'debug' }],
    ['no capabilities', { capabilities: [] }],
    ['docker default capabilities', { capabilities: [...DEFAULT_CAPABILITIES] }],
    ['8 MiB argument', { argv: ['x'.repeat(8 * 1024 * 1024)] }],
  ])('validateConfig accepts %s', (_name, overrides) => {
    const config = sampleConfig(overrides);

    expect(validateConfig(config)).toEqual(config);
  });

  const rejections: Array<{ name: string; value: unknown; field: string; message: string }> = [
    { name: 'null', value: null, field: 'config', message: 'config must be an object, got null' },
    { name: 'array', value: [], field: 'config', message: 'config must be an object, got array' },
    { name: 'string', value: 'config', field: 'config', message: 'config must be an object, got string' },
    {
      name: 'unknown field',
      value: { ...sampleConfig(), uid: 0 },
      field: 'uid',
      message: 'config has unknown field "uid"',
    },
    {
      name: 'prototype key',
      value: JSON.parse(`{"__proto__": {}, ${JSON.stringify(sampleConfig()).slice(1)}`),
      field: '__proto__',
      message: 'config has unknown field "__proto__"',
    },
    {
      name: 'missing field',
      value: (({ cwd: _cwd, ...rest }: ContainerConfig) => rest)(sampleConfig()),
      field: 'cwd',
      message: 'config is missing field "cwd"',
    },
    {
      name: 'numeric id',
      value: sampleConfig({ id: 42 }),
      field: 'id',
      message: 'id must be a string, got number',
    },
    {
      name: 'short id',
      value: sampleConfig({ id: 'abc' }),
      field: 'id',
      message: 'id "abc" must be 64 lowercase hex characters',
    },
    {
      name: 'uppercase id',
      value: sampleConfig({ id: 'A'.repeat(64) }),
      field: 'id',
      message: `id "${'A'.repeat(40)}"... (64 bytes) must be 64 lowercase hex characters`,
    },
    {
      name: 'long id',
      value: sampleConfig({ id: 'a'.repeat(65) }),
      field: 'id',
      message: `id "${'a'.repeat(40)}"... (65 bytes) must be 64 lowercase hex characters`,
    },
    {
      name: 'id with newline',
      value: sampleConfig({ id: `${'a'.repeat(64)}\n` }),
      field: 'id',
      message: `id "${'a'.repeat(40)}"... (65 bytes) must be 64 lowercase hex characters`,
    },
    {
      name: 'argv not array',
      value: sampleConfig({ argv: '/bin/sh -c true' }),
      field: 'argv',
      message: 'argv must be an array of strings, got string',
    },
    {
      name: 'empty argv',
      value: sampleConfig({ argv: [] }),
      field: 'argv',
      message: 'argv must not be empty (expected at least the program to run)',
    },
    {
      name: 'empty program',
      value: sampleConfig({ argv: ['', 'x'] }),
      field: 'argv[0]',
      message: 'argv[0] "" must not be empty (expected the program to run)',
    },
    {
      name: 'non-string argument',
      value: sampleConfig({ argv: ['/bin/echo', 'a', 7] }),
      field: 'argv[2]',
      message: 'argv[2] must be a string, got number',
    },
    {
      name: 'null argument',
      value: sampleConfig({ argv: ['/bin/echo', null] }),
      field: 'argv[1]',
      message: 'argv[1] must be a string, got null',
    },
    {
      name: 'NUL in argument',
      value: sampleConfig({ argv: ['/bin/echo', 'a\0b'] }),
      field: 'argv[1]',
      message: 'argv[1] "a\\u0000b" contains a NUL byte, which C strings cannot hold',
    },
    {
      name: 'NUL in program',
      value: sampleConfig({ argv: ['\0'] }),
      field: 'argv[0]',
      message: 'argv[0] "\\u0000" contains a NUL byte, which C strings cannot hold',
    },
    {
      name: 'env not array',
      value: sampleConfig({ env: { A: 'b' } }),
      field: 'env',
      message: 'env must be an array of strings, got object',
    },
    {
      name: 'non-string env entry',
      value: sampleConfig({ env: ['A=b', false] }),
      field: 'env[1]',
      message: 'env[1] must be a string, got boolean',
    },
    {
      name: 'env without =',
      value: sampleConfig({ env: ['A=b', 'FOO'] }),
      field: 'env[1]',
      message: `env[1] "FOO" has no '=' (expected KEY=VALUE)`,
    },
    {
      name: 'env with empty key',
      value: sampleConfig({ env: ['A=1', 'B=2', 'C=3', '=x'] }),
      field: 'env[3]',
      message: 'env[3] "=x" has an empty key (expected KEY=VALUE)',
    },
    {
      name: 'env of only =',
      value: sampleConfig({ env: ['='] }),
      field: 'env[0]',
      message: 'env[0] "=" has an empty key (expected KEY=VALUE)',
    },
    {
      name: 'NUL in env key',
      value: sampleConfig({ env: ['A\0B=c'] }),
      field: 'env[0]',
      message: 'env[0] "A\\u0000B=c" contains a NUL byte, which C strings cannot hold',
    },
    {
      name: 'NUL in env value',
      value: sampleConfig({ env: ['A=\0'] }),
      field: 'env[0]',
      message: 'env[0] "A=\\u0000" contains a NUL byte, which C strings cannot hold',
    },
    {
      name: 'empty hostname',
      value: sampleConfig({ hostname: '' }),
      field: 'hostname',
      message: 'hostname "" has 0 bytes (expected 1 to 64)',
    },
    {
      name: '65-byte hostname',
      value: sampleConfig({ hostname: 'h'.repeat(65) }),
      field: 'hostname',
      message: `hostname "${'h'.repeat(40)}"... (65 bytes) has 65 bytes (expected 1 to 64)`,
    },
    {
      name: 'hostname over 64 UTF-8 bytes',
      value: sampleConfig({ hostname: 'é'.repeat(33) }),
      field: 'hostname',
      message: `hostname "${'é'.repeat(33)}" has 66 bytes (expected 1 to 64)`,
    },
    {
      name: 'hostname with slash',
      value: sampleConfig({ hostname: 'a/b' }),
      field: 'hostname',
      message: `hostname "a/b" contains '/'`,
    },
    {
      name: 'NUL in hostname',
      value: sampleConfig({ hostname: 'a\0' }),
      field: 'hostname',
      message: 'hostname "a\\u0000" contains a NUL byte, which C strings cannot hold',
    },
    {
      name: 'numeric hostname',
      value: sampleConfig({ hostname: 1 }),
      field: 'hostname',
      message: 'hostname must be a string, got number',
    },
    {
      name: 'relative cwd',
      value: sampleConfig({ cwd: 'tmp' }),
      field: 'cwd',
      message: `cwd "tmp" must be an absolute path (starting with '/')`,
    },
    {
      name: 'empty cwd',
      value: sampleConfig({ cwd: '' }),
      field: 'cwd',
      message: `cwd "" must be an absolute path (starting with '/')`,
    },
    {
      name: 'NUL in cwd',
      value: sampleConfig({ cwd: '/a\0' }),
      field: 'cwd',
      message: 'cwd "/a\\u0000" contains a NUL byte, which C strings cannot hold',
    },
    {
      name: 'capabilities not an array',
      value: sampleConfig({ capabilities: 'CAP_CHOWN' }),
      field: 'capabilities',
      message: 'capabilities must be an array of strings, got string',
    },
    {
      name: 'null capabilities',
      value: sampleConfig({ capabilities: null }),
      field: 'capabilities',
      message: 'capabilities must be an array of strings, got null',
    },
    {
      name: 'non-string capability',
      value: sampleConfig({ capabilities: ['CAP_CHOWN', 21] }),
      field: 'capabilities[1]',
      message: 'capabilities[1] must be a string, got number',
    },
    {
      name: 'capability without CAP_ prefix',
      value: sampleConfig({ capabilities: ['CAP_CHOWN', 'SYS_ADMIN'] }),
      field: 'capabilities[1]',
      message: 'capabilities[1] "SYS_ADMIN" must be a capability name such as CAP_CHOWN',
    },
    {
      name: 'lowercase capability',
      value: sampleConfig({ capabilities: ['cap_chown'] }),
      field: 'capabilities[0]',
      message: 'capabilities[0] "cap_chown" must be a capability name such as CAP_CHOWN',
    },
    {
      name: 'capability listed twice',
      value: sampleConfig({ capabilities: ['CAP_KILL', 'CAP_CHOWN', 'CAP_KILL'] }),
      field: 'capabilities[2]',
      message: 'capabilities[2] "CAP_KILL" is listed twice',
    },
    {
      name: 'NUL in capability',
      value: sampleConfig({ capabilities: ['CAP_KILL\0'] }),
      field: 'capabilities[0]',
      message: 'capabilities[0] "CAP_KILL\\u0000" contains a NUL byte, which C strings cannot hold',
    },
    {
      name: 'unknown logLevel',
      value: sampleConfig({ logLevel: 'verbose' }),
      field: 'logLevel',
      message: 'logLevel "verbose" must be one of error, warn, info, debug',
    },
    {
      name: 'uppercase logLevel',
      value: sampleConfig({ logLevel: 'INFO' }),
      field: 'logLevel',
      message: 'logLevel "INFO" must be one of error, warn, info, debug',
    },
    {
      name: 'numeric logLevel',
      value: sampleConfig({ logLevel: 3 }),
      field: 'logLevel',
      message: 'logLevel 3 must be one of error, warn, info, debug',
    },
    {
      name: 'string interactive',
      value: sampleConfig({ interactive: 'yes' }),
      field: 'interactive',
      message: 'interactive "yes" must be true or false',
    },
    {
      name: 'missing terminal',
      value: sampleConfig({ terminal: undefined }),
      field: 'terminal',
      message: 'terminal undefined must be true or false',
    },
    {
      name: 'root of the wrong type',
      value: sampleConfig({ root: '/srv/root' }),
      field: 'root',
      message: 'root must be an object, got string',
    },
    {
      name: 'root without lower directories',
      value: sampleConfig({ root: { ...SAMPLE_ROOT, lowerDirs: [] } }),
      field: 'root.lowerDirs',
      message: 'root.lowerDirs must not be empty (expected at least one lower directory)',
    },
    {
      name: 'relative lower directory',
      value: sampleConfig({ root: { ...SAMPLE_ROOT, lowerDirs: ['/a', 'b'] } }),
      field: 'root.lowerDirs[1]',
      message: `root.lowerDirs[1] "b" must be an absolute path (starting with '/')`,
    },
    {
      name: 'root missing upperDir',
      value: sampleConfig({ root: withoutField(SAMPLE_ROOT, 'upperDir') }),
      field: 'root.upperDir',
      message: 'root is missing field "upperDir"',
    },
    {
      name: 'zero shmSize',
      value: sampleConfig({ root: { ...SAMPLE_ROOT, shmSize: 0 } }),
      field: 'root.shmSize',
      message: 'root.shmSize 0 must be a positive whole number of bytes',
    },
    {
      name: 'fractional shmSize',
      value: sampleConfig({ root: { ...SAMPLE_ROOT, shmSize: 1.5 } }),
      field: 'root.shmSize',
      message: 'root.shmSize 1.5 must be a positive whole number of bytes',
    },
    {
      name: 'mounts not an array',
      value: sampleConfig({ mounts: {} }),
      field: 'mounts',
      message: 'mounts must be an array, got object',
    },
    {
      name: 'unknown mount type',
      value: sampleConfig({ mounts: [{ ...SAMPLE_MOUNT, type: 'nfs' }] }),
      field: 'mounts[0].type',
      message: 'mounts[0].type "nfs" must be one of bind, tmpfs',
    },
    {
      name: 'relative bind source',
      value: sampleConfig({ mounts: [SAMPLE_MOUNT, { ...SAMPLE_MOUNT, source: 'data' }] }),
      field: 'mounts[1].source',
      message: `mounts[1].source "data" must be an absolute path (starting with '/')`,
    },
    {
      name: 'relative mount destination',
      value: sampleConfig({ mounts: [{ ...SAMPLE_MOUNT, destination: 'data' }] }),
      field: 'mounts[0].destination',
      message: `mounts[0].destination "data" must be an absolute path (starting with '/')`,
    },
    {
      name: 'unknown mount field',
      value: sampleConfig({ mounts: [{ ...SAMPLE_MOUNT, propagation: 'shared' }] }),
      field: 'mounts[0].propagation',
      message: 'mounts[0] has unknown field "propagation"',
    },
    {
      name: 'empty user spec',
      value: sampleConfig({ user: { spec: '', setHome: true } }),
      field: 'user.spec',
      message: 'user.spec must not be empty (expected USER or UID, optionally :GROUP)',
    },
    {
      name: 'user without setHome',
      value: sampleConfig({ user: { spec: 'app' } }),
      field: 'user.setHome',
      message: 'user is missing field "setHome"',
    },
  ];

  it('validateConfig keeps root, mounts and user', () => {
    const config = sampleConfig({
      root: SAMPLE_ROOT,
      mounts: [SAMPLE_MOUNT, { type: 'tmpfs', source: 'tmpfs', destination: '/run', readonly: false, data: 'size=1m' }],
      user: { spec: 'app:extra', setHome: false },
    });

    expect(validateConfig(config)).toEqual(config);
  });

  it.each(rejections)('validateConfig rejects $name', ({ value, field, message }) => {
    const error = catchWireFormatError(() => validateConfig(value));

    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(message);
    expect(error.field).toBe(field);
  });

  it('validateConfig shortens a long bad value', () => {
    const error = catchWireFormatError(() =>
      validateConfig(sampleConfig({ argv: ['/bin/echo', `${'y'.repeat(8 * 1024 * 1024)}\0`] })),
    );

    expect(error.message).toBe(
      `argv[1] "${'y'.repeat(40)}"... (8388609 bytes) contains a NUL byte, which C strings cannot hold`,
    );
  });

  it('validateConfig keeps a surrogate pair whole when shortening', () => {
    const error = catchWireFormatError(() => validateConfig(sampleConfig({ cwd: `${'😀'.repeat(50)}` })));

    expect(error.message).toBe(`cwd "${'😀'.repeat(40)}"... (200 bytes) must be an absolute path (starting with '/')`);
  });
});
