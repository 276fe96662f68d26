import { createRequire } from 'node:module';

import { currentJsRuntime } from './current.js';

/** The end of a process: its exit status, or the signal that killed it. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A process started by startProcess, the same under Node and Bun. */
export interface StartedProcess {
  readonly pid: number;
  /** Settles when the process exits. */
  readonly exited: Promise<ProcessExit>;
  /** Whether the process has exited and been waited for. */
  hasExited(): boolean;
  kill(signal: NodeJS.Signals): void;
}

/** A child's descriptor: the parent's own (`inherit`), /dev/null (`ignore`), or one of the parent's descriptors. */
export type StdioEntry = 'inherit' | 'ignore' | number;

export interface StartProcessOptions {
  /** fds 0, 1, 2 and any more, in order. */
  stdio: readonly StdioEntry[];
  env: Record<string, string>;
  cwd: string;
}

interface BunSubprocess {
  pid: number;
  exited: Promise<number>;
  exitCode: number | null;
  signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals): void;
}

interface BunGlobal {
  spawn(command: string[], options: { stdio: StdioEntry[]; env: Record<string, string>; cwd: string }): BunSubprocess;
}

/**
 * Starts `command` synchronously from the calling thread, so it inherits the
 * thread's namespaces: with Bun.spawn under Bun, with child_process.spawn
 * under Node. Under Bun this avoids loading node:child_process, a few
 * milliseconds of every container's start. Throws when the command cannot
 * be started.
 */
export function startProcess(command: string, args: readonly string[], options: StartProcessOptions): StartedProcess {
  return currentJsRuntime() === 'bun' ? startWithBun(command, args, options) : startWithNode(command, args, options);
}

function startWithBun(command: string, args: readonly string[], options: StartProcessOptions): StartedProcess {
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  const child = bun.spawn([command, ...args], { stdio: [...options.stdio], env: options.env, cwd: options.cwd });
  let done = false;
  const exited = child.exited.then((code) => {
    done = true;
    return child.signalCode === null ? { code, signal: null } : { code: null, signal: child.signalCode };
  });
  return {
    pid: child.pid,
    exited,
    hasExited: () => done,
    kill: (signal) => child.kill(signal),
  };
}

function startWithNode(command: string, args: readonly string[], options: StartProcessOptions): StartedProcess {
  const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const child = spawn(command, args, { stdio: [...options.stdio], env: options.env, cwd: options.cwd });
  if (child.pid === undefined) {
    // spawn reports a missing or unusable command later, as an 'error' event;
    // it is raised here so that both runtimes throw at the same point.
    const error = new Error(`cannot start ${command}: the file is missing or not executable`);
    child.once('error', () => {});
    throw error;
  }
  let done = false;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  return {
    pid: child.pid,
    exited,
    hasExited: () => done,
    kill: (signal) => {
      child.kill(signal);
    },
  };
}
