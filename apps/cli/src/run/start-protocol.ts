import { type ContainerConfig, type InitFailure, type Message, readMessageSync, writeMessageSync } from '@m-docker/ipc';

import { CliError } from '../cli-error.js';
import { errorFromInitFailure } from './exit-status.js';
import type { Timeline } from './timeline.js';

// The CLI's side of the start protocol, over its end of the init's fd 3:
// send config, wait for ready, send start, then read until end of stream
// (execve succeeded and closed fd 3) or an error message.
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
}

/** Runs the start protocol to the end; throws a CliError with docker's status when the init reports a failure or dies. */
export function startContainer(pipeFd: number, config: ContainerConfig, timeline: Timeline, hooks: StartHooks = {}): void {
  const command = config.argv[0] as string;

  send(pipeFd, { type: 'config', config });
  timeline.mark('config sent');
  hooks.afterConfig?.();

  const ready = receive(pipeFd, 'ready');
  if (ready.type === 'error') throw errorFromInitFailure(ready.error, command);
  timeline.mark('ready received');
  hooks.beforeStart?.();

  send(pipeFd, { type: 'start' });
  timeline.mark('start sent');

  const outcome = receive(pipeFd, 'exec');
  if (outcome.type === 'error') throw errorFromInitFailure(outcome.error, command);
  timeline.mark('exec confirmed', { by: 'end of stream on fd 3' });
}

// A write fails when the init died before it read the message: EPIPE, or
// ECONNRESET when it left data unread.
function send(pipeFd: number, message: Message): void {
  try {
    writeMessageSync(pipeFd, message);
  } catch (error) {
    throw new CliError(`lost contact with the container's init while sending ${message.type}: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
}

type InitOutcome = { type: 'ready' } | { type: 'exec' } | { type: 'error'; error: InitFailure };

// Returns `expected` once the init confirms it: for 'ready' a ready message,
// for 'exec' the end of stream. An error message or an early end of stream
// becomes the failure to report.
function receive(pipeFd: number, expected: 'ready' | 'exec'): InitOutcome {
  let message: Message | undefined;
  try {
    message = readMessageSync(pipeFd);
  } catch (error) {
    throw new CliError(`lost contact with the container's init while waiting for ${expected}: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }

  if (message === undefined) {
    if (expected === 'exec') return { type: 'exec' };
    throw new CliError("the container's init exited before it was ready");
  }
  if (message.type === 'error') return message;
  if (message.type === expected) return { type: expected };
  throw new CliError(`unexpected ${message.type} message from the container's init while waiting for ${expected}`);
}
