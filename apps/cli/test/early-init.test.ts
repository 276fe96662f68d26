import { describe, expect, it } from 'vitest';

import { isRunCommand } from '../src/run/early-init.js';

describe('isRunCommand', () => {
  it.each([
    [['run', 'true'], true],
    [['--debug', 'run', 'true'], true],
    [['-D', 'run'], true],
    [['--log-level', 'debug', 'run', 'true'], true],
    [['--log-level=info', 'run', 'true'], true],
    [['--root', '/tmp/store', 'run', 'true'], true],
    [['--root=/tmp/store', '-D', 'run', 'true'], true],
    [['--root', 'run'], false],
    [['image', 'ls'], false],
    [[], false],
    [['--help'], false],
    [['--version', 'run'], false],
    [['ps'], false],
    [['--log-level', 'run'], false],
  ])('%j gives %s', (argv, expected) => {
    expect(isRunCommand(argv)).toBe(expected);
  });
});
