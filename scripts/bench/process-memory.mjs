// Peak resident set size of the CLI and of the init on their own.
//
// GNU time reports one number for a whole `m-docker run`: the largest
// process of the tree. To split it, the command runs under strace, which
// stops every process for a moment when it enters execve(2) or
// exit_group(2). While a process is stopped, this module reads VmHWM, the
// peak RSS of its memory image, from /proc/PID/status. The init's value is
// read at its execve of the command, the last moment its JavaScript image
// exists, and the CLI's value at its exit_group. Neither process is changed:
// strace stops them but does not touch their memory.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';

import { findOnPath } from './machine.mjs';

// The number that /proc/PID/syscall shows first while a process is stopped
// at a system call's entry.
const SYSCALL_NUMBERS = {
  x64: { execve: 59, exitGroup: 231 },
  arm64: { execve: 221, exitGroup: 94 },
};

// How long strace stops each process at execve and exit_group, and how often
// /proc is read meanwhile. The stop must last several polling intervals, or
// it can pass unseen.
const STOP_DELAY = '20ms';
const POLL_INTERVAL_MS = 2;
const TIMEOUT_MS = 30_000;

/** Returns why per-process peaks cannot be measured here, or undefined if they can. */
export function processPeaksUnavailable() {
  if (findOnPath('strace') === undefined) return 'strace is not installed';
  if (SYSCALL_NUMBERS[process.arch] === undefined) return `system call numbers for ${process.arch} are not known to this script`;
  return undefined;
}

function readText(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // The process exited between listing and reading.
    return undefined;
  }
}

/**
 * Returns the pids of every descendant of `pid`, as strings, read through
 * each thread's children file, because a multithreaded runtime may fork
 * from a thread other than its main one.
 */
export function descendants(pid) {
  const found = [];
  const pending = [pid];
  while (pending.length > 0) {
    const parent = pending.pop();
    let threads;
    try {
      threads = readdirSync(`/proc/${parent}/task`);
    } catch {
      continue;
    }
    for (const thread of threads) {
      for (const child of (readText(`/proc/${parent}/task/${thread}/children`) ?? '').split(' ').filter(Boolean)) {
        found.push(child);
        pending.push(child);
      }
    }
  }
  return found;
}

/**
 * Runs `argv` once under strace and resolves to `{ cliKiB, initKiB }`, the
 * peak RSS in KiB of the process that runs `cliScript` and of the one that
 * runs `initScript`. A process is matched by the script path in its command
 * line. A value is undefined when its stop was not seen, for example on a
 * machine too busy to poll /proc during the stop. Rejects when the command
 * fails.
 */
export function measureProcessPeaks(argv, { cwd, env, cliScript, initScript }) {
  const numbers = SYSCALL_NUMBERS[process.arch];
  const scripts = { cli: realpathSync(cliScript), init: realpathSync(initScript) };
  const resolved = new Map();
  const roleOf = (commandLine) => {
    for (const argument of commandLine.split('\0')) {
      if (!argument.endsWith('main.js')) continue;
      if (!resolved.has(argument)) {
        try {
          resolved.set(argument, realpathSync(argument));
        } catch {
          resolved.set(argument, argument);
        }
      }
      const path = resolved.get(argument);
      if (path === scripts.cli) return 'cli';
      if (path === scripts.init) return 'init';
    }
    return undefined;
  };

  return new Promise((resolve, reject) => {
    const straceArgv = ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=execve,exit_group', '-e', `inject=execve,exit_group:delay_enter=${STOP_DELAY}`, ...argv];
    const child = spawn('strace', straceArgv, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });

    // VmHWM only grows while a memory image lives, so the largest value seen
    // at the final stop is the peak. Samples at other stops are lower bounds.
    const peaks = { cli: undefined, init: undefined };
    const finalStop = { cli: numbers.exitGroup, init: numbers.execve };
    const poll = () => {
      for (const pid of descendants(child.pid)) {
        const status = readText(`/proc/${pid}/status`);
        if (status === undefined || !/^State:\s+t/m.test(status)) continue;
        const syscall = Number(readText(`/proc/${pid}/syscall`)?.split(' ')[0]);
        const role = roleOf(readText(`/proc/${pid}/cmdline`) ?? '');
        if (role === undefined || syscall !== finalStop[role]) continue;
        const kib = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]);
        if (Number.isFinite(kib)) peaks[role] = Math.max(peaks[role] ?? 0, kib);
      }
    };
    const timer = setInterval(poll, POLL_INTERVAL_MS);
    const timeout = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);

    child.on('error', (error) => {
      clearInterval(timer);
      clearTimeout(timeout);
      reject(new Error(`cannot run strace: ${error.message}`));
    });
    child.on('exit', (status, signal) => {
      clearInterval(timer);
      clearTimeout(timeout);
      if (status !== 0) {
        const failure = signal ? `was killed by ${signal}` : `exited with status ${status}`;
        reject(new Error(`${argv.join(' ')} under strace ${failure}: ${stderr.trim()}`));
        return;
      }
      resolve({ cliKiB: peaks.cli, initKiB: peaks.init });
    });
  });
}
