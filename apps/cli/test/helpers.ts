import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

/** The `m-docker` command as users start it; turbo builds dist/ before the tests run. */
export const CLI = fileURLToPath(new URL('../bin/m-docker', import.meta.url));

/** Root-only tests are skipped, with this reason, when the suite runs as another user. */
export const NOT_ROOT = process.getuid?.() !== 0;

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** Turns a hang into a failure; it is not a speed check. */
  deadlineMs?: number;
  /** Runs the CLI through another program first, such as setpriv. */
  prefix?: string[];
  /** Another copy of the launcher to run in place of bin/m-docker. */
  command?: string;
  onSpawn?: (child: ChildProcess) => void;
}

// The launcher finds node through PATH, so the folder of the node running
// the tests comes first.
const TEST_PATH = `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`;

const started = new Set<ChildProcess>();

// Every run writes a container record into the store, so each test file
// gets a store of its own, removed after its tests. A test that needs a
// fresh one passes --root or M_DOCKER_ROOT itself.
let testStore: string | undefined;

function defaultStore(): string {
  testStore ??= mkdtempSync(join(tmpdir(), 'm-docker-test-store-'));
  return testStore;
}

// Registered when a test file imports this module, so it runs after that
// file's tests; vitest's workers may end without a process 'exit' event.
afterAll(() => {
  if (testStore !== undefined) rmSync(testStore, { recursive: true, force: true });
  testStore = undefined;
});

// The suite runs once with each runtime forced (see package.json), so the
// runtime variables reach the CLI, and so does the run's own TMPDIR, where
// Bun may create a bun-node-* folder. So does the relative cgroup parent
// that vitest.shared.ts sets. The rest of the test's environment does not.
function inheritedEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['M_DOCKER_JS_RUNTIME', 'M_DOCKER_INIT_RUNTIME', 'TMPDIR', 'M_DOCKER_CGROUP_PARENT']) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  return env;
}

/** Returns the environment a test gives the CLI: PATH, its own store, the runtime and cgroup variables, then `extra`. */
export function cliEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: TEST_PATH, M_DOCKER_ROOT: defaultStore(), ...inheritedEnvironment(), ...extra };
}

/** Runs the built CLI with `args` and collects its output and exit status. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const [command, ...commandArgs] = [...(options.prefix ?? []), options.command ?? CLI, ...args] as [string, ...string[]];
  const child = spawn(command, commandArgs, {
    env: cliEnvironment(options.env),
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  started.add(child);
  options.onSpawn?.(child);

  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  if (options.input !== undefined) child.stdin?.end(options.input);

  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`m-docker ${args.join(' ')} did not finish within ${options.deadlineMs ?? 20_000} ms; stderr: ${stderr}`));
    }, options.deadlineMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(deadline);
      started.delete(child);
      resolve({ status, signal, stdout: Buffer.concat(stdout), stderr });
    });
  });
}

/** Kills every CLI process a test started and left running; for afterEach. */
export function killStartedCli(): void {
  for (const child of started) child.kill('SIGKILL');
  started.clear();
}

/** Creates a temporary directory and returns it with a function that removes it. */
export function makeTempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `m-docker-test-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Returns the pids of the direct children of `pid`, from /proc (Linux 3.5+). */
export function childPids(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(' ').map(Number);
  } catch {
    return [];
  }
}

/** Returns whether a process with `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Polls `check` until it returns true; throws after `deadlineMs` so a hang fails the test. */
export async function waitFor(check: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Returns the mount table of the namespace this test runs in (the host's). */
export function hostMounts(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

/** Applets linked into the test root file system. */
const BUSYBOX_APPLETS = ['sh', 'cat', 'echo', 'id', 'ls', 'mkdir', 'mount', 'pwd', 'sleep', 'touch', 'hostname', 'grep', 'test', 'true'];

/** Whether Debian's busybox-static is installed; the root file system tests copy /bin/busybox. */
export const HAS_BUSYBOX = existsSync('/bin/busybox');

/**
 * Writes a small root file system into `dir`: busybox with a few applets in
 * /bin, and /etc/passwd and /etc/group with the users root and app (1000,
 * also in the groups extra and more).
 */
export function writeBusyboxRootfs(dir: string): void {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'etc'));
  copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
  chmodSync(join(dir, 'bin', 'busybox'), 0o755);
  for (const applet of BUSYBOX_APPLETS) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\napp:x:1000:\nextra:x:2000:app\nmore:x:2001:app\n');
  writeFileSync(join(dir, 'etc', 'motd'), 'from the rootfs\n');
}

/** Lists every file and directory below `dir`, relative to it, sorted: a snapshot to compare before and after. */
export function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}
