import { scriptCommand } from '@m-docker/runtime';
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const PACKAGE_ROOT = fileURLToPath(new URL('../', import.meta.url));

// Fixtures import ../../dist/index.js, so a stale build would test old code.
// `turbo run test` builds first, but `vitest run` alone does not.
function checkBuildIsCurrent(): void {
  const built = join(PACKAGE_ROOT, 'dist', 'index.js');
  const fix = 'run `pnpm --filter @m-docker/syscalls build` first';
  if (!existsSync(built)) throw new Error(`dist/index.js is missing: ${fix}`);

  const builtAt = statSync(built).mtimeMs;
  const sources = readdirSync(join(PACKAGE_ROOT, 'src')).map((name) => join(PACKAGE_ROOT, 'src', name));
  const newer = sources.filter((source) => statSync(source).mtimeMs > builtAt);
  if (newer.length > 0) throw new Error(`dist/index.js is older than ${newer.join(', ')}: ${fix}`);
}

checkBuildIsCurrent();

/** Returns the absolute path of fixtures/<name>. */
export function fixturePath(name: string): string {
  return join(FIXTURES, name);
}

export const isRoot = process.getuid?.() === 0;

/** Output and exit state of a finished process. */
export interface ExitResult {
  stdout: string;
  stderr: string;
  status: number | null;
  signal: NodeJS.Signals | null;
}

const startedProcesses = new Set<ChildProcess>();
const tempDirs: string[] = [];

/** Records a child so that `cleanUp` kills it if it still runs. */
export function track<T extends ChildProcess>(child: T): T {
  startedProcesses.add(child);
  child.once('exit', () => startedProcesses.delete(child));
  return child;
}

/**
 * Starts fixtures/<name> under Node or Bun, as M_DOCKER_JS_RUNTIME selects,
 * optionally through a wrapper command such as setpriv.
 */
export function startFixture(name: string, args: readonly string[] = [], wrapper: readonly string[] = []): ChildProcess {
  const runtime = scriptCommand(fixturePath(name), args);
  const [command, ...commandArgs] = [...wrapper, runtime.executable, ...runtime.args] as [string, ...string[]];
  const options: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'] };
  return track(spawn(command, commandArgs, options));
}

/** Collects a child's stdout and stderr until it exits. */
export function waitForExit(child: ChildProcess): Promise<ExitResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status, signal) => resolve({ stdout, stderr, status, signal }));
  });
}

/** Runs a fixture to its end. */
export function runFixture(name: string, args: readonly string[] = [], wrapper: readonly string[] = []) {
  const child = startFixture(name, args, wrapper);
  child.stdin?.end();
  return waitForExit(child);
}

/** One output line of fixtures/run-calls.mjs. */
export interface CallResult {
  call: string;
  value?: unknown;
  error?: {
    name: string;
    isSyscallError: boolean;
    syscall: string;
    code: string;
    errno: number;
    path?: string;
    message: string;
  };
}

/** A call for fixtures/run-calls.mjs: an export of the package or a probe, then its arguments. */
export type Call = [string, ...unknown[]];

/**
 * Runs `calls` in a fixture process that first unshares `namespaces`. With
 * 'mnt' it makes / private before the first call. Returns one result per call.
 */
export async function runCalls(namespaces: readonly string[], calls: readonly Call[]): Promise<CallResult[]> {
  const result = await runFixture('run-calls.mjs', [JSON.stringify({ namespaces, calls })]);
  if (result.status !== 0) {
    throw new Error(`run-calls.mjs exited with ${result.status ?? result.signal}: ${result.stderr}`);
  }
  return parseLines(result.stdout);
}

/**
 * Starts fixtures/run-calls.mjs for a script that contains a 'waitForInput'
 * probe and returns a reader of its output lines. `resume` lets the fixture
 * go on past the probe.
 */
export function startCalls(namespaces: readonly string[], calls: readonly Call[]) {
  const child = startFixture('run-calls.mjs', [JSON.stringify({ namespaces, calls })]);
  const stdout = child.stdout;
  if (!stdout) throw new Error('run-calls.mjs has no stdout pipe');

  const lines = createInterface({ input: stdout })[Symbol.asyncIterator]();
  const exited = waitForExitCode(child);
  return {
    child,
    async nextResult(): Promise<CallResult> {
      const { value, done } = await lines.next();
      if (done) throw new Error(`run-calls.mjs ended its output early, exit ${await exited}`);
      return JSON.parse(value) as CallResult;
    },
    resume(): void {
      child.stdin?.end('\n');
    },
    exited,
  };
}

function waitForExitCode(child: ChildProcess): Promise<number | string | null> {
  return new Promise((resolve) => {
    child.once('exit', (status, signal) => resolve(status ?? signal));
  });
}

/** Parses newline-separated JSON. */
export function parseLines<T = CallResult>(text: string): T[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);
}

/** Returns the readlink of every entry of /proc/<pid>/ns, such as `{ uts: 'uts:[4026531838]' }`. */
export function readNamespaces(pid: number | 'thread-self'): Record<string, string> {
  const dir = `/proc/${pid}/ns`;
  const links: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    links[name] = readlinkSync(`${dir}/${name}`);
  }
  return links;
}

/** Returns the mount points listed in a mountinfo text (the fifth field). */
export function mountPoints(mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(' ')[4] ?? '');
}

/** Returns the mount points of the calling process's mount namespace. */
export function ownMountPoints(): string[] {
  return mountPoints(readFileSync('/proc/thread-self/mountinfo', 'utf8'));
}

/** Creates a temporary directory that `cleanUp` removes. */
export function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'm-docker-syscalls-'));
  tempDirs.push(dir);
  return dir;
}

/**
 * Kills, by pid, each process a test started that still runs, waits for it
 * to exit and removes the temporary directories. Mounts made by fixtures
 * live in the fixtures' own mount namespaces, which end with them.
 */
export async function cleanUp(): Promise<void> {
  const running = [...startedProcesses].filter(
    (child) => child.pid !== undefined && child.exitCode === null && child.signalCode === null,
  );
  const exits = running.map((child) => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    return exited;
  });
  await Promise.all(exits);

  for (const dir of tempDirs.splice(0)) {
    rmSync(dir, { recursive: true, force: true });
  }
}
