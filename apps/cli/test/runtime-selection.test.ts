import { chmodSync, cpSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBun } from '@m-docker/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { killStartedCli, makeTempDir, NOT_ROOT, runCli } from './helpers.js';

// These tests copy the built CLI (bin/ and dist/) into a temporary folder
// whose node_modules has koffi and the init but no Bun package. They run it
// with a PATH that they control, so Bun is unavailable unless a test puts
// one on that PATH.

const cliFolder = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const realBun = findBun({ from: import.meta.url });

let copy: { path: string; remove: () => void };
let launcher: string;
let pathFolder: string;

beforeEach(() => {
  copy = makeTempDir('runtime');
  const cli = join(copy.path, 'cli');
  cpSync(join(cliFolder, 'bin'), join(cli, 'bin'), { recursive: true });
  cpSync(join(cliFolder, 'dist'), join(cli, 'dist'), { recursive: true });
  mkdirSync(join(cli, 'node_modules', '@m-docker'), { recursive: true });
  symlinkSync(dirname(require.resolve('koffi')), join(cli, 'node_modules', 'koffi'));
  symlinkSync(dirname(require.resolve('@m-docker/init/package.json')), join(cli, 'node_modules', '@m-docker', 'init'));
  launcher = join(cli, 'bin', 'm-docker');

  // node and the programs the launcher and tests need, but no bun.
  pathFolder = join(copy.path, 'path');
  mkdirSync(pathFolder);
  symlinkSync(process.execPath, join(pathFolder, 'node'));
});

afterEach(() => {
  killStartedCli();
  copy.remove();
});

function runCopy(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(args, {
    command: launcher,
    env: { PATH: `${pathFolder}:/usr/bin:/bin`, M_DOCKER_JS_RUNTIME: '', M_DOCKER_INIT_RUNTIME: '', ...env },
  });
}

function addFakeBun(script: string): void {
  const path = join(pathFolder, 'bun');
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
}

describe('runtime selection without Bun', () => {
  it('--version falls back to Node', async () => {
    const result = await runCopy(['--version']);
    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toMatch(/\(cli: node v[\d.]+, init: node v[\d.]+\)\n$/);
  });

  it('forced Bun gives 125', async () => {
    const result = await runCopy(['run', '/bin/true'], { M_DOCKER_JS_RUNTIME: 'bun' });
    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(/^m-docker: M_DOCKER_JS_RUNTIME=bun, but no usable Bun was found \(.*no bun is on PATH\): /);
  });

  it('forced Bun init names its variable', async () => {
    const result = await runCopy(['run', '/bin/true'], { M_DOCKER_INIT_RUNTIME: 'bun' });
    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(
      /^m-docker: M_DOCKER_INIT_RUNTIME=bun was set, but no usable Bun 1\.4 or later was found \(.*\): install Bun 1\.4 or later, or set M_DOCKER_INIT_RUNTIME=node\n$/,
    );
  });

  it.each([
    ['M_DOCKER_JS_RUNTIME', 'deno'],
    ['M_DOCKER_INIT_RUNTIME', 'java'],
  ])('invalid %s gives 125', async (name, value) => {
    const result = await runCopy(['run', '/bin/true'], { [name]: value });
    expect(result.status).toBe(125);
    expect(result.stderr).toBe(`m-docker: invalid ${name} "${value}": use auto, node or bun, or leave it unset\n`);
  });

  it.each([
    ['older than 1.4', 'echo 1.3.9', /is version 1\.3\.9, older than 1\.4/],
    ['failing --version', 'exit 1', /--version failed/],
    ['printing garbage', 'echo not-a-version', /reports version "not-a-version"/],
  ])('bun on PATH %s is ignored', async (_case, script, reason) => {
    addFakeBun(script);
    const result = await runCopy(['--version']);
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toMatch(/\(cli: node v[\d.]+, init: node v[\d.]+\)\n$/);

    const forced = await runCopy(['run', '/bin/true'], { M_DOCKER_JS_RUNTIME: 'bun' });
    expect(forced.status).toBe(125);
    expect(forced.stderr).toMatch(reason);
  });
});

describe.skipIf(NOT_ROOT)('runtime fallback to Node (needs root)', () => {
  it('run logs one fallback line', async () => {
    const result = await runCopy(['--debug', 'run', '/bin/true']);
    expect(result.status).toBe(0);
    const fallbackLines = result.stderr.split('\n').filter((line) => line.includes('Bun is unavailable'));
    expect(fallbackLines).toHaveLength(1);
    expect(fallbackLines[0]).toMatch(/^m-docker\[cli\] debug .* reason="no @oven\/bun-linux package is installed and no bun is on PATH"/);
    expect(result.stderr).toMatch(/init spawned .*runtime="?node/);
  });

  it('run without Bun still works', async () => {
    const result = await runCopy(['run', '/bin/sh', '-c', 'echo $$']);
    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toBe('1\n');
  });
});

describe.skipIf(!realBun.found)('runtime selection with Bun on PATH', () => {
  it('bun 1.4 on PATH runs both processes', async () => {
    if (!realBun.found) return;
    symlinkSync(realBun.bun.path, join(pathFolder, 'bun'));
    const result = await runCopy(['--version']);
    expect(result.stdout.toString()).toMatch(/\(cli: bun 1\.\d+\.\d+, init: bun 1\.\d+\.\d+\)\n$/);
  });

  it('M_DOCKER_INIT_RUNTIME=node runs the init on Node', async () => {
    if (!realBun.found) return;
    symlinkSync(realBun.bun.path, join(pathFolder, 'bun'));
    const result = await runCopy(['--version'], { M_DOCKER_INIT_RUNTIME: 'node' });
    expect(result.stdout.toString()).toMatch(/\(cli: bun [\d.]+, init: node v[\d.]+\)\n$/);
  });

  it('M_DOCKER_JS_RUNTIME=node M_DOCKER_INIT_RUNTIME=bun mixes them', async () => {
    if (!realBun.found) return;
    symlinkSync(realBun.bun.path, join(pathFolder, 'bun'));
    const result = await runCopy(['--version'], { M_DOCKER_JS_RUNTIME: 'node', M_DOCKER_INIT_RUNTIME: 'bun' });
    expect(result.stdout.toString()).toMatch(/\(cli: node v[\d.]+, init: bun [\d.]+\)\n$/);
  });
});
