import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { cleanUp, failureOf, isRoot, makeConfig, makeTempDir, NEEDS_ROOT, runInit, writeScript } from './helpers.js';

afterEach(cleanUp);

function getconf(name: string): number {
  return Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim());
}

// Limits from execve(2). One argv or envp string may have at most 32 pages
// (MAX_ARG_STRLEN) including its NUL. All strings together may take at most
// 1/4 of the stack limit, which `getconf ARG_MAX` prints, and at most 3/4 of
// _STK_LIM (8 MiB).
const MAX_ARG_STRLEN = 32 * getconf('PAGESIZE');
const TOTAL_ARG_LIMIT = Math.min(getconf('ARG_MAX'), (8 * 1024 * 1024 * 3) / 4);

describe.skipIf(!isRoot)(`init failures (${NEEDS_ROOT})`, () => {
  it.each([
    { name: 'missing cwd', cwd: '{dir}/absent', code: 'ENOENT', errno: 2 },
    { name: 'cwd that is a file', cwd: '{dir}/file', code: 'ENOTDIR', errno: 20 },
  ])('reports $name at chdir stage', async ({ cwd, code, errno }) => {
    const dir = makeTempDir();
    writeScript(dir, 'file', 'true');
    const path = cwd.replace('{dir}', dir);

    const run = await runInit(makeConfig({ argv: ['/bin/echo', 'must-not-run'], cwd: path }));

    expect(run.messages).toHaveLength(1);
    const failure = failureOf(run);
    expect(failure.stage).toBe('chdir');
    expect(failure.code).toBe(code);
    expect(failure.errno).toBe(errno);
    expect(failure.path).toBe(path);
    expect(failure.message).toContain(path);
    expect(run.status).toBe(1);
    expect(run.stdout.toString('utf8')).toBe('');
  });

  it('runs argument at MAX_ARG_STRLEN', async () => {
    // The string and its NUL fill MAX_ARG_STRLEN exactly.
    const longest = 'x'.repeat(MAX_ARG_STRLEN - 1);

    const run = await runInit(makeConfig({ argv: ['/bin/sh', '-c', 'printf %s "$1" | wc -c', 'sh', longest] }));

    expect(run.messages).toEqual([{ type: 'ready' }]);
    expect(run.stdout.toString('utf8')).toBe(`${MAX_ARG_STRLEN - 1}\n`);
    expect(run.status).toBe(0);
  });

  it.each([
    { name: 'argument over MAX_ARG_STRLEN', argv: ['/bin/true', 'x'.repeat(MAX_ARG_STRLEN)], env: [] },
    { name: 'env string over MAX_ARG_STRLEN', argv: ['/bin/true'], env: [`BIG=${'x'.repeat(MAX_ARG_STRLEN - 4)}`] },
    { name: 'argv and env over ARG_MAX', argv: ['/bin/true', ...fillBytes(TOTAL_ARG_LIMIT / 2)], env: fillEnv(TOTAL_ARG_LIMIT / 2) },
  ])('reports $name as E2BIG after start', async ({ argv, env }) => {
    const run = await runInit(makeConfig({ argv, env }));

    // The kernel checks the sizes only in execve, after ready and start.
    expect(run.messages).toHaveLength(2);
    expect(run.messages[0]).toEqual({ type: 'ready' });
    const failure = failureOf(run);
    expect(failure.stage).toBe('exec');
    expect(failure.code).toBe('E2BIG');
    expect(failure.errno).toBe(7);
    expect(failure.path).toBe('/bin/true');
    expect(run.status).toBe(1);
  });

  // Both files pass the PATH search (not a folder, executable), and only
  // execve finds out that it cannot run them.
  it.each([
    { name: 'missing interpreter', text: '#!/nonexistent/interpreter\n', code: 'ENOENT' },
    { name: 'script without #!', text: 'echo must-not-run\n', code: 'ENOEXEC' },
  ])('reports $name at exec stage', async ({ text, code }) => {
    const dir = makeTempDir();
    const script = writeScript(dir, 'script', 'true');
    writeFileSync(script, text);

    const run = await runInit(makeConfig({ argv: [script] }));

    expect(run.messages[0]).toEqual({ type: 'ready' });
    const failure = failureOf(run);
    expect(failure.stage).toBe('exec');
    expect(failure.code).toBe(code);
    expect(failure.path).toBe(script);
    expect(run.status).toBe(1);
    expect(run.stdout.toString('utf8')).toBe('');
  });
});

// Strings of 64 KiB, each under MAX_ARG_STRLEN, that together take at least `bytes`.
function fillBytes(bytes: number): string[] {
  const size = 64 * 1024;
  return Array.from({ length: Math.ceil(bytes / size) + 1 }, () => 'a'.repeat(size - 1));
}

function fillEnv(bytes: number): string[] {
  return fillBytes(bytes).map((value, index) => `FILL${index}=${value}`);
}
