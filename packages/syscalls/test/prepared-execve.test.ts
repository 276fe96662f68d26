import { afterEach, describe, expect, it } from 'vitest';

import { cleanUp, runFixture } from './helpers.js';

// prepareExecve under the runtime that M_DOCKER_JS_RUNTIME names, through
// fixtures/exec-prepared.mjs: the prepared strings and pointer arrays must
// reach the new program byte for byte, and a failed call returns its errno.

afterEach(cleanUp);

const PRINT_ARGUMENTS = 'for a in "$0" "$@"; do printf "[%s]" "$a"; done; printf "\\n%s|%s|[%s]\\n" "$ONE" "$TWO" "$EMPTY"';

function run(path: string, argv: string[], env: string[]) {
  return runFixture('exec-prepared.mjs', [JSON.stringify({ path, argv, env })]);
}

describe('prepareExecve', () => {
  it('passes argv and env unchanged', async () => {
    const argv = ['sh', '-c', PRINT_ARGUMENTS, 'zero', '', 'a b', 'ü€😀', `q"'$(x)`];
    const result = await run('/bin/sh', argv, ['ONE=1', 'TWO=x=y', 'EMPTY=']);

    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('[zero][][a b][ü€😀][q"\'$(x)]\n1|x=y|[]\n');
    expect(result.status).toBe(0);
  });

  it('passes only the given environment', async () => {
    const result = await run('/bin/sh', ['sh', '-c', 'env'], ['ONLY=1']);
    const names = result.stdout.split('\n').map((line) => line.split('=')[0]);

    expect(result.stderr).toBe('');
    expect(names).toContain('ONLY');
    // The fixture runs with the test's environment, and none of it may reach sh.
    expect(names).not.toContain('M_DOCKER_JS_RUNTIME');
    expect(names).not.toContain('HOME');
    expect(result.status).toBe(0);
  });

  it('passes a 100 KiB argument', async () => {
    const long = 'x'.repeat(100 * 1024);
    const result = await run('/bin/sh', ['sh', '-c', 'printf "%s" "$0" | wc -c', long], []);

    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(String(long.length));
    expect(result.status).toBe(0);
  });

  it.each([
    { name: 'missing file', path: '/nonexistent-m-docker-prepared-execve', errno: 2 },
    { name: 'directory', path: '/', errno: 13 },
  ])('call returns errno for $name', async ({ path, errno }) => {
    const result = await run(path, ['x'], []);

    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ path, errno });
    expect(result.status).toBe(3);
  });
});
