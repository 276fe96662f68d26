import { createReadStream } from 'node:fs';

import type { Logger } from '@m-docker/log';
import type { StdioEntry } from '@m-docker/runtime';
import { close, readFd, socketpair, writeFd } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';
import { DetachedTerminal, type TerminalEnd } from './detached-terminal.js';
import { MONITOR_VARIABLE } from './early-init.js';
import { LogLineWriter } from './log-file.js';

export type { LogEntry } from './log-file.js';

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
// With -t, COMMAND's fds 0-2 are the pty instead, and the monitor copies
// its output (detached-terminal.ts). The init's own stdout and stderr
// sockets then end at its execve. With -i alone, COMMAND's stdin is a
// socket whose other end the monitor keeps open and never writes to. A
// command such as `sh` or `cat` then waits for input rather than reading
// end of file. Without -i or -t, stdin is /dev/null.
//
// If the monitor dies, its end of fd 3 closes and the CLI fails instead of
// waiting; the container dies with it through its parent-death signal.


/** Bytes of the monitor's report that the CLI reads at most. */
const REPORT_MAX = 64 * 1024;

/** The hooks through which a monitor's runContainer differs from a foreground run. */
export interface MonitorHooks {
  /** The init's fds 0, 1 and 2: /dev/null or the stdin socket (-i), and the log sockets. */
  stdio: readonly [StdioEntry, StdioEntry, StdioEntry];
  /** The monitor's end of the pty, with -t. */
  terminal: TerminalEnd | undefined;
  /** Called once COMMAND runs. */
  started(container: { id: string; name: string }): void;
}

/** The parts of the run request that the monitor uses. */
export interface MonitorOptions {
  /** The store's root directory. */
  root: string;
  interactive: boolean;
  tty: boolean;
  log: Logger;
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

/** Creates the monitor's side: COMMAND's stdio, the report to the CLI, and the copy of COMMAND's output into the log. */
export function startMonitor(reportFd: number, options: MonitorOptions): MonitorHooks & { fail(error: CliError): void; drained: Promise<void> } {
  const [stdoutRead, stdoutWrite] = socketpair();
  const [stderrRead, stderrWrite] = socketpair();
  // With -t the pty is stdin, so the socket is needed only for -i without -t.
  const stdin = options.interactive && !options.tty ? socketpair() : undefined;
  let logFile: string | undefined;
  const terminal = options.tty ? new DetachedTerminal({ logFile: () => logFile as string, log: options.log }) : undefined;
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
    stdio: [stdin?.[1] ?? 'ignore', stdoutWrite, stderrWrite],
    terminal,
    started: ({ id, name }) => {
      close(stdoutWrite);
      close(stderrWrite);
      // The init has its own copy of COMMAND's end of the stdin socket. The
      // monitor keeps the other end open, unwritten, until it exits.
      if (stdin !== undefined) close(stdin[1]);
      logFile = `${options.root}/containers/${id}/container.log`;
      Promise.all([copyLines(stdoutRead, new LogLineWriter(logFile, 'stdout')), copyLines(stderrRead, new LogLineWriter(logFile, 'stderr'))]).then(
        resolveDrained,
        resolveDrained,
      );
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
    throw new CliError(
      "the monitor of the detached container exited before it reported: run without -d to see the error, and remove what it may have created as a container with 'm-docker ps -a' and 'm-docker rm'",
    );
  }
  return JSON.parse(text);
}

// Copies what `fd` delivers into the log file until end of stream.
function copyLines(fd: number, lines: LogLineWriter): Promise<void> {
  return new Promise((resolve) => {
    const input = createReadStream('', { fd });
    input.on('data', (chunk) => lines.write(chunk as Buffer));
    const finish = () => {
      lines.end();
      resolve();
    };
    input.on('end', finish);
    input.on('error', finish);
  });
}
