import { writeSync } from 'node:fs';
import { constants } from 'node:os';

import { CliError } from '../cli-error.js';
import { findContainer, isContainerRunning } from './container-commands.js';
import { type ContainerRecord, listContainers, readExitCode } from './containers.js';
import { isRunning } from './process-identity.js';

// stop, kill and wait. Signals go to the container's PID 1 by pid, after
// its start time was checked against the record, so a pid that the kernel
// gave to another process is never signalled. The owner (the m-docker
// process that runs the container) records the exit when PID 1 is gone.

/** How often the commands look at a container's state while they wait, in ms. */
const POLL_MS = 25;

/** How long stop and wait give the owner to record an exit after PID 1 is gone, in ms. */
const RECORD_GRACE_MS = 3_000;

/** Sends `signal` (a name such as KILL or SIGTERM, or a number) to each container's PID 1. */
export function killContainers(root: string, references: readonly string[], signal: string): number {
  const number = parseSignal(signal);
  return forEachContainer(references, (reference) => {
    const record = findContainer(root, reference);
    if (!isContainerRunning(record)) throw new CliError(`container ${reference} is not running`);
    signalInit(record, number);
    writeText(`${reference}\n`);
  });
}

/**
 * Stops the containers at the same time, as docker does: SIGTERM to each
 * PID 1, then SIGKILL once `seconds` have passed, and prints the name given
 * only once that container has exited. A container that is not running is
 * left as it is.
 */
export async function stopContainers(root: string, references: readonly string[], seconds: number): Promise<number> {
  const statuses = await Promise.all(references.map((reference) => stopContainer(root, reference, seconds)));
  return statuses.find((status) => status !== 0) ?? 0;
}

async function stopContainer(root: string, reference: string, seconds: number): Promise<number> {
  try {
    const record = findContainer(root, reference);
    if (isContainerRunning(record)) {
      signalInit(record, constants.signals.SIGTERM);
      if (!(await waitForExit(root, record.id, seconds * 1000))) {
        signalInit(record, constants.signals.SIGKILL);
        await waitForExit(root, record.id, RECORD_GRACE_MS * 2);
      }
    }
    writeText(`${reference}\n`);
    return 0;
  } catch (error) {
    return report(error);
  }
}

/**
 * Kills a running container for `rm -f` with SIGKILL to its PID 1, so that
 * its owner records the exit and removes the cgroup as after any exit. The
 * owner itself is killed only when it does not finish within the grace
 * time. Resolves once the owner is done or gone.
 */
export async function killAndWait(root: string, record: ContainerRecord): Promise<void> {
  signalInit(record, constants.signals.SIGKILL);
  if (await waitForExit(root, record.id, RECORD_GRACE_MS)) {
    await waitForOwner(record);
    return;
  }
  try {
    process.kill(record.owner.pid, 'SIGKILL');
  } catch {
    // It exited between the check and the kill.
  }
  await waitForOwner(record);
}

/** Waits until each container has exited and prints its exit code, one line each. */
export async function waitContainers(root: string, references: readonly string[]): Promise<number> {
  let status = 0;
  for (const reference of references) {
    try {
      const kept = keptExitCode(root, reference);
      if (kept !== undefined) {
        writeText(`${kept}\n`);
        continue;
      }
      const record = findContainer(root, reference);
      await waitForExit(root, record.id, Number.POSITIVE_INFINITY);
      const exitCode = currentRecord(root, record.id)?.exitCode ?? readExitCode(root, record.id);
      if (exitCode === undefined) {
        throw new CliError(
          `container ${reference} ended without an exit status: the m-docker process that ran it was killed`,
        );
      }
      writeText(`${exitCode}\n`);
    } catch (error) {
      status = report(error);
    }
  }
  return status;
}

// A --rm container that is gone already leaves only its exit code, kept
// for a while under its full id, which is what `run -d --rm` printed.
function keptExitCode(root: string, reference: string): number | undefined {
  if (!/^[0-9a-f]{64}$/.test(reference) || currentRecord(root, reference) !== undefined) return undefined;
  return readExitCode(root, reference);
}

/** Parses `KILL`, `SIGKILL`, `kill` or `9` into a signal number. */
export function parseSignal(signal: string): number {
  if (/^\d+$/.test(signal)) {
    const number = Number(signal);
    if (number >= 1 && number <= 64) return number;
  } else {
    const name = `SIG${signal.toUpperCase().replace(/^SIG/, '')}` as NodeJS.Signals;
    const number = constants.signals[name];
    if (number !== undefined) return number;
  }
  throw new CliError(`invalid signal ${JSON.stringify(signal)}: use a name such as TERM, KILL or HUP, or a number from 1 to 64`);
}

function signalInit(record: ContainerRecord, signal: number): void {
  const init = record.init;
  if (init === undefined || !isRunning(init)) return;
  try {
    process.kill(init.pid, signal);
  } catch (error) {
    // ESRCH: it exited between the check and the signal.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

// Resolves true once the owner recorded the exit, or once both PID 1 and
// the owner are gone, because a killed owner records nothing. Resolves
// false after `ms`.
async function waitForExit(root: string, id: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  let initGoneAt: number | undefined;
  for (;;) {
    const record = currentRecord(root, id);
    if (record === undefined || record.finished !== undefined || !isRunning(record.owner)) return true;
    if (record.init !== undefined && !isRunning(record.init)) initGoneAt ??= Date.now();
    if (initGoneAt !== undefined && Date.now() - initGoneAt > RECORD_GRACE_MS) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// The owner may still remove the directory or the cgroup after it wrote the
// exit, so rm waits until it has exited.
async function waitForOwner(record: ContainerRecord): Promise<void> {
  const deadline = Date.now() + RECORD_GRACE_MS * 2;
  while (isRunning(record.owner)) {
    if (Date.now() > deadline) {
      throw new CliError(`container ${record.name}'s m-docker process ${record.owner.pid} did not exit: end it and run rm again`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function currentRecord(root: string, id: string): ContainerRecord | undefined {
  return listContainers(root).find((record) => record.id === id);
}

function forEachContainer(references: readonly string[], action: (reference: string) => void): number {
  let status = 0;
  for (const reference of references) {
    try {
      action(reference);
    } catch (error) {
      status = report(error);
    }
  }
  return status;
}

function report(error: unknown): number {
  if (!(error instanceof CliError)) throw error;
  writeSync(2, `m-docker: ${error.message}\n`);
  return 1;
}

function writeText(text: string): void {
  writeSync(1, text);
}
