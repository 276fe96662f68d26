import { appendFileSync, createReadStream } from 'node:fs';

import type { StdioEntry } from '@m-docker/runtime';
import { close, readFd, socketpair, writeFd } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';
import { MONITOR_VARIABLE } from './early-init.js';

// `run -d`: the CLI starts a copy of itself, the monitor, in a session of
// its own, and returns once the monitor reports that COMMAND runs. The
// monitor is an ordinary `m-docker run` otherwise: it owns the container's
// record, holds the init as its child, records the exit and removes what
// --rm asks for. COMMAND's stdout and stderr go to sockets that the monitor
// copies into the container's log file, one JSON object a line, as
// docker's json-file driver writes them:
//
//   CLI --spawn (setsid, fd 3)--> monitor --spawn--> init --execve--> COMMAND
//   CLI <--- {"id", "name"} or {"error", "status"} --- monitor   (fd 3, one line)
//
// If the monitor dies, its end of fd 3 closes and the CLI fails instead of
// waiting; the container dies with it through its parent-death signal.


/** Bytes of the monitor's report that the CLI reads at most. */
const REPORT_MAX = 64 * 1024;

/** The hooks through which a monitor's runContainer differs from a foreground run. */
export interface MonitorHooks {
  /** The init's fds 0, 1 and 2: /dev/null and the log sockets. */
  stdio: readonly [StdioEntry, StdioEntry, StdioEntry];
  /** Called once COMMAND runs. */
  started(container: { id: string; name: string }): void;
}

/** A record of one line of a container's log file. */
export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  /** ISO 8601 time at which the monitor read the line. */
  time: string;
}

/** Starts the monitor for `argv` (the whole command line) and returns once it reports; prints the container id. */
export async function runDetached(argv: readonly string[]): Promise<number> {
  const { spawn } = await import('node:child_process');
  const [cliEnd, monitorEnd] = socketpair();
  try {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, ...argv], {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', monitorEnd],
      env: { ...process.env, [MONITOR_VARIABLE]: '3' },
    });
    child.unref();
  } finally {
    close(monitorEnd);
  }

  try {
    const report = readReport(cliEnd);
    if ('error' in report) throw new CliError(report.error, report.status);
    writeFd(1, Buffer.from(`${report.id}\n`));
    return 0;
  } finally {
    close(cliEnd);
  }
}

/** Creates the monitor's side: the log sockets, the report to the CLI, and the copy of COMMAND's output into the log. */
export function startMonitor(reportFd: number, root: string): MonitorHooks & { fail(error: CliError): void; drained: Promise<void> } {
  const [stdoutRead, stdoutWrite] = socketpair();
  const [stderrRead, stderrWrite] = socketpair();
  let resolveDrained: () => void = () => {};
  const drained = new Promise<void>((resolve) => {
    resolveDrained = resolve;
  });

  const report = (line: object) => {
    try {
      writeFd(reportFd, Buffer.from(`${JSON.stringify(line)}\n`));
    } catch {
      // The CLI is gone, so no process waits for the report.
    }
    close(reportFd);
  };

  return {
    stdio: ['ignore', stdoutWrite, stderrWrite],
    started: ({ id, name }) => {
      close(stdoutWrite);
      close(stderrWrite);
      const file = `${root}/containers/${id}/container.log`;
      Promise.all([copyLines(stdoutRead, 'stdout', file), copyLines(stderrRead, 'stderr', file)]).then(resolveDrained, resolveDrained);
      report({ id, name });
    },
    fail: (error) => {
      report({ error: error.message, status: error.status });
      resolveDrained();
    },
    drained,
  };
}

// Reads one JSON line. End of stream before a whole line means the monitor
// died before it could report.
function readReport(fd: number): { id: string; name: string } | { error: string; status: number } {
  const buffer = Buffer.alloc(REPORT_MAX);
  let length = 0;
  while (length < REPORT_MAX) {
    const count = readFd(fd, buffer, length);
    if (count === 0) break;
    length += count;
    if (buffer.subarray(0, length).includes(10)) break;
  }
  const text = buffer.toString('utf8', 0, length);
  if (!text.endsWith('\n')) {
    throw new CliError('the monitor of the detached container exited before it reported: run without -d to see the error');
  }
  return JSON.parse(text);
}

// Appends each line that `fd` delivers to `file` as a LogEntry; a last line
// without a newline is written when the stream ends.
function copyLines(fd: number, stream: LogEntry['stream'], file: string): Promise<void> {
  return new Promise((resolve) => {
    let pending = '';
    const write = (text: string) => {
      const entry: LogEntry = { log: text, stream, time: new Date().toISOString() };
      try {
        appendFileSync(file, `${JSON.stringify(entry)}\n`);
      } catch {
        // The directory is gone: --rm removed the container, log and all.
      }
    };
    const input = createReadStream('', { fd, encoding: 'utf8' });
    input.on('data', (chunk) => {
      pending += chunk as string;
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        write(pending.slice(0, newline + 1));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
    });
    const finish = () => {
      if (pending !== '') write(pending);
      pending = '';
      resolve();
    };
    input.on('end', finish);
    input.on('error', finish);
  });
}
