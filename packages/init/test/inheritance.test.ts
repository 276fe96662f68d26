import { execFileSync } from 'node:child_process';
import { closeSync, constants, createReadStream, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { clearNonBlocking, F_SETFL, getStatusFlags, loadLibc, O_NONBLOCK } from '@m-docker/syscalls';
import { afterEach, describe, expect, it } from 'vitest';

import {
  cleanUp,
  isRoot,
  makeConfig,
  makeTempDir,
  NEEDS_ROOT,
  runCommand,
  runInit,
  withDeadline,
} from './helpers.js';

afterEach(cleanUp);

// File status flags as /proc/PID/fdinfo prints them, in octal (<asm-generic/fcntl.h>).
const O_CLOEXEC = 0o2000000;

/** Sets O_NONBLOCK on the open file description behind `fd` (fcntl F_SETFL). */
function setNonBlocking(fd: number): void {
  if (loadLibc().fcntl(fd, F_SETFL, getStatusFlags(fd) | O_NONBLOCK) === -1) {
    throw new Error(`fcntl F_SETFL O_NONBLOCK on fd ${fd} failed`);
  }
}

/** Parses `ls -l /proc/self/fd` into a map from descriptor to link target. */
function parseFdListing(listing: string): Map<number, string> {
  const fds = new Map<number, string>();
  for (const match of listing.matchAll(/ (\d+) -> (.*)$/gm)) {
    fds.set(Number(match[1]), match[2] as string);
  }
  return fds;
}

/** Reads `fd` to end of file with blocking reads on the thread pool, and closes it. */
function readToEnd(fd: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = createReadStream('', { fd });
  stream.on('data', (chunk) => chunks.push(chunk as Buffer));
  const ended = new Promise<Buffer>((resolve, reject) => {
    stream.once('error', reject);
    stream.once('end', () => resolve(Buffer.concat(chunks)));
  });
  return withDeadline(ended, 'end of file on the stdout FIFO');
}

describe.skipIf(!isRoot)(`init command inheritance (${NEEDS_ROOT})`, () => {
  it('leaves only fds 0 to 2 open', async () => {
    // The init gets two more descriptors at fd 4 and 5, as a descriptor that
    // the CLI leaked would reach it. ls lists /proc/self/fd through a
    // descriptor of its own, the lowest free one, so getting 3 shows that
    // execve closed the init's pipe.
    const extra = openSync('/dev/null', 'r');
    const fds = parseFdListing(await runCommand(['/bin/ls', '-l', '/proc/self/fd'], {}, { extraFds: [extra, extra] }));
    closeSync(extra);

    expect([...fds.keys()].sort()).toEqual([0, 1, 2, 3]);
    expect(fds.get(3)).toBe('/proc/1/fd');
  });

  it('clears close-on-exec and non-blocking on stdio', async () => {
    // The init shares the open file description of each stdio descriptor
    // with the test. The test sets O_NONBLOCK on them while the init waits
    // for start, as a Node CLI may do to its own stdout pipe. Node itself
    // sets FD_CLOEXEC on fds 0-2 in the init.
    const dir = makeTempDir();
    const stdin = openSync('/dev/null', 'r');
    const stdout = openSync(join(dir, 'stdout'), 'w');
    const stderr = openSync(join(dir, 'stderr'), 'w');

    const argv = ['/bin/grep', '-H', '^flags', '/proc/self/fdinfo/0', '/proc/self/fdinfo/1', '/proc/self/fdinfo/2'];
    const run = await runInit(makeConfig({ argv }), {
      stdin,
      stdout,
      stderr,
      beforeStart: () => [stdin, stdout, stderr].forEach(setNonBlocking),
    });
    for (const fd of [stdin, stdout, stderr]) closeSync(fd);
    const output = readFileSync(join(dir, 'stdout'), 'utf8');
    const flags = [...output.matchAll(/fdinfo\/(\d):flags:\s+([0-7]+)$/gm)].map((match) => ({
      fd: Number(match[1]),
      flags: Number.parseInt(match[2] as string, 8),
    }));

    expect(run.status).toBe(0);
    expect(readFileSync(join(dir, 'stderr'), 'utf8')).toBe('');
    expect(flags.map(({ fd }) => fd)).toEqual([0, 1, 2]);
    for (const { fd, flags: value } of flags) {
      expect(value & O_NONBLOCK, `O_NONBLOCK on fd ${fd}`).toBe(0);
      expect(value & O_CLOEXEC, `O_CLOEXEC on fd ${fd}`).toBe(0);
    }
  });

  it('resets ignored and blocked signals', async () => {
    const status = await runCommand(['/bin/grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status']);

    expect(status).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('lets SIGPIPE kill writer of closed pipe', async () => {
    // 141 is 128 + SIGPIPE (13). With SIGPIPE ignored, yes would get EPIPE
    // and exit with status 1 instead.
    const run = await runInit(
      makeConfig({ argv: ['/bin/sh', '-c', '(yes; echo "yes exited $?" >&2) | head -c 1 >/dev/null'] }),
    );

    expect(run.stderr).toBe('yes exited 141\n');
    expect(run.status).toBe(0);
  });

  it('delivers 1 MiB to non-blocking stdout', async () => {
    // stdout is a FIFO whose write side gets O_NONBLOCK while the init waits
    // for start. Left set, it makes head's writes fail with EAGAIN whenever
    // the 64 KiB pipe buffer is full.
    const size = 1024 * 1024;
    const fifo = join(makeTempDir(), 'stdout');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY);
    clearNonBlocking(reader);
    const received = readToEnd(reader);

    const run = await runInit(makeConfig({ argv: ['/bin/head', '-c', String(size), '/dev/zero'] }), {
      stdout: writer,
      beforeStart: () => {
        setNonBlocking(writer);
        closeSync(writer);
      },
    });
    const bytes = await received;

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(bytes.length).toBe(size);
    expect(bytes.every((byte) => byte === 0)).toBe(true);
  });

  it('passes exactly config env', async () => {
    const env = ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8', 'EMPTY='];

    expect(await runCommand(['/usr/bin/env'], { env })).toBe(`${env.join('\n')}\n`);
  });

  it('runs in config cwd', async () => {
    expect(await runCommand(['/bin/pwd'], { cwd: '/usr/share' })).toBe('/usr/share\n');
  });
});
