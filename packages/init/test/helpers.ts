import type { ChildProcess, StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type ContainerConfig, DEFAULT_CAPABILITIES, type InitFailure, type Message, MessageChannel, type RootConfig } from '@m-docker/ipc';
import { scriptCommand } from '@m-docker/runtime';
import { spawnInNamespaces } from '@m-docker/syscalls';

import { initEntryPath } from '../src/index.js';

// The init mounts over / and /proc in its own mount namespace, so every
// test starts it through spawnInNamespaces and never in the test's own
// namespaces. The built dist/main.js is what runs: `pnpm build` comes first.

export const isRoot = process.getuid?.() === 0;

/** Why the tests that start the init are skipped: unshare(2) of these namespaces needs CAP_SYS_ADMIN. */
export const NEEDS_ROOT = 'starting the init needs root (unshare of mnt, pid, uts, ipc and net namespaces)';

/** The namespaces the CLI creates for a container. */
export const CONTAINER_NAMESPACES = ['uts', 'ipc', 'net', 'mnt', 'pid'] as const;

/** Deadline that turns a hung init into a failure. No test measures time with it. */
export const HANG_DEADLINE_MS = 15_000;

/** Returns a config for the init with a fresh id. Each field in `overrides` replaces the default. */
export function makeConfig(overrides: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    id: randomBytes(32).toString('hex'),
    argv: ['/bin/true'],
    env: ['PATH=/usr/bin:/bin'],
    hostname: 'init-test',
    cwd: '/',
    interactive: false,
    terminal: false,
    root: null,
    mounts: [],
    user: null,
    capabilities: [...DEFAULT_CAPABILITIES],
    logLevel: 'warn',
    ...overrides,
  };
}

/** How a started init ended. */
export interface InitExit {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** A running init and the parent's end of its pipe. */
export interface InitProcess {
  child: ChildProcess;
  /** The parent's end of the socketpair that is fd 3 in the init. */
  pipe: Duplex;
  channel: MessageChannel;
  /** Resolves once the init (or the command it became) exited and its stdio closed. */
  exited: Promise<InitExit>;
}

export interface StartOptions {
  /** fd 0 of the init: 'ignore' gives it /dev/null, a number passes that open descriptor. */
  stdin?: 'ignore' | 'pipe' | number;
  /** fd 1 of the init: a pipe collected into InitExit.stdout, or an open file descriptor. */
  stdout?: 'pipe' | number;
  /** fd 2 of the init: a pipe collected into InitExit.stderr, or an open file descriptor. */
  stderr?: 'pipe' | number;
  /** Open descriptors that the init gets as fd 4, 5 and so on, after its pipe. */
  extraFds?: number[];
}

const started = new Set<ChildProcess>();
const tempDirs: string[] = [];

/** Starts dist/main.js as PID 1 of new namespaces with a socketpair at fd 3. */
export function startInit(options: StartOptions = {}): InitProcess {
  const stdio: StdioOptions = [
    options.stdin ?? 'ignore',
    options.stdout ?? 'pipe',
    options.stderr ?? 'pipe',
    'pipe',
    ...(options.extraFds ?? []),
  ];
  // Node or Bun, as M_DOCKER_JS_RUNTIME selects: the suite runs once with each.
  const command = scriptCommand(initEntryPath());
  const child = spawnInNamespaces(command.executable, command.args, {
    namespaces: CONTAINER_NAMESPACES,
    stdio,
    // As from the CLI: the init gets no environment, the command's comes in the config.
    env: {},
  });
  trackProcess(child);

  const pipe = child.stdio[3] as Duplex | null;
  if (!pipe) throw new Error('spawn gave the init no pipe at fd 3');
  return { child, pipe, channel: new MessageChannel(pipe), exited: collectExit(child) };
}

/** Records a child so that cleanUp kills it if it still runs. */
export function trackProcess<T extends ChildProcess>(child: T): T {
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

/** Returns the absolute path of test/fixtures/`name`. */
export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

/** Output and status of a finished helper process such as a fixture. */
export interface ProcessResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a child's stdout and stderr as text until it exits, failing after HANG_DEADLINE_MS. */
export async function waitForProcess(child: ChildProcess): Promise<ProcessResult> {
  const exit = await withDeadline(collectExit(child), `process ${child.pid} to exit`);
  return { ...exit, stdout: exit.stdout.toString('utf8') };
}

function collectExit(child: ChildProcess): Promise<InitExit> {
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status, signal) => resolve({ status, signal, stdout: Buffer.concat(stdout), stderr }));
  });
}

/** Everything the parent saw from one init: its messages in order and how it ended. */
export interface InitRun extends InitExit {
  messages: Message[];
}

export interface RunOptions extends StartOptions {
  /** Runs after ready and before start, while the init waits. */
  beforeStart?: () => void;
}

/**
 * Plays the CLI's side of the protocol to the end: sends `config`, sends
 * start after ready, and collects the messages until end of stream or an
 * error message. A command that ran leaves messages `[ready]`.
 */
export async function runInit(config: ContainerConfig, options: RunOptions = {}): Promise<InitRun> {
  const init = startInit(options);
  const messages: Message[] = [];

  await init.channel.send({ type: 'config', config });
  for (;;) {
    const message = await withDeadline(init.channel.receive(), 'a message from the init');
    if (message === undefined) break;
    messages.push(message);
    if (message.type === 'error') break;
    if (message.type === 'ready') {
      options.beforeStart?.();
      await init.channel.send({ type: 'start' });
    }
  }
  return { messages, ...(await waitForExit(init)) };
}

/** Runs `argv` in a container and returns the command's stdout as text. Throws unless the command exited with 0. */
export async function runCommand(
  argv: string[],
  overrides: Partial<ContainerConfig> = {},
  options: RunOptions = {},
): Promise<string> {
  const run = await runInit(makeConfig({ argv, ...overrides }), options);
  if (run.messages.length !== 1 || run.status !== 0) {
    throw new Error(
      `${JSON.stringify(argv)} failed: status ${run.status ?? run.signal}, messages ${JSON.stringify(run.messages)}, stderr ${run.stderr}`,
    );
  }
  return run.stdout.toString('utf8');
}

/** Returns the failure from the error message that `run` ended with, or throws when there is none. */
export function failureOf(run: InitRun): InitFailure {
  const last = run.messages.at(-1);
  if (last?.type !== 'error') {
    throw new Error(`expected an error message, got ${JSON.stringify(run.messages)} (status ${run.status})`);
  }
  return last.error;
}

/** Waits for the init to exit, failing after HANG_DEADLINE_MS. */
export function waitForExit(init: InitProcess): Promise<InitExit> {
  return withDeadline(init.exited, 'the init to exit');
}

/** Rejects when `promise` has not settled within HANG_DEADLINE_MS, so a hang fails with a message naming `awaited`. */
export function withDeadline<T>(promise: Promise<T>, awaited: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${HANG_DEADLINE_MS} ms waiting for ${awaited}`)), HANG_DEADLINE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Returns the mountinfo of the test process's own (the host's) mount namespace. */
export function readHostMountinfo(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

/** Creates a temporary directory that cleanUp removes. */
export function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'm-docker-init-'));
  tempDirs.push(dir);
  return dir;
}

/** Writes a shell script with `mode` (0o755 by default) and returns its path. */
export function writeScript(dir: string, name: string, body: string, mode = 0o755): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

/** Creates the directory `dir`/`name` and returns its path. */
export function makeDir(dir: string, name: string): string {
  const path = join(dir, name);
  mkdirSync(path);
  return path;
}

/** Kills, by pid, every init a test started that still runs, waits for each to exit and removes the temporary directories. */
export async function cleanUp(): Promise<void> {
  const exits = [...started].map((child) => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    return exited;
  });
  await Promise.all(exits);

  for (const dir of tempDirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Applets linked into the test root file system, all from one busybox binary. */
const BUSYBOX_APPLETS = ['sh', 'cat', 'echo', 'id', 'ls', 'mkdir', 'pwd', 'sleep', 'stat', 'touch', 'readlink', 'test'];

/** Returns whether Debian's busybox-static is installed, which the root file system tests copy. */
export const hasBusybox = existsSync('/bin/busybox');

/**
 * Creates a root file system for the init's overlay: a lower directory
 * with busybox, /etc/passwd and /etc/group, and empty upper, work and target
 * directories beside it, all in one temporary directory (rootBase returns
 * it). `overrides` replaces fields of the RootConfig.
 */
export function makeRoot(overrides: Partial<RootConfig> = {}): RootConfig {
  const base = makeTempDir();
  const lower = join(base, 'lower');
  mkdirSync(join(lower, 'bin'), { recursive: true });
  mkdirSync(join(lower, 'etc'));
  copyFileSync('/bin/busybox', join(lower, 'bin', 'busybox'));
  chmodSync(join(lower, 'bin', 'busybox'), 0o755);
  for (const applet of BUSYBOX_APPLETS) symlinkSync('busybox', join(lower, 'bin', applet));
  writeFileSync(join(lower, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  writeFileSync(join(lower, 'etc', 'group'), 'root:x:0:\napp:x:1000:\nextra:x:2000:app\nmore:x:2001:root,app\n');
  for (const dir of ['upper', 'work', 'rootfs']) mkdirSync(join(base, dir));

  return {
    target: join(base, 'rootfs'),
    lowerDirs: [lower],
    upperDir: join(base, 'upper'),
    workDir: join(base, 'work'),
    readonly: false,
    shmSize: 64 * 1024 * 1024,
    ...overrides,
  };
}

/** Returns the temporary directory that makeRoot created for `root`. */
export function rootBase(root: RootConfig): string {
  return dirname(root.target);
}
