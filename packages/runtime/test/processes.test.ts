import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, describe, expect, it, type TestContext } from 'vitest';

import { type BunLocation, findBun, scriptArguments } from '../src/index.js';
import { makeTempDir, moduleUrlIn, removeTempDirs } from './helpers.js';

// Real Node and Bun processes. The Bun tests use the @oven/bun-linux-*
// package installed in the workspace and are skipped, with the reason,
// where none is installed for this CPU.

afterEach(removeTempDirs);

const FIXTURE = fileURLToPath(new URL('./fixtures/select-under-bun.ts', import.meta.url));

// The package whose Bun runs on every CPU of this arch. findBun may prefer
// the AVX2 build, but it tries this one too.
const RUNNABLE_PACKAGE: Record<string, string> = {
  x64: '@oven/bun-linux-x64-baseline',
  arm64: '@oven/bun-linux-aarch64',
};

function installedBunPackage(): string | undefined {
  const name = RUNNABLE_PACKAGE[process.arch];
  if (name === undefined) return undefined;
  try {
    createRequire(import.meta.url).resolve(`${name}/package.json`);
    return name;
  } catch {
    return undefined;
  }
}

const installed = installedBunPackage();

// Returns the installed Bun, or skips the test when no package is
// installed. An installed package that findBun misses fails the test.
function requireRealBun(context: TestContext): BunLocation {
  if (installed === undefined) {
    context.skip(`no Bun package is installed for ${process.arch}: install the workspace's optional dependencies`);
  }
  // An empty PATH, so that only the package can be found.
  const lookup = findBun({ from: import.meta.url, path: '' });
  if (!lookup.found) throw new Error(`${installed} is installed, but findBun did not find it: ${lookup.reason}`);
  return lookup.bun;
}

// Runs a short-lived process with its output as text. The timeout only
// stops a hung process, so the assertions that follow report it.
function run(executable: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(executable, args, { encoding: 'utf8', timeout: 60_000, ...options });
}

function expectSuccess(result: SpawnSyncReturns<string>): string {
  expect(result.error).toBeUndefined();
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return result.stdout;
}

function writeScript(dir: string, name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

describe('real Bun', () => {
  it('findBun finds the installed package', (context) => {
    const bun = requireRealBun(context);

    expect(bun.source).toBe('package');
    expect(bun.path).toMatch(/\/@oven\/bun-linux-[a-z0-9-]+\/bin\/bun$/);
    expect(expectSuccess(run(bun.path, ['--version'])).trim()).toBe(bun.version);
  });

  it('runs a script with BUN_FLAGS', (context) => {
    const bun = requireRealBun(context);
    const dir = makeTempDir();
    const script = writeScript(dir, 'versions.js', 'console.log(JSON.stringify([process.versions.bun, process.version]));\n');

    const output = expectSuccess(run(bun.path, scriptArguments('bun', script), { cwd: dir, env: { HOME: dir } }));
    const [bunVersion, nodeVersion] = JSON.parse(output) as [string, string];
    expect(bunVersion).toBe(bun.version);
    // process.version is the Node version that Bun is compatible with.
    expect(nodeVersion).toMatch(/^v\d+\.\d+\.\d+$/);
    expect(nodeVersion).not.toBe(`v${bun.version}`);
  });

  describe('working directory files', () => {
    // A working directory whose bunfig.toml preloads a script that prints a
    // marker and whose .env sets a variable, and a script elsewhere that
    // prints the variable.
    function hostileWorkingDirectory() {
      const cwd = makeTempDir();
      writeFileSync(join(cwd, 'bunfig.toml'), 'preload = ["./preload.js"]\n');
      writeFileSync(join(cwd, 'preload.js'), 'console.log("preload ran");\n');
      writeFileSync(join(cwd, '.env'), 'M_DOCKER_TEST_DOTENV=loaded\n');
      const script = writeScript(makeTempDir(), 'print.js', 'console.log("dotenv", process.env.M_DOCKER_TEST_DOTENV);\n');
      // HOME points at the folder too, so no bunfig.toml of the host's user is read.
      return { cwd, script, env: { HOME: cwd } };
    }

    it('apply without BUN_FLAGS', (context) => {
      const bun = requireRealBun(context);
      const { cwd, script, env } = hostileWorkingDirectory();

      const output = expectSuccess(run(bun.path, [script], { cwd, env }));
      expect(output).toBe('preload ran\ndotenv loaded\n');
    });

    it('are ignored with BUN_FLAGS', (context) => {
      const bun = requireRealBun(context);
      const { cwd, script, env } = hostileWorkingDirectory();

      const output = expectSuccess(run(bun.path, scriptArguments('bun', script), { cwd, env }));
      expect(output).toBe('dotenv undefined\n');
    });
  });

  it('selectRuntime reuses the Bun process', (context) => {
    const bun = requireRealBun(context);
    const emptyPath = makeTempDir();
    const nodePath = [makeTempDir(), makeTempDir()];
    mkdirSync(join(nodePath[0] as string, 'node'));
    const node = writeScript(nodePath[1] as string, 'node', '#!/bin/sh\nexit 0\n');
    chmodSync(node, 0o755);
    const input = { from: moduleUrlIn(makeTempDir()), emptyPath, nodePath: nodePath.join(':') };

    const output = expectSuccess(run(bun.path, scriptArguments('bun', FIXTURE, [JSON.stringify(input)]), { cwd: emptyPath }));
    const result = JSON.parse(output);
    const self = { runtime: 'bun', executable: result.execPath, version: bun.version };
    expect(result.current).toBe('bun');
    expect(result.execPath).toBe(bun.path);
    expect(result.bun).toEqual({ value: self });
    expect(result.auto).toEqual({ value: self });
    expect(result.nodeOnPath).toEqual({ value: { runtime: 'node', executable: node } });
    expect(result.nodeMissing).toEqual({
      error: {
        name: 'RuntimeUnavailableError',
        message: 'Node was requested, but no node was found on PATH: install Node 20 or later',
      },
    });
    expect(result.commandForNode).toEqual({ value: { executable: node, args: ['--', '/app/main.js', 'a'], runtime: 'node' } });
  });
});

describe('script arguments', () => {
  // Node 20 looks for --env-file in its whole argument list, also after the
  // script, unless `--` ends its options first.
  it('node passes --env-file to the script', () => {
    const dir = makeTempDir();
    const script = writeScript(dir, 'argv.js', 'console.log(JSON.stringify(process.argv.slice(2)));\n');
    const args = ['--env-file', join(dir, 'missing.env'), '--version'];

    const output = expectSuccess(run(process.execPath, scriptArguments('node', script, args), { cwd: dir, env: {} }));
    expect(JSON.parse(output)).toEqual(args);
  });

  it('bun passes --env-file to the script', (context) => {
    const bun = requireRealBun(context);
    const dir = makeTempDir();
    const script = writeScript(dir, 'argv.js', 'console.log(JSON.stringify(process.argv.slice(2)));\n');
    const args = ['--env-file', join(dir, 'missing.env'), '--version'];

    const output = expectSuccess(run(bun.path, scriptArguments('bun', script, args), { cwd: dir, env: { HOME: dir } }));
    expect(JSON.parse(output)).toEqual(args);
  });
});
