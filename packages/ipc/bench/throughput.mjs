#!/usr/bin/env node
// Measures the throughput of the ipc wire format against a plain socket copy.
//
// For each payload size the script builds a stream of back-to-back frames. The
// stream has at least 64 MiB, or one frame for the largest size. Three modes
// are timed:
// - decoder: FrameDecoder.push over the stream in 64 KiB chunks, in one process.
// - socket copy: a child process writes the stream to its fd 3, the socketpair
//   that spawn() creates, and the parent only counts the bytes.
// - socket+decoder: the same transfer, with the parent decoding each chunk.
// Each number is the median of several runs. MB is 10^6 bytes.
//
// Usage: node bench/throughput.mjs [--json] [--runs N]
// The package must be built first (pnpm --filter @m-docker/ipc build).
import { spawn } from 'node:child_process';
import { readSync, writeSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { encodeFrame, FRAME_HEADER_SIZE, FrameDecoder } from '../dist/index.js';

const KIB = 1024;
const MIB = 1024 * KIB;

/** Payload sizes. The largest makes a frame of exactly 64 MiB, within the default limit. */
const PAYLOAD_SIZES = [KIB, 64 * KIB, MIB, 8 * MIB, 64 * MIB - FRAME_HEADER_SIZE];

/** Minimum bytes per run, so that runs of small frames last long enough to time. */
const STREAM_MIN_BYTES = 64 * MIB;

/** Chunk size for the in-process decoder, the size Node's net.Socket reads at a time. */
const DECODER_CHUNK_BYTES = 64 * KIB;

const CHANNEL_FD = 3;

/** Peer commands: 8 bytes, an opcode byte, 3 zero bytes and a big-endian u32 argument. */
const COMMAND_PREPARE = 1; // argument: payload size; the peer builds the stream and replies with 1 byte
const COMMAND_SEND = 2; // the peer writes the prepared stream
const COMMAND_EXIT = 3;

/** Builds `count` frames of `payloadSize` bytes back to back. */
function buildStream(payloadSize) {
  const payload = Buffer.alloc(payloadSize, 0x61);
  const frame = encodeFrame('config', payload);
  const count = Math.max(1, Math.ceil(STREAM_MIN_BYTES / frame.byteLength));
  const stream = Buffer.allocUnsafe(frame.byteLength * count);

  for (let index = 0; index < count; index++) {
    frame.copy(stream, index * frame.byteLength);
  }
  return { stream, frameCount: count };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Runs the child side: reads commands from fd 3 and writes with blocking calls, as the init does. */
function runPeer() {
  const command = Buffer.alloc(8);
  let prepared = Buffer.alloc(0);

  for (;;) {
    let filled = 0;
    while (filled < command.byteLength) {
      const count = readSync(CHANNEL_FD, command, filled, command.byteLength - filled, null);
      if (count === 0) return;
      filled += count;
    }

    const opcode = command[0];
    if (opcode === COMMAND_EXIT) return;
    if (opcode === COMMAND_PREPARE) {
      prepared = buildStream(command.readUInt32BE(4)).stream;
      writeFully(Buffer.from([1]));
    } else if (opcode === COMMAND_SEND) {
      writeFully(prepared);
    }
  }
}

function writeFully(data) {
  let written = 0;
  while (written < data.byteLength) {
    written += writeSync(CHANNEL_FD, data, written, data.byteLength - written);
  }
}

/** The parent's end of the socketpair, with one pending read at a time. */
class PeerConnection {
  #socket;
  #onData = () => {};

  constructor(socket) {
    this.#socket = socket;
    socket.on('data', (chunk) => this.#onData(chunk));
  }

  command(opcode, argument = 0) {
    const bytes = Buffer.alloc(8);
    bytes[0] = opcode;
    bytes.writeUInt32BE(argument, 4);
    this.#socket.write(bytes);
  }

  /** Resolves once `consume` returns true for a chunk. */
  receive(consume) {
    return new Promise((resolve, reject) => {
      this.#socket.once('error', reject);
      this.#onData = (chunk) => {
        if (consume(chunk)) {
          this.#onData = () => {};
          this.#socket.off('error', reject);
          resolve();
        }
      };
    });
  }
}

/** Times one transfer of the prepared stream. With `decode`, each chunk also goes through a FrameDecoder. */
async function timeTransfer(peer, byteCount, frameCount, decode) {
  let received = 0;
  let frames = 0;
  const decoder = new FrameDecoder();

  const done = peer.receive((chunk) => {
    received += chunk.byteLength;
    if (decode) frames += decoder.push(chunk).length;
    return received >= byteCount;
  });
  const started = performance.now();
  peer.command(COMMAND_SEND);
  await done;
  const seconds = (performance.now() - started) / 1000;

  if (received !== byteCount || (decode && frames !== frameCount)) {
    throw new Error(`transfer got ${received} of ${byteCount} bytes and ${frames} of ${frameCount} frames`);
  }
  return seconds;
}

function timeDecoder(stream, frameCount) {
  const decoder = new FrameDecoder();
  let frames = 0;
  const started = performance.now();

  for (let offset = 0; offset < stream.byteLength; offset += DECODER_CHUNK_BYTES) {
    frames += decoder.push(stream.subarray(offset, offset + DECODER_CHUNK_BYTES)).length;
  }
  decoder.end();
  const seconds = (performance.now() - started) / 1000;

  if (frames !== frameCount) throw new Error(`decoder returned ${frames} of ${frameCount} frames`);
  return seconds;
}

function rate(bytes, seconds, unit) {
  return bytes / seconds / unit;
}

async function measure(runs) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--peer'], {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
  });
  const peer = new PeerConnection(child.stdio[CHANNEL_FD]);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const results = [];

  try {
    for (const payloadSize of PAYLOAD_SIZES) {
      const { stream, frameCount } = buildStream(payloadSize);
      const ready = peer.receive(() => true);
      peer.command(COMMAND_PREPARE, payloadSize);
      await ready;

      const decoderSeconds = [];
      const copySeconds = [];
      const socketDecoderSeconds = [];
      // One untimed transfer warms up both processes, then the modes alternate so that drift hits both alike.
      await timeTransfer(peer, stream.byteLength, frameCount, true);
      for (let run = 0; run < runs; run++) {
        decoderSeconds.push(timeDecoder(stream, frameCount));
        copySeconds.push(await timeTransfer(peer, stream.byteLength, frameCount, false));
        socketDecoderSeconds.push(await timeTransfer(peer, stream.byteLength, frameCount, true));
      }

      const bytes = stream.byteLength;
      const seconds = {
        decoder: median(decoderSeconds),
        copy: median(copySeconds),
        socketDecoder: median(socketDecoderSeconds),
      };
      results.push({
        payloadBytes: payloadSize,
        frameBytes: payloadSize + FRAME_HEADER_SIZE,
        framesPerRun: frameCount,
        bytesPerRun: bytes,
        runs,
        medianSeconds: seconds,
        decoderMBps: rate(bytes, seconds.decoder, 1e6),
        copyMBps: rate(bytes, seconds.copy, 1e6),
        socketDecoderMBps: rate(bytes, seconds.socketDecoder, 1e6),
        decoderMiBps: rate(bytes, seconds.decoder, MIB),
        copyMiBps: rate(bytes, seconds.copy, MIB),
        socketDecoderMiBps: rate(bytes, seconds.socketDecoder, MIB),
      });
    }
  } finally {
    peer.command(COMMAND_EXIT);
    await exited;
  }
  return results;
}

function formatSize(bytes) {
  if (bytes % MIB === 0) return `${bytes / MIB} MiB`;
  if (bytes % KIB === 0) return `${bytes / KIB} KiB`;
  if ((bytes + FRAME_HEADER_SIZE) % MIB === 0) return `${(bytes + FRAME_HEADER_SIZE) / MIB} MiB - ${FRAME_HEADER_SIZE} B`;
  return `${bytes} B`;
}

function printTable(results, runs) {
  const header = ['payload', 'frames/run', 'decoder MB/s', 'socket copy MB/s', 'socket+decoder MB/s'];
  const rows = results.map((result) => [
    formatSize(result.payloadBytes),
    String(result.framesPerRun),
    result.decoderMBps.toFixed(0),
    result.copyMBps.toFixed(0),
    result.socketDecoderMBps.toFixed(0),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells) => cells.map((cell, column) => cell.padStart(widths[column])).join('  ');

  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} CPUs`);
  console.log(`median of ${runs} runs; MB = 10^6 bytes; decoder chunks of ${DECODER_CHUNK_BYTES / KIB} KiB`);
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

async function main() {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      runs: { type: 'string', default: '5' },
      peer: { type: 'boolean', default: false },
    },
  });

  if (values.peer) {
    runPeer();
    return;
  }

  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write(`throughput: invalid --runs value ${JSON.stringify(values.runs)}: expected an integer of at least 1\n`);
    process.exit(2);
  }

  const results = await measure(runs);
  if (values.json) {
    const machine = { node: process.version, cpu: os.cpus()[0]?.model ?? null, cpus: os.availableParallelism() };
    process.stdout.write(`${JSON.stringify({ machine, decoderChunkBytes: DECODER_CHUNK_BYTES, results }, null, 2)}\n`);
  } else {
    printTable(results, runs);
  }
}

await main();
