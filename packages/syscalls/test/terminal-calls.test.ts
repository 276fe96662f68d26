import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { cfmakeraw } from '../src/index.js';
import { cleanUp, isRoot, makeTempDir, runFixture } from './helpers.js';

/*
 * Descriptor passing (SCM_RIGHTS) and the terminal calls, each scenario in
 * a fixture process under the runtime that M_DOCKER_JS_RUNTIME names, so
 * `pnpm test` runs them through koffi and through bun:ffi. The ptys come
 * from the host's /dev/ptmx and close with the fixture.
 */

afterEach(cleanUp);

// biome-ignore lint/suspicious/noExplicitAny: each scenario prints its own shape.
async function runScenario(name: string, file?: string): Promise<any> {
  const result = await runFixture('terminal-calls.mjs', file === undefined ? [name] : [name, file]);
  if (result.status !== 0) throw new Error(`terminal-calls.mjs ${name} exited with ${result.status ?? result.signal}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

function sampleFile(): string {
  const path = join(makeTempDir(), 'passed.txt');
  writeFileSync(path, 'content of the passed file\n');
  return path;
}

describe('sendDescriptors and receiveDescriptors', () => {
  it('descriptor round trip opens the same file', async () => {
    const file = sampleFile();
    const result = await runScenario('roundTrip', file);

    expect(result.sent).toBe(1);
    expect(result.count).toBe(1);
    expect(result.byte).toBe('M');
    expect(result.truncated).toBe(false);
    expect(result.descriptors).toBe(1);
    expect(result.file.target).toBe(file);
    expect(result.sameInode).toBe(true);
    expect(result.contentThroughCopy).toBe('content of the passed file\n');
  });

  it('received descriptor is close-on-exec', async () => {
    const result = await runScenario('roundTrip', sampleFile());
    expect(result.file.closeOnExec).toBe(true);
  });

  it('receive stops after the carrying bytes', async () => {
    const result = await runScenario('roundTrip', sampleFile());
    expect(result.after).toEqual({ count: 4, text: 'rest', descriptors: 0 });
  });

  it('several descriptors arrive in order', async () => {
    const file = sampleFile();
    const result = await runScenario('severalDescriptors', file);

    expect(result.count).toBe(3);
    expect(result.targets[0]).toBe(file);
    expect(result.targets[1]).toBe('/dev/null');
    expect(result.targets[2]).toMatch(/^\/proc\/\d+\/status$/);
  });

  it('too many descriptors are reported truncated', async () => {
    const result = await runScenario('truncated', sampleFile());

    expect(result.truncated).toBe(true);
    expect(result.descriptors).toBe(result.max);
    expect(result.count).toBe(1);
  });

  it('closed peer gives end of stream and EPIPE', async () => {
    const result = await runScenario('peerClosed');

    expect(result.receive).toEqual({ count: 0, descriptors: [], truncated: false });
    expect(result.send.error.syscall).toBe('sendmsg');
    expect(result.send.error.code).toBe('EPIPE');
  });

  it.each([
    { name: 'noData', expected: { name: 'RangeError', message: 'sendDescriptors needs at least one byte of data to carry the descriptors' } },
    { name: 'noDescriptors', expected: { name: 'RangeError', message: 'sendDescriptors needs at least one descriptor' } },
    { name: 'closedDescriptor', expected: { syscall: 'sendmsg', code: 'EBADF' } },
    { name: 'notSocket', expected: { syscall: 'recvmsg', code: 'ENOTSOCK' } },
  ])('descriptor passing rejects $name', async ({ name, expected }) => {
    const result = await runScenario('invalidArguments');
    expect(result[name].error).toMatchObject(expected);
  });

  it('descriptorIo honours offsets and closes', async () => {
    const file = sampleFile();
    const result = await runScenario('descriptorIo', file);

    expect(result.sent).toBe(2);
    expect(result.count).toBe(2);
    expect(result.target).toBe('-ab---');
    expect(result.file).toBe(file);
    expect(result.closed.error.code).toBe('EBADF');
  });
});

describe('terminal calls', () => {
  it('pty master and slave are terminals', async () => {
    const result = await runScenario('pty');

    expect(result.path).toMatch(/^\/dev\/pts\/\d+$/);
    expect(result.isattyMaster).toBe(true);
    expect(result.isattySlave).toBe(true);
    expect(result.isattyFile).toBe(false);
  });

  it('window size crosses the pty', async () => {
    const result = await runScenario('pty');

    expect(result.sizeSeenBySlave).toEqual({ rows: 37, columns: 113 });
    expect(result.sizeSeenByMaster).toEqual({ rows: 5, columns: 7 });
  });

  it('raw mode applies and restores', async () => {
    const result = await runScenario('pty');

    expect(result.termiosLength).toBe(36);
    expect(result.rawEqualsRequested).toBe(true);
    expect(result.restoredEqualsOriginal).toBe(true);
    // ISIG, ICANON and ECHO (0x1, 0x2, 0x8) are on by default and off in raw mode.
    expect(result.original.lflag & 0xb).toBe(0xb);
    expect(result.raw.lflag & 0xb).toBe(0);
    expect(result.raw.oflag & 0x1).toBe(0);
    expect(result.raw.vmin).toBe(1);
    expect(result.raw.vtime).toBe(0);
  });

  it('slave output reaches the master', async () => {
    const result = await runScenario('pty');
    expect(result.output).toBe('out\r\n');
  });

  it.each([
    ['getWindowSize', 'TIOCGWINSZ'],
    ['tcgetattr', 'TCGETS'],
    ['ptsname', 'TIOCGPTN'],
  ])('%s rejects a non-terminal', async (call, request) => {
    const result = await runScenario('notTerminal');

    expect(result[call].error.syscall).toBe('ioctl');
    expect(result[call].error.code).toBe('ENOTTY');
    expect(result[call].error.message).toMatch(new RegExp(`^ioctl fd=\\d+ ${request}: ENOTTY`));
  });

  it('tcsetattr rejects a short termios', async () => {
    const result = await runScenario('notTerminal');
    expect(result.tcsetattrLength.error).toEqual({ name: 'RangeError', message: 'termios must have 36 bytes, got 3' });
  });

  it.skipIf(!isRoot)('hangUpTerminal ends the slave (needs CAP_SYS_ADMIN)', async () => {
    const result = await runScenario('hangUp');

    expect(result.read).toEqual({ value: 0 });
    expect(result.write.error.code).toBe('EIO');
    expect(result.masterRead).toEqual({ value: 0 });
  });

  it('pty becomes the controlling terminal', async () => {
    const result = await runScenario('controllingTerminal');

    expect(result.beforeSession.error.code).toBe('EPERM');
    expect(result.ttyNumber).toBe(result.slaveDevice);
  });
});

describe('cfmakeraw', () => {
  it('cfmakeraw clears only the raw-mode bits', () => {
    const termios = new Uint8Array(36).fill(0xff);
    const raw = new DataView(cfmakeraw(termios).buffer);

    expect(raw.getUint32(0, true)).toBe(~0x5eb >>> 0);
    expect(raw.getUint32(4, true)).toBe(~0x1 >>> 0);
    expect(raw.getUint32(8, true)).toBe(~0x100 >>> 0);
    expect(raw.getUint32(12, true)).toBe(~0x804b >>> 0);
    expect(raw.getUint8(17 + 6)).toBe(1);
    expect(raw.getUint8(17 + 5)).toBe(0);
    expect(termios[0]).toBe(0xff);
  });
});

describe('dupCloseOnExec and fchown', () => {
  it('dupCloseOnExec duplicates close-on-exec', async () => {
    const file = sampleFile();
    const result = await runScenario('dup', file);

    expect(result.different).toBe(true);
    expect(result.file).toMatchObject({ target: file, closeOnExec: true });
    expect(result.content).toBe('content of the passed file\n');
    expect(result.closed.error).toMatchObject({ syscall: 'fcntl', code: 'EBADF' });
  });

  it.skipIf(!isRoot)('fchown changes the owner only (needs root)', async () => {
    const result = await runScenario('fchown', sampleFile());

    expect(result.uid).toBe(4321);
    expect(result.gidUnchanged).toBe(true);
    expect(result.closed.error).toMatchObject({ syscall: 'fchown', code: 'EBADF' });
  });
});
