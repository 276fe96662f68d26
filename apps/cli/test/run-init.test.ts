import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { buildTestImages, type TestImages } from '../../../scripts/test-images/build-test-images.mjs';
import { CliError } from '../src/cli-error.js';
import { elfLinkage, findTini, inspectExecutable, withInit } from '../src/run/docker-init.js';
import {
  CLI,
  childPids,
  cliEnvironment,
  HAS_BUSYBOX,
  hostMounts,
  isAlive,
  killStartedCli,
  makeTempDir,
  NOT_ROOT,
  runCli,
  waitFor,
  writeBusyboxRootfs,
} from './helpers.js';

// `run --init`: tini is PID 1 and starts COMMAND. On the host's root the
// host's tini runs by its path; with --rootfs or --image the static tini is
// bound read-only onto /sbin/docker-init. Each run with a root of its own
// uses a store of its own (--root).

const TINI_STATIC = '/usr/bin/tini-static';
const TINI_DYNAMIC = '/usr/bin/tini';
const HAS_TINI = existsSync(TINI_STATIC);
const HAS_SCRIPT = existsSync('/usr/bin/script');

// Starts an orphan, checks that PID 1 adopted it, kills it and waits until
// it is reaped. The loop bound turns a zombie that stays into a failure
// that shows its state, instead of a hang.
const ORPHAN_SCRIPT = [
  'pid=$( (sleep 100 >/dev/null 2>&1 & echo $!) )',
  'grep ^PPid: /proc/$pid/status',
  'kill $pid',
  'i=0',
  'while test -d /proc/$pid && test $i -lt 200; do sleep 0.05; i=$((i+1)); done',
  'if test -d /proc/$pid; then grep ^State: /proc/$pid/status; else echo reaped; fi',
].join('\n');

// As PID 1 without --init, this sh would ignore SIGTERM, having no handler for it.
const WAITING_SCRIPT = 'echo ready; sleep 100 & sleep 100';

let base: { path: string; remove: () => void };
let rootfs: string;
let mountsBefore: string;
let storeCount = 0;
const terminals = new Set<ChildProcess>();

beforeAll(() => {
  base = makeTempDir('init');
  if (NOT_ROOT || !HAS_BUSYBOX) return;
  rootfs = join(base.path, 'rootfs');
  writeBusyboxRootfs(rootfs);
  mountsBefore = hostMounts();
});

afterEach(() => {
  killStartedCli();
  for (const terminal of terminals) terminal.kill('SIGKILL');
  terminals.clear();
  if (mountsBefore !== undefined) expect(hostMounts()).toBe(mountsBefore);
});

afterAll(() => base?.remove());

function newStore(): string {
  storeCount += 1;
  const dir = join(base.path, `store-${storeCount}`);
  mkdirSync(dir);
  return dir;
}

function containerIds(store: string): string[] {
  const dir = join(store, 'containers');
  return existsSync(dir) ? readdirSync(dir) : [];
}

// /proc/PID/cmdline separates the arguments with NUL bytes.
function splitCmdline(output: string): string[] {
  return output.split('\0').slice(0, -1);
}

// Starts the CLI with `args` and returns its pid and COMMAND's output so
// far, for tests that signal the CLI.
function startCli(args: string[]) {
  let output = '';
  let cliPid = 0;
  const running = runCli(args, {
    onSpawn: (child) => {
      cliPid = child.pid as number;
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
    },
  });
  return { running, cliPid: () => cliPid, output: () => output };
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

// script(1) from util-linux runs the CLI on a new pseudo-terminal, which
// becomes the CLI's controlling terminal, as a shell's would be.
function scriptArgs(cliArgs: string[]): string[] {
  return ['-qec', [CLI, ...cliArgs].map(shellQuote).join(' '), '/dev/null'];
}

// Like runCli, with script's standard input kept open, so that the test
// can type into the terminal.
function startInTerminal(cliArgs: string[]) {
  const env = cliEnvironment();
  const child = spawn('script', scriptArgs(cliArgs), { env, stdio: ['pipe', 'pipe', 'pipe'] });
  terminals.add(child);
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => {
      terminals.delete(child);
      resolve(status);
    });
  });
  return { child, exited, output: () => output };
}

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

// An ELF file with only a header and program headers of the given p_types.
function writeElf(path: string, options: { bits: 32 | 64; littleEndian: boolean; types: number[] }): void {
  const is64 = options.bits === 64;
  const headerSize = is64 ? 64 : 52;
  const entrySize = is64 ? 56 : 32;
  const file = Buffer.alloc(headerSize + entrySize * options.types.length);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, options.littleEndian ? 1 : 2]).copy(file);
  const u16 = (value: number, offset: number) =>
    options.littleEndian ? file.writeUInt16LE(value, offset) : file.writeUInt16BE(value, offset);
  const u32 = (value: number, offset: number) =>
    options.littleEndian ? file.writeUInt32LE(value, offset) : file.writeUInt32BE(value, offset);
  if (is64) {
    if (options.littleEndian) file.writeBigUInt64LE(BigInt(headerSize), 32);
    else file.writeBigUInt64BE(BigInt(headerSize), 32);
  } else {
    u32(headerSize, 28);
  }
  u16(entrySize, is64 ? 54 : 42);
  u16(options.types.length, is64 ? 56 : 44);
  options.types.forEach((type, index) => {
    u32(type, headerSize + index * entrySize);
  });
  writeFileSync(path, file);
  chmodSync(path, 0o755);
}

const PT_LOAD = 1;
const PT_INTERP = 3;

describe('elfLinkage', () => {
  it.each([
    ['64-bit little-endian without PT_INTERP', 64, true, [PT_LOAD, PT_LOAD], 'static'],
    ['64-bit little-endian with PT_INTERP', 64, true, [PT_LOAD, PT_INTERP], 'dynamic'],
    ['32-bit big-endian without PT_INTERP', 32, false, [PT_LOAD], 'static'],
    ['32-bit big-endian with PT_INTERP', 32, false, [PT_INTERP, PT_LOAD], 'dynamic'],
    ['64-bit big-endian with PT_INTERP', 64, false, [PT_LOAD, PT_INTERP], 'dynamic'],
    ['no program headers', 64, true, [], 'static'],
  ] as const)('%s is %s', (name, bits, littleEndian, types, expected) => {
    const path = join(base.path, `elf-${name.replaceAll(' ', '-')}`);
    writeElf(path, { bits, littleEndian, types: [...types] });

    expect(elfLinkage(path)).toBe(expected);
  });

  it('truncated program headers are not ELF', () => {
    const path = join(base.path, 'elf-truncated');
    writeElf(path, { bits: 64, littleEndian: true, types: [PT_LOAD, PT_INTERP] });
    writeFileSync(path, readFileSync(path).subarray(0, 64 + 56 + 2));

    expect(elfLinkage(path)).toBe('not-elf');
  });

  it.each([
    ['shell script', '#!/bin/sh\nexit 0\n'],
    ['empty file', ''],
    ['header cut short', '\x7fELF\x02'],
  ])('%s is not ELF', (name, content) => {
    const path = join(base.path, `not-elf-${name.replaceAll(' ', '-')}`);
    writeFileSync(path, content);

    expect(elfLinkage(path)).toBe('not-elf');
  });

  it.skipIf(!HAS_TINI)("Debian's tini binaries are one static, one dynamic", () => {
    expect(elfLinkage(TINI_STATIC)).toBe('static');
    expect(elfLinkage(TINI_DYNAMIC)).toBe('dynamic');
  });
});

describe('findTini', () => {
  it('withInit puts tini and -- before argv', () => {
    expect(withInit('/sbin/docker-init', ['ls', '-l', '--'])).toEqual(['/sbin/docker-init', '--', 'ls', '-l', '--']);
  });

  it('inspectExecutable tells missing from not executable', () => {
    const plain = join(base.path, 'plain-file');
    writeFileSync(plain, 'data');
    chmodSync(plain, 0o644);

    expect(inspectExecutable(join(base.path, 'missing'))).toBe('missing');
    expect(inspectExecutable(base.path)).toBe('not-executable');
    // root passes access(X_OK) only when some execute bit is set.
    expect(inspectExecutable(plain)).toBe('not-executable');
  });

  it.each([
    ['a missing file', '/nonexistent/tini', false, 'no such file: set it to the path of a tini binary'],
    ['a relative path', 'bin/tini', false, 'the path is not absolute: give an absolute path'],
    ['a directory', '/', false, 'not an executable file: set it to the path of a tini binary'],
  ])('override with %s is rejected', (_case, path, needStatic, problem) => {
    const call = () => findTini({ M_DOCKER_TINI: path }, needStatic);

    expect(call).toThrow(CliError);
    expect(call).toThrow(`invalid M_DOCKER_TINI ${JSON.stringify(path)}: ${problem}, or unset it to use /usr/bin/tini-static`);
  });

  it('override that is a script works only on the host root', () => {
    const script = join(base.path, 'tini-script');
    writeFileSync(script, '#!/bin/sh\nexec "$@"\n');
    chmodSync(script, 0o755);

    expect(findTini({ M_DOCKER_TINI: script }, false)).toBe(script);
    expect(() => findTini({ M_DOCKER_TINI: script }, true)).toThrow(
      `invalid M_DOCKER_TINI ${JSON.stringify(script)}: is not an ELF binary, so it cannot run inside the root of a container started with --image or --rootfs: set it to a statically linked tini, or unset it to use /usr/bin/tini-static`,
    );
  });

  it.skipIf(!HAS_TINI)('dynamic override is rejected for a root of its own', () => {
    expect(findTini({ M_DOCKER_TINI: TINI_DYNAMIC }, false)).toBe(TINI_DYNAMIC);
    expect(() => findTini({ M_DOCKER_TINI: TINI_DYNAMIC }, true)).toThrow(/^invalid M_DOCKER_TINI "\/usr\/bin\/tini": is dynamically linked, so/);
  });

  it.skipIf(!HAS_TINI)('default is tini-static for both roots', () => {
    expect(findTini({}, false)).toBe(TINI_STATIC);
    expect(findTini({}, true)).toBe(TINI_STATIC);
    expect(findTini({ M_DOCKER_TINI: '' }, true)).toBe(TINI_STATIC);
  });
});

describe.skipIf(NOT_ROOT || !HAS_TINI)('run --init on the host root (needs root and /usr/bin/tini-static)', () => {
  it('tini is PID 1 and COMMAND a later PID', async () => {
    const result = await runCli(['run', '--init', 'sh', '-c', 'cat /proc/1/cmdline; echo; echo $$']);
    const [cmdline, pid] = result.stdout.toString().split('\n');

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(splitCmdline(cmdline as string)).toEqual([TINI_STATIC, '--', 'sh', '-c', 'cat /proc/1/cmdline; echo; echo $$']);
    expect(Number(pid)).toBeGreaterThanOrEqual(2);
  });

  it('--init=false keeps COMMAND as PID 1', async () => {
    const result = await runCli(['run', '--init=false', 'sh', '-c', 'echo $$']);

    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toBe('1\n');
  });

  it.each([
    ['exit 7', 7],
    ['exit 0', 0],
    ['kill -KILL $$', 137],
    ['kill -TERM $$', 143],
  ])('status of sh -c %j passes through as %i', async (script, status) => {
    const result = await runCli(['run', '--init', 'sh', '-c', script]);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(status);
  });

  it('missing COMMAND gives 127 from tini', async () => {
    const result = await runCli(['run', '--init', 'nosuch-command']);

    expect(result.status).toBe(127);
    expect(result.stderr).toContain('exec nosuch-command failed: No such file or directory');
  });

  it('orphans are reaped', async () => {
    const result = await runCli(['run', '--init', 'sh', '-c', ORPHAN_SCRIPT], { deadlineMs: 30_000 });

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toBe('PPid:\t1\nreaped\n');
  });

  it('SIGTERM to the CLI ends COMMAND', async () => {
    const container = startCli(['run', '--init', 'sh', '-c', WAITING_SCRIPT]);
    await waitFor(() => container.output().includes('ready\n'), 'the container to start');
    const initPid = childPids(container.cliPid())[0] as number;

    process.kill(container.cliPid(), 'SIGTERM');
    const result = await container.running;

    expect(result.status).toBe(143);
    expect(isAlive(initPid)).toBe(false);
  });

  it('CLI ends when tini is killed', async () => {
    const container = startCli(['run', '--init', 'sh', '-c', WAITING_SCRIPT]);
    await waitFor(() => container.output().includes('ready\n'), 'the container to start');
    const initPid = childPids(container.cliPid())[0] as number;
    const commandPid = childPids(initPid)[0] as number;
    expect(readComm(initPid)).toBe('tini-static');

    process.kill(initPid, 'SIGKILL');
    const result = await container.running;

    expect(result.status).toBe(137);
    await waitFor(() => !isAlive(commandPid), 'COMMAND to die with PID 1');
  });

  it('-i passes standard input through tini', async () => {
    const result = await runCli(['run', '-i', '--init', 'cat'], { input: 'through tini\n' });

    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toBe('through tini\n');
  });

  it('missing tini gives 125', async () => {
    const result = await runCli(['run', '--init', 'true'], { env: { M_DOCKER_TINI: '/nonexistent/tini' } });

    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      'm-docker: invalid M_DOCKER_TINI "/nonexistent/tini": no such file: set it to the path of a tini binary, or unset it to use /usr/bin/tini-static\n',
    );
  });

  it('dynamic tini works on the host root', async () => {
    const result = await runCli(['run', '--init', 'cat', '/proc/1/cmdline'], { env: { M_DOCKER_TINI: TINI_DYNAMIC } });

    expect(result.status).toBe(0);
    expect(splitCmdline(result.stdout.toString())).toEqual([TINI_DYNAMIC, '--', 'cat', '/proc/1/cmdline']);
  });
});

describe.skipIf(NOT_ROOT || !HAS_TINI || !HAS_SCRIPT)('run --init with a terminal (needs root, tini and script)', () => {
  it('COMMAND gets the foreground of the terminal', async () => {
    // Fields 5 and 8 of /proc/PID/stat: the process group and the
    // terminal's foreground process group, 0 when that is outside the
    // container's PID namespace. script's standard input stays open: at its
    // end, script writes a byte into its terminal, which m-docker passes on
    // to the container's pty, whose echo (^@ with util-linux 2.38) could
    // then come before the output.
    const terminal = startInTerminal(['run', '-it', '--init', 'sh', '-c', 'tty; cut -d" " -f5,8 /proc/$$/stat; echo $$']);
    const status = await terminal.exited;
    terminal.child.stdin.end();
    const [tty, groups, pid] = terminal.output().split('\r\n');

    expect(status).toBe(0);
    expect(tty).toMatch(/^\/dev\/pts\/\d+$/);
    expect(groups).toBe(`${pid} ${pid}`);
  });

  it('Ctrl-C reaches COMMAND', async () => {
    const terminal = startInTerminal(['run', '-it', '--init', 'sh', '-c', 'trap "echo got INT; exit 4" INT; echo ready; while :; do sleep 0.05; done']);
    await waitFor(() => terminal.output().includes('ready'), 'the container to start');

    terminal.child.stdin.write('\x03');
    const status = await terminal.exited;
    terminal.child.stdin.end();

    expect(status).toBe(4);
    expect(terminal.output()).toContain('got INT');
  });
});

describe.skipIf(NOT_ROOT || !HAS_TINI || !HAS_BUSYBOX)('run --init with --rootfs (needs root, tini and /bin/busybox)', () => {
  function runInRootfs(args: string[], env?: NodeJS.ProcessEnv) {
    const store = newStore();
    return { store, running: runCli(['--root', store, 'run', '--rm', '--init', '--rootfs', rootfs, ...args], { env, deadlineMs: 30_000 }) };
  }

  it('/sbin/docker-init is PID 1', async () => {
    const { running } = runInRootfs(['sh', '-c', 'cat /proc/1/cmdline; echo; echo $$']);
    const result = await running;
    const [cmdline, pid] = result.stdout.toString().split('\n');

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(splitCmdline(cmdline as string)).toEqual(['/sbin/docker-init', '--', 'sh', '-c', 'cat /proc/1/cmdline; echo; echo $$']);
    expect(Number(pid)).toBeGreaterThanOrEqual(2);
  });

  it('/sbin/docker-init is read-only', async () => {
    const before = readFileSync(TINI_STATIC);
    const { running } = runInRootfs(['sh', '-c', 'echo changed > /sbin/docker-init; echo status $?']);
    const result = await running;

    expect(result.stdout.toString()).toBe('status 1\n');
    expect(result.stderr).toContain('Read-only file system');
    expect(readFileSync(TINI_STATIC).equals(before)).toBe(true);
  });

  it('orphans are reaped', async () => {
    const { running } = runInRootfs(['sh', '-c', ORPHAN_SCRIPT]);
    const result = await running;

    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toBe('PPid:\t1\nreaped\n');
  });

  it('SIGTERM to the CLI ends COMMAND', async () => {
    const container = startCli(['--root', newStore(), 'run', '--rm', '--init', '--rootfs', rootfs, 'sh', '-c', WAITING_SCRIPT]);
    await waitFor(() => container.output().includes('ready\n'), 'the container to start');

    process.kill(container.cliPid(), 'SIGTERM');
    const result = await container.running;

    expect(result.status).toBe(143);
  });

  it('status passes through with --read-only', async () => {
    const store = newStore();
    const result = await runCli(['--root', store, 'run', '--rm', '--read-only', '--init', '--rootfs', rootfs, 'sh', '-c', 'exit 7']);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(7);
  });

  it('dynamic tini is rejected before the container exists', async () => {
    const { store, running } = runInRootfs(['true'], { M_DOCKER_TINI: TINI_DYNAMIC });
    const result = await running;

    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(/^m-docker: invalid M_DOCKER_TINI "\/usr\/bin\/tini": is dynamically linked, so it cannot run inside the root/);
    expect(containerIds(store)).toEqual([]);
  });

  it('volume on /sbin/docker-init is rejected', async () => {
    const { store, running } = runInRootfs(['-v', `${TINI_STATIC}:/sbin/docker-init`, 'true']);
    const result = await running;

    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      'm-docker: --init binds tini onto /sbin/docker-init, and a -v or --tmpfs mount uses that path too: mount it elsewhere\n',
    );
    expect(containerIds(store)).toEqual([]);
  });
});

describe.skipIf(NOT_ROOT || !HAS_TINI || !HAS_BUSYBOX)('run --init with --image (needs root, tini and /bin/busybox)', () => {
  let images: TestImages;

  beforeAll(async () => {
    images = await buildTestImages(join(base.path, 'images'));
  }, 60_000);

  it('image command runs below /sbin/docker-init', async () => {
    const store = newStore();
    const imported = await runCli(['--root', store, 'image', 'import', images.dockerArchive], { deadlineMs: 60_000 });
    expect(imported.status).toBe(0);

    const result = await runCli(['--root', store, 'run', '--rm', '--init', '--image', 'busybox', 'sh', '-c', 'cat /proc/1/cmdline; exit 5']);

    expect(result.stderr).toBe('');
    expect(result.status).toBe(5);
    expect(splitCmdline(result.stdout.toString())).toEqual(['/sbin/docker-init', '--', 'sh', '-c', 'cat /proc/1/cmdline; exit 5']);
  });
});
