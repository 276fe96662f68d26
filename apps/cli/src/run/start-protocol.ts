import { type ContainerConfig, type InitFailure, type Message, readMessageSync, writeMessageSync } from '@m-docker/ipc';
import { close, descriptorIo } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';
import { errorFromInitFailure } from './exit-status.js';
import type { Timeline } from './timeline.js';

// The CLI's side of the start protocol, over its end of the init's fd 3:
// send config, wait for ready, send start, then read until end of stream
// (execve succeeded and closed fd 3) or an error message. With a terminal
// (-t), a terminal message with the pty's master comes before ready; the
// CLI then reads through recvmsg(2), which keeps the descriptor. With a
// pids limit, a pidsLimit message with the container's pids.max follows
// the config, for the init to write the limit just before execve. It is
// sent while the init sets up the container, so that only start is left
// to send after ready. The init reads it after ready.
//
// The reads and writes are synchronous because the CLI has nothing else to
// do meanwhile. They cannot deadlock: the init reads the whole config before
// it writes anything, and after sending the config or start the CLI reads
// until the init's reply or end of stream, so every reply has a reader. A
// signal in this phase ends the CLI with its default action, and the init's
// parent-death signal then ends the init.

/** The CLI's own work at two steps of the protocol. */
export interface StartHooks {
  /** Runs once the config is sent, while the init sets up the container. */
  afterConfig?: () => void;
  /** Runs after ready and before start, while the init waits: COMMAND does not exist yet. */
  beforeStart?: () => void;
  /**
   * Runs after afterConfig. Returns the container's pids.max, open for
   * writing, and the limit, for a pidsLimit message, or undefined when
   * there is no limit. startContainer closes the descriptor.
   */
  pidsLimit?: () => { fd: number; limit: number } | undefined;
  /** Takes the master of the container's pty (-t); without this hook it is closed. */
  terminal?: (master: number) => void;
}

/** Runs the start protocol to the end; throws a CliError with docker's status when the init reports a failure or dies. */
export function startContainer(pipeFd: number, config: ContainerConfig, timeline: Timeline, hooks: StartHooks = {}): void {
  const command = config.argv[0] as string;

  send(pipeFd, { type: 'config', config });
  timeline.mark('config sent');
  hooks.afterConfig?.();
  sendPidsLimit(pipeFd, hooks);

  const ready = receiveReady(pipeFd, config.terminal, hooks);
  if (ready.type === 'error') throw errorFromInitFailure(ready.error, command);
  timeline.mark('ready received');
  hooks.beforeStart?.();

  send(pipeFd, { type: 'start' });
  timeline.mark('start sent');

  const outcome = receive(pipeFd, 'exec');
  if (outcome.type === 'error') throw errorFromInitFailure(outcome.error, command);
  timeline.mark('exec confirmed', { by: 'end of stream on fd 3' });
}

function sendPidsLimit(pipeFd: number, hooks: StartHooks): void {
  const pidsLimit = hooks.pidsLimit?.();
  if (pidsLimit === undefined) return;
  try {
    send(pipeFd, { type: 'pidsLimit', ...pidsLimit });
  } finally {
    close(pidsLimit.fd);
  }
}

// A write fails when the init died before it read the message: EPIPE, or
// ECONNRESET when it left data unread.
function send(pipeFd: number, message: Message): void {
  try {
    writeMessageSync(pipeFd, message, message.type === 'pidsLimit' ? { descriptors: descriptorIo } : undefined);
  } catch (error) {
    throw new CliError(`lost contact with the container's init while sending ${message.type}: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
}

type InitOutcome =
  | { type: 'ready' }
  | { type: 'exec' }
  | { type: 'terminal'; fd: number }
  | { type: 'error'; error: InitFailure };

// With a terminal, the init sends the pty's master first, then ready (or an
// error, after which the master is of no use).
function receiveReady(pipeFd: number, terminal: boolean, hooks: StartHooks): InitOutcome {
  if (!terminal) return receive(pipeFd, 'ready');

  const first = receive(pipeFd, 'terminal');
  if (first.type !== 'terminal') {
    if (first.type === 'error') return first;
    throw new CliError("the container's init sent ready without the terminal that -t needs");
  }
  if (hooks.terminal) hooks.terminal(first.fd);
  else close(first.fd);
  return receive(pipeFd, 'ready');
}

// Returns what the init sent once it confirms `expected`: for 'ready' a
// ready message, for 'exec' the end of stream, for 'terminal' a terminal
// message (or ready, which the caller rejects). An error message or an
// early end of stream becomes the failure to report.
function receive(pipeFd: number, expected: 'ready' | 'exec' | 'terminal'): InitOutcome {
  let message: Message | undefined;
  try {
    message = readMessageSync(pipeFd, expected === 'terminal' ? { descriptors: descriptorIo } : undefined);
  } catch (error) {
    throw new CliError(`lost contact with the container's init while waiting for ${expected}: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }

  if (message === undefined) {
    if (expected === 'exec') return { type: 'exec' };
    throw new CliError(`the container's init exited before it ${expected === 'terminal' ? 'sent the terminal' : 'was ready'}`);
  }
  switch (message.type) {
    case 'error':
      return message;
    case 'terminal':
      if (expected === 'terminal') return message;
      close(message.fd);
      break;
    case 'ready':
      if (expected !== 'exec') return message;
      break;
  }
  throw new CliError(`unexpected ${message.type} message from the container's init while waiting for ${expected}`);
}
