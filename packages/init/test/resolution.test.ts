import { afterEach, describe, expect, it } from 'vitest';

import {
  cleanUp,
  failureOf,
  isRoot,
  makeConfig,
  makeDir,
  makeTempDir,
  NEEDS_ROOT,
  runInit,
  writeScript,
} from './helpers.js';

afterEach(cleanUp);

// The container's mount namespace starts as a copy of the host's, so files
// in a temporary folder of the host are visible to the init.
describe.skipIf(!isRoot)(`init command resolution (${NEEDS_ROOT})`, () => {
  it.each([
    { name: 'bare name in PATH', argv: ['echo', 'found'], path: '/usr/bin:/bin', cwd: '/', stdout: 'found\n' },
    { name: 'container PATH first', argv: ['echo'], path: '{dir}:/usr/bin:/bin', cwd: '/', stdout: 'from-container-path\n' },
    { name: 'absolute path as is', argv: ['{dir}/tool'], path: '/nonexistent', cwd: '/', stdout: 'from-tool\n' },
    { name: 'relative path from cwd', argv: ['./tool'], path: '/nonexistent', cwd: '{dir}', stdout: 'from-tool\n' },
    { name: 'empty PATH entry as cwd', argv: ['tool'], path: '/nonexistent:', cwd: '{dir}', stdout: 'from-tool\n' },
  ])('runs $name', async ({ argv, path, cwd, stdout }) => {
    const dir = makeTempDir();
    writeScript(dir, 'tool', 'echo from-tool');
    // Shadows /usr/bin/echo for a PATH that lists the temporary folder first.
    writeScript(dir, 'echo', 'echo from-container-path');
    const fill = (text: string) => text.replaceAll('{dir}', dir);

    const run = await runInit(makeConfig({ argv: argv.map(fill), env: [`PATH=${fill(path)}`], cwd: fill(cwd) }));

    expect(run.messages).toEqual([{ type: 'ready' }]);
    expect(run.stdout.toString('utf8')).toBe(stdout);
    expect(run.status).toBe(0);
  });

  it('ignores host PATH', async () => {
    const dir = makeTempDir();
    writeScript(dir, 'only-in-container', 'echo from-container-path');

    expect(process.env.PATH?.split(':')).not.toContain(dir);
    const run = await runInit(makeConfig({ argv: ['only-in-container'], env: [`PATH=${dir}`] }));

    expect(run.stdout.toString('utf8')).toBe('from-container-path\n');
    expect(run.status).toBe(0);
  });

  it.each([
    { name: 'missing command', command: 'absent-command', code: 'ENOENT', errno: 2, path: 'absent-command' },
    { name: 'missing path', command: '{dir}/absent', code: 'ENOENT', errno: 2, path: '{dir}/absent' },
    { name: 'directory', command: 'folder', code: 'EISDIR', errno: 21, path: '{dir}/folder' },
    { name: 'non-executable file', command: 'plain', code: 'EACCES', errno: 13, path: '{dir}/plain' },
  ])('reports $name as $code', async ({ command, code, errno, path }) => {
    const dir = makeTempDir();
    makeDir(dir, 'folder');
    writeScript(dir, 'plain', 'echo must-not-run', 0o644);
    const fill = (text: string) => text.replaceAll('{dir}', dir);

    const run = await runInit(makeConfig({ argv: [fill(command)], env: [`PATH=${dir}`] }));

    expect(run.messages).toHaveLength(1);
    const failure = failureOf(run);
    expect(failure.stage).toBe('resolve');
    expect(failure.code).toBe(code);
    expect(failure.errno).toBe(errno);
    expect(failure.path).toBe(fill(path));
    expect(run.status).toBe(1);
    expect(run.stdout.toString('utf8')).toBe('');
  });

  it('resolves relative path against cwd', async () => {
    const dir = makeTempDir();
    writeScript(makeDir(dir, 'bin'), 'tool', 'echo from-sub');

    const run = await runInit(makeConfig({ argv: ['bin/tool'], env: ['PATH=/nonexistent'], cwd: dir }));

    expect(run.stdout.toString('utf8')).toBe('from-sub\n');
    expect(run.status).toBe(0);
  });
});
