import { existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { DEFAULT_SEARCH_PATH, ResolveError, resolveExecutable } from '../src/index.js';
import { cleanUp, makeDir, makeTempDir, writeScript } from './helpers.js';

afterEach(cleanUp);

// Runs resolveExecutable and returns its ResolveError, or fails when it resolved.
function resolveError(command: string, env: string[]): ResolveError {
  try {
    const resolved = resolveExecutable(command, env);
    throw new Error(`expected a ResolveError, resolved ${resolved}`);
  } catch (error) {
    if (!(error instanceof ResolveError)) throw error;
    return error;
  }
}

// Root may execute any file with at least one execute bit, so a file with
// none is the only non-executable file for every user.
const NOT_EXECUTABLE = 0o644;

describe('resolveExecutable', () => {
  it('finds bare name in PATH', () => {
    const dir = makeTempDir();
    const tool = writeScript(dir, 'tool', 'true');

    expect(resolveExecutable('tool', [`PATH=/nonexistent:${dir}`])).toBe(tool);
  });

  it('takes first match in PATH order', () => {
    const first = makeTempDir();
    const second = makeTempDir();
    writeScript(second, 'tool', 'true');
    const winner = writeScript(first, 'tool', 'true');

    expect(resolveExecutable('tool', [`PATH=${first}:${second}`])).toBe(winner);
  });

  it('skips non-executable file for later match', () => {
    const first = makeTempDir();
    const second = makeTempDir();
    writeScript(first, 'tool', 'true', NOT_EXECUTABLE);
    const winner = writeScript(second, 'tool', 'true');

    expect(resolveExecutable('tool', [`PATH=${first}:${second}`])).toBe(winner);
  });

  it('skips directory for later match', () => {
    const first = makeTempDir();
    const second = makeTempDir();
    makeDir(first, 'tool');
    const winner = writeScript(second, 'tool', 'true');

    expect(resolveExecutable('tool', [`PATH=${first}:${second}`])).toBe(winner);
  });

  it('reads PATH from env, not from host', () => {
    const dir = makeTempDir();
    writeScript(dir, 'only-in-container', 'true');

    expect(process.env.PATH?.split(':')).not.toContain(dir);
    expect(resolveExecutable('only-in-container', ['HOME=/root', `PATH=${dir}`])).toBe(join(dir, 'only-in-container'));
  });

  it('uses default search path without PATH', () => {
    const expected = DEFAULT_SEARCH_PATH.split(':')
      .map((folder) => join(folder, 'sh'))
      .find((candidate) => existsSync(candidate) && !statSync(candidate).isDirectory());

    expect(expected).toBeDefined();
    expect(resolveExecutable('sh', ['HOME=/root'])).toBe(expected);
  });

  it('treats empty PATH entry as working directory', () => {
    const dir = makeTempDir();
    writeScript(dir, 'tool', 'true');
    const previous = process.cwd();

    process.chdir(dir);
    try {
      expect(resolveExecutable('tool', ['PATH=/nonexistent:'])).toBe('./tool');
      expect(resolveExecutable('tool', ['PATH='])).toBe('./tool');
    } finally {
      process.chdir(previous);
    }
  });

  it('uses path with slash as is', () => {
    const dir = makeTempDir();
    const tool = writeScript(dir, 'tool', 'true');
    const fromHere = relative(process.cwd(), tool);

    expect(resolveExecutable(tool, ['PATH=/nonexistent'])).toBe(tool);
    expect(resolveExecutable(fromHere, ['PATH=/nonexistent'])).toBe(fromHere);
  });

  // Each case: the command, given the temporary PATH folder, and the path the error names.
  it.each([
    ['missing bare name', 'ENOENT', 2, () => 'absent', () => 'absent'],
    ['missing path', 'ENOENT', 2, (dir: string) => join(dir, 'absent'), (dir: string) => join(dir, 'absent')],
    ['directory in PATH', 'EISDIR', 21, () => 'folder', (dir: string) => join(dir, 'folder')],
    ['directory path', 'EISDIR', 21, (dir: string) => join(dir, 'folder'), (dir: string) => join(dir, 'folder')],
    ['non-executable in PATH', 'EACCES', 13, () => 'plain', (dir: string) => join(dir, 'plain')],
    ['non-executable path', 'EACCES', 13, (dir: string) => join(dir, 'plain'), (dir: string) => join(dir, 'plain')],
  ] as const)('rejects %s with %s', (_kind, code, errno, command, path) => {
    const dir = makeTempDir();
    makeDir(dir, 'folder');
    writeScript(dir, 'plain', 'true', NOT_EXECUTABLE);

    const error = resolveError(command(dir), [`PATH=${dir}`]);

    expect(error.code).toBe(code);
    expect(error.errno).toBe(errno);
    expect(error.path).toBe(path(dir));
  });

  it('reports EACCES over later ENOENT', () => {
    const first = makeTempDir();
    const second = makeTempDir();
    const plain = writeScript(first, 'tool', 'true', NOT_EXECUTABLE);

    const error = resolveError('tool', [`PATH=${first}:${second}`]);

    expect(error.code).toBe('EACCES');
    expect(error.path).toBe(plain);
    expect(error.message).toBe(`${JSON.stringify(plain)}: permission denied`);
  });

  it.each([
    ['directory before non-executable', 'EISDIR'],
    ['non-executable before directory', 'EACCES'],
  ] as const)('reports first match of %s', (order, code) => {
    const first = makeTempDir();
    const second = makeTempDir();
    const [folderDir, plainDir] = order === 'directory before non-executable' ? [first, second] : [second, first];
    makeDir(folderDir, 'tool');
    writeScript(plainDir, 'tool', 'true', NOT_EXECUTABLE);

    const error = resolveError('tool', [`PATH=${first}:${second}`]);

    expect(error.code).toBe(code);
    expect(error.path).toBe(join(first, 'tool'));
  });

  it('names command in not-found message', () => {
    const error = resolveError('absent', ['PATH=/nonexistent']);

    expect(error.message).toBe('executable file "absent" not found in $PATH');
  });
});
