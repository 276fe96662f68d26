import { scriptCommand } from '@m-docker/runtime';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Duplex, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  encodeFrame,
  encodeMessage,
  type InitFailure,
  type Message,
  MessageChannel,
  WireFormatError,
} from '../src/index.js';
import { sampleConfig } from './arbitraries.js';

/*
 * Each test spawns a real Node process with the channel socketpair at fd 3,
 * as the CLI spawns the container's init. The fixtures import the built
 * package from dist/, so these tests need `pnpm --filter @m-docker/ipc build`
 * first (turbo's test task depends on build).
 */

const DIST_ENTRY = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const MIB = 1024 * 1024;

interface Fixture {
  child: ChildProcess;
  /** The parent's end of the socketpair. */
  socket: Duplex;
  /** Resolves with the exit status and everything the child printed. */
  result: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

const children: ChildProcess[] = [];

function readAll(stream: Readable | null): Promise<string> {
  const chunks: Buffer[] = [];
  stream?.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => {
    if (stream === null) resolve('');
    stream?.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function spawnFixture(name: string, args: string[] = []): Fixture {
  const script = fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
  // stdout and stderr are pipes, not inherited, so the tests can assert what the child printed.
  // Node or Bun, as M_DOCKER_JS_RUNTIME selects: the suite runs once with each.
  const command = scriptCommand(script, args);
  const child = spawn(command.executable, command.args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  children.push(child);

  const stdout = readAll(child.stdout);
  const stderr = readAll(child.stderr);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const result = Promise.all([exit, stdout, stderr]).then(([status, out, err]) => ({
    ...status,
    stdout: out,
    stderr: err,
  }));

  return { child, socket: child.stdio[3] as Duplex, result };
}

async function rejection(promise: Promise<unknown>): Promise<WireFormatError> {
  try {
    await promise;
  } catch (error) {
    expect(WireFormatError.isInstance(error)).toBe(true);
    return error as WireFormatError;
  }
  throw new Error('expected a rejection with WireFormatError, but the promise resolved');
}

/** Builds a config whose argv[1] has exactly `length` UTF-16 code units of shell and Unicode trouble. */
function largeConfig(length: number): Message & { type: 'config' } {
  const pattern = `a "b" 'c' $(rm -rf /) *.txt\n\t😀 é\\`;
  const argument = pattern.repeat(Math.ceil(length / pattern.length)).slice(0, length);
  return { type: 'config', config: sampleConfig({ argv: ['/bin/echo', argument], cwd: '/tmp/dir with space' }) };
}

/** Returns the InitFailure of an error message. Check the type first, so a failure points at it. */
function failureOf(message: Message | undefined): InitFailure {
  return (message as Message & { type: 'error' }).error;
}

beforeAll(() => {
  if (!existsSync(DIST_ENTRY)) {
    throw new Error(`${DIST_ENTRY} is missing: run \`pnpm --filter @m-docker/ipc build\` before these tests`);
  }
});

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  }
});

describe('channel between processes', () => {
  it('process exchanges 8 MiB messages', async () => {
    const fixture = spawnFixture('exchange.mjs');
    const channel = new MessageChannel(fixture.socket);
    const config = largeConfig(8 * MIB);

    await channel.send(config);
    await channel.send({ type: 'start' });
    const reply = await channel.receive();
    channel.close();

    expect(reply).toEqual({
      type: 'error',
      error: { stage: 'exec', code: 'ENOENT', errno: 2, message: config.config.argv[1], path: '/tmp/dir with space' },
    });
    expect(await fixture.result).toMatchObject({ code: 0, stderr: '' });
  });

  it('process exchange survives init writing first', async () => {
    const fixture = spawnFixture('exchange.mjs', ['write-first', String(8 * MIB)]);
    const channel = new MessageChannel(fixture.socket);
    const config = largeConfig(8 * MIB);

    // Init blocks writing 8 MiB while the parent blocks sending 8 MiB, and
    // only the channel's continuous reading lets both finish.
    await Promise.all([channel.send(config), channel.send({ type: 'start' })]);
    const first = await channel.receive();
    const second = await channel.receive();
    channel.close();

    expect(first?.type).toBe('error');
    expect(failureOf(first).message).toBe('w'.repeat(8 * MIB));
    expect(second?.type).toBe('error');
    expect(failureOf(second).message).toBe(config.config.argv[1]);
    expect(await fixture.result).toMatchObject({ code: 0, stderr: '' });
  });

  it('readMessageSync leaves the next message in the socket', async () => {
    const fixture = spawnFixture('read-messages.mjs');
    const frames = Buffer.concat([
      encodeMessage({ type: 'config', config: sampleConfig() }),
      encodeMessage({ type: 'start' }),
    ]);

    // One write before the child runs, so both frames wait in the socket for the first read.
    fixture.socket.end(frames);

    const result = await fixture.result;
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout.split('\n')).toEqual([
      JSON.stringify({ type: 'config', argvLengths: sampleConfig().argv.map((arg) => arg.length) }),
      JSON.stringify({ type: 'start' }),
      'eof',
      '',
    ]);
  });

  it('readMessageSync returns undefined at end of stream', async () => {
    const fixture = spawnFixture('read-messages.mjs');
    fixture.socket.end();

    expect(await fixture.result).toMatchObject({ code: 0, stdout: 'eof\n', stderr: '' });
  });

  it.each([
    { name: 'header', bytes: 3, message: 'end of stream after 3 of 8 header bytes', close: 'end' },
    { name: 'payload', bytes: 108, message: 'end of stream after 100 of 4096 payload bytes', close: 'destroy' },
  ] as const)('readMessageSync rejects parent closing mid-$name', async ({ bytes, message, close }) => {
    const fixture = spawnFixture('read-messages.mjs');
    const partial = encodeFrame('config', new Uint8Array(4096)).subarray(0, bytes);

    if (close === 'end') {
      fixture.socket.end(partial);
    } else {
      fixture.socket.write(partial, () => fixture.socket.destroy());
    }

    const result = await fixture.result;
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`TRUNCATED: ${message}\n`);
    expect(result.stdout).toBe('');
  });

  it.each([
    { name: 'header', bytes: 3, message: 'end of stream after 3 of 8 header bytes' },
    { name: 'payload', bytes: 108, message: 'end of stream after 100 of 4096 payload bytes' },
  ])('receive rejects init dying mid-$name', async ({ bytes, message }) => {
    const fixture = spawnFixture('write-partial-frame.mjs', [String(bytes)]);
    const channel = new MessageChannel(fixture.socket);

    const error = await rejection(channel.receive());
    expect(error.code).toBe('TRUNCATED');
    expect(error.message).toBe(message);
    expect(await fixture.result).toMatchObject({ code: 0, stderr: '' });
  });

  it('receive returns undefined when init is killed', async () => {
    const fixture = spawnFixture('read-messages.mjs');
    const channel = new MessageChannel(fixture.socket);
    const pending = channel.receive();

    fixture.child.kill('SIGKILL');

    expect(await pending).toBeUndefined();
    expect(await fixture.result).toMatchObject({ code: null, signal: 'SIGKILL' });
  });

  it('send rejects when init exits before reading', async () => {
    const fixture = spawnFixture('exit-at-once.mjs');
    const channel = new MessageChannel(fixture.socket);

    const error = await rejection(channel.send(largeConfig(32 * MIB)));
    expect(error.code).toBe('CHANNEL_CLOSED');
    expect(error.message).toMatch(/^(sending config failed: |cannot send config: |channel closed before config)/);
    expect(await fixture.result).toMatchObject({ code: 0 });
  });

  it('receive returns the failure of an init that exits', async () => {
    const fixture = spawnFixture('write-message.mjs', [String(MIB)]);
    const channel = new MessageChannel(fixture.socket);

    // Init writes its failure and exits without reading the config.
    const sending = rejection(channel.send(largeConfig(32 * MIB)));
    const failure = await channel.receive();

    expect(failure?.type).toBe('error');
    expect(failureOf(failure).message).toBe('m'.repeat(MIB));
    expect((await sending).code).toBe('CHANNEL_CLOSED');
    expect(await fixture.result).toMatchObject({ code: 0, stderr: '' });

    // Init closed its end with our config unread, so Linux reports ECONNRESET
    // instead of a clean end of stream.
    const after = await channel.receive().then(
      (message) => ({ message }),
      (error: WireFormatError) => ({ code: error.code }),
    );
    expect([{ message: undefined }, { code: 'CHANNEL_CLOSED' }]).toContainEqual(after);
  });

  it('writeMessageSync rejects when the parent closes', async () => {
    const fixture = spawnFixture('write-message.mjs', [String(16 * MIB)]);
    fixture.socket.destroy();

    const result = await fixture.result;
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^CHANNEL_CLOSED: write on fd 3 failed: (EPIPE|ECONNRESET)\b/);
  });
});
