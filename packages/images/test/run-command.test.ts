import { describe, expect, it } from 'vitest';

import { ImageError, type ImageRunConfig, type RunCommandOptions, resolveRunCommand } from '../src/index.js';

const both: ImageRunConfig = { Entrypoint: ['/entry', '-x'], Cmd: ['serve', '--port', '80'] };

describe('resolveRunCommand', () => {
  it.each<[string, ImageRunConfig, RunCommandOptions, string[]]>([
    ['Cmd alone', { Cmd: ['sh'] }, { command: [] }, ['sh']],
    ['arguments replace Cmd', { Cmd: ['sh'] }, { command: ['ls', '-l'] }, ['ls', '-l']],
    ['Entrypoint then Cmd', both, { command: [] }, ['/entry', '-x', 'serve', '--port', '80']],
    ['Entrypoint then arguments', both, { command: ['debug'] }, ['/entry', '-x', 'debug']],
    ['Entrypoint alone', { Entrypoint: ['/entry'] }, { command: [] }, ['/entry']],
    ['--entrypoint drops the image Cmd', both, { entrypoint: '/bin/sh', command: [] }, ['/bin/sh']],
    ['--entrypoint with arguments', both, { entrypoint: '/bin/sh', command: ['-c', 'id'] }, ['/bin/sh', '-c', 'id']],
    ['--entrypoint is not split at spaces', {}, { entrypoint: '/my prog', command: [] }, ['/my prog']],
    ["--entrypoint '' clears Entrypoint and Cmd", both, { entrypoint: '', command: ['ls'] }, ['ls']],
    ['arguments without image config', {}, { command: ['true'] }, ['true']],
  ])('%s', (_name, config, options, argv) => {
    expect(resolveRunCommand(config, options)).toEqual(argv);
  });

  it.each<[string, ImageRunConfig, RunCommandOptions]>([
    ['no Cmd, no Entrypoint, no arguments', {}, { command: [] }],
    ["--entrypoint '' with only an image Cmd", { Cmd: ['sh'] }, { entrypoint: '', command: [] }],
    ['empty Cmd and Entrypoint lists', { Entrypoint: [], Cmd: [] }, { command: [] }],
  ])('rejects %s with NO_COMMAND', (_name, config, options) => {
    let error: unknown;
    try {
      resolveRunCommand(config, options);
    } catch (caught) {
      error = caught;
    }
    expect(ImageError.isInstance(error)).toBe(true);
    expect((error as ImageError).code).toBe('NO_COMMAND');
    expect((error as Error).message).toBe('no command specified: the image has no Cmd or Entrypoint, so give a command after the image name');
  });
});
