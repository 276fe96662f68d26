import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';

import { encodeFrame, encodeMessage, type Message, MessageChannel, WireFormatError } from '../src/index.js';
import { sampleConfig } from './arbitraries.js';
import { connectedSockets } from './socket-pair.js';

const sockets: Socket[] = [];

async function socketPair(): Promise<[Socket, Socket]> {
  const pair = await connectedSockets();
  sockets.push(...pair);
  return pair;
}

afterEach(() => {
  for (const socket of sockets.splice(0)) {
    socket.destroy();
  }
});

/** Returns the WireFormatError that `promise` rejects with, failing the test on anything else. */
async function rejection(promise: Promise<unknown>): Promise<WireFormatError> {
  try {
    await promise;
  } catch (error) {
    expect(WireFormatError.isInstance(error)).toBe(true);
    return error as WireFormatError;
  }
  throw new Error('expected a rejection with WireFormatError, but the promise resolved');
}

function bigConfigMessage(bytes: number, fill: string): Message {
  return { type: 'config', config: sampleConfig({ argv: ['/bin/echo', fill.repeat(bytes / fill.length)] }) };
}

describe('MessageChannel', () => {
  it('channel sends messages both ways', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    const init = new MessageChannel(right);

    await parent.send({ type: 'config', config: sampleConfig() });
    expect(await init.receive()).toEqual({ type: 'config', config: sampleConfig() });

    await init.send({ type: 'ready' });
    expect(await parent.receive()).toEqual({ type: 'ready' });
  });

  it('channel queues messages before receive', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    right.write(Buffer.concat([encodeMessage({ type: 'ready' }), encodeMessage({ type: 'start' })]));
    right.end(encodeMessage({ type: 'ready' }));

    // Waiting for the end of stream makes sure every message was queued before the first receive().
    await new Promise((resolve) => left.once('end', resolve));

    expect(await parent.receive()).toEqual({ type: 'ready' });
    expect(await parent.receive()).toEqual({ type: 'start' });
    expect(await parent.receive()).toEqual({ type: 'ready' });
    expect(await parent.receive()).toBeUndefined();
  });

  it('channel serves concurrent receives in order', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    const pending = [parent.receive(), parent.receive(), parent.receive()];

    right.end(Buffer.concat([encodeMessage({ type: 'ready' }), encodeMessage({ type: 'start' })]));

    expect(await Promise.all(pending)).toEqual([{ type: 'ready' }, { type: 'start' }, undefined]);
  });

  it('channel returns undefined at clean end of stream', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    right.end();

    expect(await parent.receive()).toBeUndefined();
    expect(await parent.receive()).toBeUndefined();
  });

  it.each([
    { name: 'header', bytes: 3, message: 'end of stream after 3 of 8 header bytes' },
    { name: 'payload', bytes: 108, message: 'end of stream after 100 of 4096 payload bytes' },
  ])('channel rejects end of stream mid-$name', async ({ bytes, message }) => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    const pending = parent.receive();
    right.end(encodeFrame('config', new Uint8Array(4096)).subarray(0, bytes));

    const error = await rejection(pending);
    expect(error.code).toBe('TRUNCATED');
    expect(error.message).toBe(message);

    const again = await rejection(parent.receive());
    expect(again.code).toBe('TRUNCATED');
  });

  it('channel rejects an invalid frame and closes the stream', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    const closed = new Promise((resolve) => left.once('close', resolve));
    right.write(Buffer.from([0x4d, 1, 9, 0, 0, 0, 0, 0]));

    const error = await rejection(parent.receive());
    expect(error.code).toBe('UNKNOWN_TYPE');
    expect(error.message).toBe('unknown message type 9');
    await closed;
    expect(left.destroyed).toBe(true);
  });

  it('channel delivers messages before an invalid frame', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    const failure = { stage: 'mount', code: 'EPERM', errno: 1, message: 'mount proc failed' } as const;

    // One write, so the valid frame and the bad one usually share a chunk.
    right.write(Buffer.concat([encodeMessage({ type: 'error', error: failure }), Buffer.from('garbage!')]));

    expect(await parent.receive()).toEqual({ type: 'error', error: failure });
    const error = await rejection(parent.receive());
    expect(error.code).toBe('BAD_MAGIC');
    expect(error.message).toBe('bad magic byte 0x67 (expected 0x4d)');
  });

  it('channel rejects an oversized frame', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left, { maxFrameSize: 16 });
    right.write(encodeFrame('error', new Uint8Array(17)));

    const error = await rejection(parent.receive());
    expect(error.code).toBe('FRAME_TOO_LARGE');
    expect(error.message).toBe('frame length 17 exceeds the 16-byte limit');
  });

  it('channel rejects an invalid payload', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    right.write(encodeFrame('ready', Buffer.from('x')));

    const error = await rejection(parent.receive());
    expect(error.code).toBe('TRAILING_BYTES');
    expect(error.message).toBe('ready message has a 1-byte payload (expected none)');
  });

  it('channel send rejects a message above the limit', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left, { maxFrameSize: 1024 });
    const init = new MessageChannel(right);

    const error = await rejection(parent.send(bigConfigMessage(2048, 'x')));
    expect(error.code).toBe('FRAME_TOO_LARGE');
    expect(error.message).toMatch(/^frame length \d+ exceeds the 1024-byte limit$/);

    // No byte of the rejected message was written, so start is the first message the peer decodes.
    await parent.send({ type: 'start' });
    expect(await init.receive()).toEqual({ type: 'start' });
  });

  it('channel send rejects an invalid config', async () => {
    const [left] = await socketPair();
    const parent = new MessageChannel(left);

    const error = await rejection(parent.send({ type: 'config', config: sampleConfig({ cwd: 'x' }) }));
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toBe(`cwd "x" must be an absolute path (starting with '/')`);
  });

  it('channel sends large messages both ways at once', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    const init = new MessageChannel(right);
    const toInit = bigConfigMessage(8 * 1024 * 1024, 'p😀');
    const toParent = bigConfigMessage(8 * 1024 * 1024, 'i"\n');

    // Neither side calls receive() until both sends resolved. This only
    // finishes because each channel reads into its queue from construction.
    await Promise.all([parent.send(toInit), init.send(toParent)]);

    expect(await init.receive()).toEqual(toInit);
    expect(await parent.receive()).toEqual(toParent);
  });

  it('channel send rejects when the peer closes', async () => {
    const [left, right] = await socketPair();
    const parent = new MessageChannel(left);
    const sending = parent.send(bigConfigMessage(16 * 1024 * 1024, 'z'));
    right.destroy();

    const error = await rejection(sending);
    expect(error.code).toBe('CHANNEL_CLOSED');
  });

  it('channel send rejects after close', async () => {
    const [left] = await socketPair();
    const parent = new MessageChannel(left);
    parent.close();

    const error = await rejection(parent.send({ type: 'start' }));
    expect(error.code).toBe('CHANNEL_CLOSED');
    expect(error.message).toBe('cannot send start: channel is closed');
  });

  it('channel close rejects pending receives', async () => {
    const [left] = await socketPair();
    const parent = new MessageChannel(left);
    const pending = parent.receive();
    parent.close();

    const error = await rejection(pending);
    expect(error.code).toBe('CHANNEL_CLOSED');
    expect(error.message).toBe('channel closed while waiting for a message');

    const later = await rejection(parent.receive());
    expect(later.message).toBe('cannot receive: channel is closed');
    expect(left.destroyed).toBe(true);
  });

  it('channel close rejects a send waiting for drain', async () => {
    const [left] = await socketPair();
    const parent = new MessageChannel(left);
    const sending = parent.send(bigConfigMessage(16 * 1024 * 1024, 'z'));
    parent.close();

    const error = await rejection(sending);
    expect(error.code).toBe('CHANNEL_CLOSED');
  });

  it('channel reports a stream error with its cause', async () => {
    const [left] = await socketPair();
    const parent = new MessageChannel(left);
    const pending = parent.receive();
    const cause = new Error('boom');
    left.destroy(cause);

    const error = await rejection(pending);
    expect(error.code).toBe('CHANNEL_CLOSED');
    expect(error.message).toBe('channel stream failed: boom');
    expect(error.cause).toBe(cause);
  });

  it('channel send rejects on a stream closed for writing', async () => {
    const [left] = await socketPair();
    const parent = new MessageChannel(left);
    left.end();

    const error = await rejection(parent.send({ type: 'start' }));
    expect(error.code).toBe('CHANNEL_CLOSED');
    expect(error.message).toBe('cannot send start: channel stream is closed for writing');
  });

  it('channel rejects a stream with an encoding', async () => {
    const [left, right] = await socketPair();
    left.setEncoding('utf8');
    const parent = new MessageChannel(left);
    right.write(encodeMessage({ type: 'ready' }));

    const error = await rejection(parent.receive());
    expect(error.code).toBe('CHANNEL_CLOSED');
    expect(error.message).toBe('channel stream emits strings (remove its setEncoding call)');
  });
});
