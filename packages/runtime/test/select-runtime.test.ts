import { realpathSync } from 'node:fs';

import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  BUN_FLAGS,
  currentJsRuntime,
  findBun,
  parseRuntimeChoice,
  RuntimeUnavailableError,
  type SelectRuntimeOptions,
  scriptArguments,
  scriptCommand,
  selectRuntime,
} from '../src/index.js';
import { makeTempDir, moduleUrlIn, removeTempDirs, writeBunPackage, writeFakeBun } from './helpers.js';

// vitest runs these tests under Node. The same units under Bun are tested
// by processes.test.ts, in a Bun process.

afterEach(() => {
  removeTempDirs();
  vi.unstubAllEnvs();
});

const BUN_PACKAGES = ['@oven/bun-linux-x64', '@oven/bun-linux-x64-baseline', '@oven/bun-linux-aarch64'];

// selectRuntime reads the host's CPU flags and arch, so the fake layout has
// every package that findBun may pick on an x64 or arm64 host.
function writeEveryBunPackage(root: string, version: string): string[] {
  return BUN_PACKAGES.map((name) => realpathSync(writeBunPackage(root, name, { version })));
}

// Options for a search that finds nothing: no packages above a fresh temp
// folder and an empty PATH folder.
function nothingToFind(choice: SelectRuntimeOptions['choice']): SelectRuntimeOptions {
  return { choice, from: moduleUrlIn(makeTempDir()), path: makeTempDir() };
}

function expectUnavailable(run: () => unknown): RuntimeUnavailableError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RuntimeUnavailableError);
    expect((error as Error).name).toBe('RuntimeUnavailableError');
    return error as RuntimeUnavailableError;
  }
  throw new Error('expected a RuntimeUnavailableError, but nothing was thrown');
}

describe('currentJsRuntime', () => {
  it('returns node under vitest', () => {
    expect(currentJsRuntime()).toBe('node');
  });
});

describe('parseRuntimeChoice', () => {
  it.each([
    [undefined, 'auto'],
    ['', 'auto'],
    ['auto', 'auto'],
    ['node', 'node'],
    ['bun', 'bun'],
  ])('reads %j as %s', (value, expected) => {
    expect(parseRuntimeChoice('M_DOCKER_JS_RUNTIME', value)).toBe(expected);
  });

  it.each(['deno', 'Node', 'BUN', ' bun', 'node ', 'nodejs'])('rejects %j', (value) => {
    const error = expectUnavailable(() => parseRuntimeChoice('M_DOCKER_INIT_RUNTIME', value));
    expect(error.message).toBe(
      `invalid M_DOCKER_INIT_RUNTIME ${JSON.stringify(value)}: use auto, node or bun, or leave it unset`,
    );
  });
});

describe('selectRuntime under Node', () => {
  it('returns this process for node', () => {
    const selected = selectRuntime(nothingToFind('node'));

    expect(selected).toEqual({ runtime: 'node', executable: process.execPath, version: process.versions.node });
  });

  it('returns a packaged bun for bun', () => {
    const root = makeTempDir();
    const binaries = writeEveryBunPackage(root, '1.4.9');

    const selected = selectRuntime({ choice: 'bun', from: moduleUrlIn(root), path: makeTempDir() });
    expect(selected.runtime).toBe('bun');
    expect(binaries).toContain(selected.executable);
    expect(selected.version).toBe('1.4.9');
    expect(selected.fallbackReason).toBeUndefined();
  });

  it('returns a bun on PATH for bun', () => {
    const bin = makeTempDir();
    const binary = writeFakeBun(bin, 'echo 1.4.2');

    const selected = selectRuntime({ choice: 'bun', from: moduleUrlIn(makeTempDir()), path: bin });
    expect(selected).toEqual({ runtime: 'bun', executable: binary, version: '1.4.2' });
  });

  it('returns a found bun for auto', () => {
    const bin = makeTempDir();
    const binary = writeFakeBun(bin, 'echo 1.4.2');

    const selected = selectRuntime({ choice: 'auto', from: moduleUrlIn(makeTempDir()), path: bin });
    expect(selected).toEqual({ runtime: 'bun', executable: binary, version: '1.4.2' });
  });

  it('throws for bun when none is found', () => {
    const error = expectUnavailable(() => selectRuntime(nothingToFind('bun')));

    expect(error.message).toMatch(/^Bun was requested, but no usable Bun 1\.4 or later was found \(.*\): install Bun, or choose node$/);
    expect(error.message).toContain('no bun on PATH');
  });

  it('names an old bun in the error', () => {
    const bin = makeTempDir();
    const binary = writeFakeBun(bin, 'echo 1.3.9');

    const error = expectUnavailable(() => selectRuntime({ choice: 'bun', from: moduleUrlIn(makeTempDir()), path: bin }));
    expect(error.message).toContain(`${binary} is version 1.3.9, older than 1.4.0`);
  });

  it('falls back to node for auto', () => {
    const selected = selectRuntime(nothingToFind('auto'));

    expect(selected.runtime).toBe('node');
    expect(selected.executable).toBe(process.execPath);
    expect(selected.version).toBe(process.versions.node);
    expect(selected.fallbackReason).toContain('no bun on PATH');
  });
});

describe('selectRuntime knownBunUnavailable', () => {
  const known = 'no @oven/bun-linux package is installed and no bun is on PATH';

  // A layout that a search would find, so a result without Bun shows that
  // no search ran.
  function findableBun(choice: SelectRuntimeOptions['choice']): SelectRuntimeOptions {
    const root = makeTempDir();
    writeEveryBunPackage(root, '1.4.9');
    const bin = makeTempDir();
    writeFakeBun(bin, 'echo 1.4.2');
    return { choice, from: moduleUrlIn(root), path: bin };
  }

  it('finds the layout otherwise', () => {
    expect(selectRuntime(findableBun('auto')).runtime).toBe('bun');
  });

  it('skips the search for auto', () => {
    const selected = selectRuntime({ ...findableBun('auto'), knownBunUnavailable: known });

    expect(selected).toEqual({
      runtime: 'node',
      executable: process.execPath,
      version: process.versions.node,
      fallbackReason: known,
    });
  });

  it('skips the search for bun', () => {
    const error = expectUnavailable(() => selectRuntime({ ...findableBun('bun'), knownBunUnavailable: known }));

    expect(error.message).toContain(`(${known})`);
  });

  it('leaves node alone', () => {
    const selected = selectRuntime({ ...findableBun('node'), knownBunUnavailable: known });

    expect(selected).toEqual({ runtime: 'node', executable: process.execPath, version: process.versions.node });
  });
});

describe('scriptArguments', () => {
  it('BUN_FLAGS turn off config, .env and installs', () => {
    expect(BUN_FLAGS).toEqual(['--config=/dev/null', '--no-env-file', '--no-install']);
  });

  it.each([
    ['node', [], ['--', '/app/main.js']],
    ['node', ['run', '--env-file', 'x'], ['--', '/app/main.js', 'run', '--env-file', 'x']],
    ['bun', [], [...BUN_FLAGS, '/app/main.js']],
    ['bun', ['run', '--env-file', 'x'], [...BUN_FLAGS, '/app/main.js', 'run', '--env-file', 'x']],
  ] as const)('%s with %j', (runtime, args, expected) => {
    expect(scriptArguments(runtime, '/app/main.js', args)).toEqual(expected);
  });

  it('defaults to no arguments', () => {
    expect(scriptArguments('node', '/app/main.js')).toEqual(['--', '/app/main.js']);
  });
});

describe('scriptCommand', () => {
  // scriptCommand resolves the Bun packages from the module that defines it.
  const from = new URL('../src/select-runtime.ts', import.meta.url).href;

  it('starts node for node', () => {
    const command = scriptCommand('/app/main.js', ['a'], { M_DOCKER_JS_RUNTIME: 'node' });

    expect(command).toEqual({ executable: process.execPath, args: ['--', '/app/main.js', 'a'], runtime: 'node' });
  });

  it('starts bun for bun', () => {
    const bin = makeTempDir();
    const fake = writeFakeBun(bin, 'echo 1.4.2');
    const lookup = findBun({ from, path: bin });
    if (!lookup.found) throw new Error(`findBun found no Bun, not even ${fake}: ${lookup.reason}`);

    const command = scriptCommand('/app/main.js', ['a'], { M_DOCKER_JS_RUNTIME: 'bun', PATH: bin });
    expect(command).toEqual({ executable: lookup.bun.path, args: [...BUN_FLAGS, '/app/main.js', 'a'], runtime: 'bun' });
  });

  it('picks bun or node for auto', () => {
    const bin = makeTempDir();
    const lookup = findBun({ from, path: bin });

    const command = scriptCommand('/app/main.js', [], { M_DOCKER_JS_RUNTIME: '', PATH: bin });
    const expected = lookup.found
      ? { executable: lookup.bun.path, args: [...BUN_FLAGS, '/app/main.js'], runtime: 'bun' }
      : { executable: process.execPath, args: ['--', '/app/main.js'], runtime: 'node' };
    expect(command).toEqual(expected);
  });

  it('rejects an invalid value', () => {
    const error = expectUnavailable(() => scriptCommand('/app/main.js', [], { M_DOCKER_JS_RUNTIME: 'deno' }));

    expect(error.message).toContain('invalid M_DOCKER_JS_RUNTIME "deno"');
  });

  it('reads the env argument, not process.env', () => {
    vi.stubEnv('M_DOCKER_JS_RUNTIME', 'deno');

    expect(scriptCommand('/app/main.js', [], { M_DOCKER_JS_RUNTIME: 'node' }).runtime).toBe('node');
  });

  it('reads process.env by default', () => {
    vi.stubEnv('M_DOCKER_JS_RUNTIME', 'node');

    expect(scriptCommand('/app/main.js').runtime).toBe('node');
  });
});
