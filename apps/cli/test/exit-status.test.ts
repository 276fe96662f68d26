import type { InitFailure } from '@m-docker/ipc';
import { describe, expect, it } from 'vitest';

import { errorFromInitFailure, statusFromExit } from '../src/run/exit-status.js';

describe('statusFromExit', () => {
  it.each([
    [0, null, 0],
    [7, null, 7],
    [255, null, 255],
    [null, 'SIGKILL', 137],
    [null, 'SIGTERM', 143],
    [null, 'SIGINT', 130],
  ] as const)('exit %s signal %s gives %i', (code, signal, status) => {
    expect(statusFromExit(code, signal)).toBe(status);
  });
});

describe('errorFromInitFailure', () => {
  const failure = (stage: InitFailure['stage'], code: string): InitFailure => ({ stage, code, errno: 1, message: 'm' });

  it.each([
    ['resolve', 'ENOENT', 127],
    ['exec', 'ENOENT', 127],
    ['resolve', 'EACCES', 126],
    ['resolve', 'EISDIR', 126],
    ['exec', 'E2BIG', 126],
    ['exec', 'ENOEXEC', 126],
    ['exec', 'ETXTBSY', 126],
    ['chdir', 'ENOENT', 125],
    ['mount', 'EPERM', 125],
    ['hostname', 'EINVAL', 125],
    ['config', '', 125],
  ] as const)('%s %s gives %i', (stage, code, status) => {
    expect(errorFromInitFailure(failure(stage, code), 'cmd').status).toBe(status);
  });

  it('E2BIG message says argument list too long', () => {
    expect(errorFromInitFailure(failure('exec', 'E2BIG'), 'cmd').message).toMatch(/^cannot run "cmd": argument list too long/);
  });
});
