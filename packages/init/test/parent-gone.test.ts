import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';

import { encodeFrame, encodeMessage, FRAME_HEADER_SIZE, type Message } from '@m-docker/ipc';
import { afterEach, describe, expect, it } from 'vitest';

import {
  cleanUp,
  HANG_DEADLINE_MS,
  type InitProcess,
  isRoot,
  makeConfig,
  makeTempDir,
  NEEDS_ROOT,
  startInit,
  waitForExit,
  withDeadline,
} from './helpers.js';

// Exit statuses from src/init.ts, repeated here so that a changed constant fails a test.
const FAILURE_STATUS = 1;
const PARENT_GONE_STATUS = 2;

afterEach(cleanUp);

/** Writes raw bytes to the init's pipe and resolves once the kernel has them. */
function writeRaw(pipe: Duplex, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    pipe.write(bytes, (error?: Error | null) => (error ? reject(error) : resolve()));
  });
}

async function expectReady(init: InitProcess): Promise<void> {
  expect(await withDeadline(init.channel.receive(), 'ready')).toEqual({ type: 'ready' });
}

/**
 * Receives the init's messages until end of stream or an error message. The
 * init exits after an error without reading what is left of a bad frame, so
 * the next read may fail with ECONNRESET instead of ending cleanly.
 */
async function receiveUntilError(init: InitProcess): Promise<Message[]> {
  const messages: Message[] = [];
  for (;;) {
    const message = await withDeadline(init.channel.receive(), 'a message from the init');
    if (message === undefined) return messages;
    messages.push(message);
    if (message.type === 'error') return messages;
  }
}

// A config that prints a marker, so that a test can tell whether the command ran.
const MARKER_CONFIG = makeConfig({ argv: ['/bin/sh', '-c', 'echo command-ran'], logLevel: 'debug' });
const CONFIG_FRAME = encodeMessage({ type: 'config', config: MARKER_CONFIG });
const START_FRAME = encodeMessage({ type: 'start' });

describe.skipIf(!isRoot)(`init with parent gone (${NEEDS_ROOT})`, () => {
  // Each case cuts the stream inside one of the init's blocking reads.
  it.each([
    { name: 'before config', ready: false, bytes: new Uint8Array(0) },
    { name: 'inside config header', ready: false, bytes: CONFIG_FRAME.subarray(0, FRAME_HEADER_SIZE / 2) },
    { name: 'after config header', ready: false, bytes: CONFIG_FRAME.subarray(0, FRAME_HEADER_SIZE) },
    { name: 'inside config payload', ready: false, bytes: CONFIG_FRAME.subarray(0, CONFIG_FRAME.length - 10) },
    { name: 'before start', ready: true, bytes: new Uint8Array(0) },
    { name: 'inside start header', ready: true, bytes: START_FRAME.subarray(0, FRAME_HEADER_SIZE - 1) },
  ])('exits with status 2 on close $name', async ({ ready, bytes }) => {
    const init = startInit();

    if (ready) {
      await init.channel.send({ type: 'config', config: MARKER_CONFIG });
      await expectReady(init);
    }
    if (bytes.length > 0) await writeRaw(init.pipe, bytes);
    init.channel.close();
    const exit = await waitForExit(init);

    expect(exit.status).toBe(PARENT_GONE_STATUS);
    expect(exit.signal).toBeNull();
    expect(exit.stdout.toString('utf8')).toBe('');
    // Before a whole config the init has no logger, and after it, it logs no failure.
    expect(exit.stderr).not.toContain('failed');
    if (!ready) expect(exit.stderr).toBe('');
  });

  it('exits with status 2 on close after config', async () => {
    // The parent closes before it reads anything, so the init's write of
    // ready fails (EPIPE), or its read of start does (ECONNRESET) when ready
    // was written first. Both mean the parent is gone.
    const init = startInit();

    await writeRaw(init.pipe, CONFIG_FRAME);
    init.channel.close();
    const exit = await waitForExit(init);

    expect(exit.status).toBe(PARENT_GONE_STATUS);
    expect(exit.stdout.toString('utf8')).toBe('');
  });

  it('exits with status 2 on reset while waiting for start', async () => {
    // fd 2 of the init is a file, so that this process can wait for the
    // "waiting for start" line without running its event loop. While the
    // loop is blocked, Node reads nothing from the pipe. Closing the pipe
    // with ready unread makes the init's read of start fail with ECONNRESET.
    const stderrPath = join(makeTempDir(), 'stderr');
    const stderrFd = openSync(stderrPath, 'w');
    const init = startInit({ stderr: stderrFd });
    closeSync(stderrFd);

    await writeRaw(init.pipe, CONFIG_FRAME);
    waitForFileText(stderrPath, 'waiting for start');
    init.channel.close();
    const exit = await waitForExit(init);

    expect(exit.status).toBe(PARENT_GONE_STATUS);
    expect(exit.stdout.toString('utf8')).toBe('');
    expect(readFileSync(stderrPath, 'utf8')).not.toContain('execve');
  });

  it('exits with status 2 when failure cannot be sent', async () => {
    const config = makeConfig({ argv: ['/bin/true'], cwd: '/nonexistent/cwd' });
    const init = startInit();

    await writeRaw(init.pipe, encodeMessage({ type: 'config', config }));
    init.channel.close();
    const exit = await waitForExit(init);

    expect(exit.status).toBe(PARENT_GONE_STATUS);
  });
});

describe.skipIf(!isRoot)(`init with invalid messages (${NEEDS_ROOT})`, () => {
  const config = makeConfig({ argv: ['/bin/sh', '-c', 'echo command-ran'] });
  const badId = JSON.stringify({ ...config, id: 'not-hex' });
  const oversizedHeader = Buffer.from([0x4d, 1, 1, 0, 0xff, 0xff, 0xff, 0xff]);

  it.each([
    { name: 'invalid JSON', frame: encodeFrame('config', Buffer.from('{"id":')), text: 'not valid JSON' },
    { name: 'invalid config', frame: encodeFrame('config', Buffer.from(badId)), text: 'id "not-hex" must be 64 lowercase hex characters' },
    { name: 'start before config', frame: encodeMessage({ type: 'start' }), text: 'expected a config message, got start' },
    { name: 'bad magic byte', frame: Buffer.from('GET / HTTP/1.1\r\n'), text: 'bad magic byte' },
    { name: 'oversized frame', frame: oversizedHeader, text: 'exceeds the' },
  ])('reports $name at config stage', async ({ frame, text }) => {
    const init = startInit();

    await writeRaw(init.pipe, frame);
    const messages = await receiveUntilError(init);
    const exit = await waitForExit(init);

    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message?.type).toBe('error');
    if (message?.type !== 'error') return;
    expect(message.error.stage).toBe('config');
    expect(message.error.code).toBe('');
    expect(message.error.message).toContain(text);
    expect(exit.status).toBe(FAILURE_STATUS);
  });

  it.each([
    { name: 'second config', frame: encodeMessage({ type: 'config', config }), text: 'expected a start message, got config' },
    { name: 'start with payload', frame: encodeFrame('start', Buffer.from('x')), text: 'start message has a 1-byte payload' },
  ])('reports $name at exec stage', async ({ frame, text }) => {
    const init = startInit();

    await init.channel.send({ type: 'config', config });
    await expectReady(init);
    await writeRaw(init.pipe, frame);
    const messages = await receiveUntilError(init);
    const exit = await waitForExit(init);

    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message?.type).toBe('error');
    if (message?.type !== 'error') return;
    expect(message.error.stage).toBe('exec');
    expect(message.error.message).toContain(text);
    expect(exit.status).toBe(FAILURE_STATUS);
    expect(exit.stdout.toString('utf8')).toBe('');
  });
});

/** Blocks this thread, event loop included, until `path` contains `text`. */
function waitForFileText(path: string, text: string): void {
  const deadline = Date.now() + HANG_DEADLINE_MS;
  while (!readFileSync(path, 'utf8').includes(text)) {
    if (Date.now() > deadline) throw new Error(`${path} has no line with ${JSON.stringify(text)} after ${HANG_DEADLINE_MS} ms`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
}
