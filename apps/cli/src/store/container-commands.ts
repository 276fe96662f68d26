import { writeSync } from 'node:fs';

import { CliError } from '../cli-error.js';
import { type ContainerRecord, listContainers, removeContainer } from './containers.js';
import { isRunning } from './process-identity.js';
import { removeAnonymousVolumes } from './volumes.js';

// `ps` and `rm` for the containers that have a directory in the store: the
// runs with --image or --rootfs. A container runs while the CLI that
// started it runs; the record names that CLI by pid and start time.

/** How long `rm -f` waits for a killed container's CLI to exit, in ms. */
const KILL_WAIT_MS = 5_000;

/** Returns whether the container's CLI still runs it. */
export function isContainerRunning(record: ContainerRecord): boolean {
  return record.finished === undefined && isRunning(record.owner);
}

/** Finds the record whose id is `idOrPrefix` or starts with it; throws when none or several match. */
export function findContainer(root: string, idOrPrefix: string): ContainerRecord {
  const matches = listContainers(root).filter((record) => record.id.startsWith(idOrPrefix));
  if (idOrPrefix === '' || matches.length === 0) {
    throw new CliError(`no such container: ${JSON.stringify(idOrPrefix)}: see 'm-docker ps -a'`);
  }
  if (matches.length > 1) {
    throw new CliError(`container id prefix ${JSON.stringify(idOrPrefix)} is ambiguous: it matches ${matches.length} containers: give more characters`);
  }
  return matches[0] as ContainerRecord;
}

/** Prints the containers as `ps` does: running ones, or all with `all`. */
export function printContainers(root: string, all: boolean, quiet: boolean): void {
  const records = listContainers(root)
    .filter((record) => all || isContainerRunning(record))
    .sort((a, b) => b.created.localeCompare(a.created));
  if (quiet) {
    writeText(records.map((record) => `${record.id.slice(0, 12)}\n`).join(''));
    return;
  }

  const rows = [
    ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS'],
    ...records.map((record) => [record.id.slice(0, 12), record.source, quoteCommand(record.command), record.created, describeStatus(record)]),
  ];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] as string).length))) ?? [];
  writeText(rows.map((row) => `${row.map((cell, column) => cell.padEnd((widths[column] ?? 0) + 3)).join('').trimEnd()}\n`).join(''));
}

/**
 * Removes containers. A running one is refused unless `force` is set; then
 * its CLI is killed with SIGKILL, which ends the container through its
 * parent-death signal, before its directory goes. Every name is tried, and
 * the first failure is thrown at the end.
 */
export async function removeContainers(root: string, ids: readonly string[], force: boolean, volumes: boolean): Promise<void> {
  let failure: unknown;
  for (const idOrPrefix of ids) {
    try {
      const record = findContainer(root, idOrPrefix);
      if (isContainerRunning(record)) {
        if (!force) {
          throw new CliError(`container ${record.id.slice(0, 12)} is running: stop it first, or remove it with rm -f`);
        }
        await killOwner(record);
      }
      removeContainer(root, record.id);
      if (volumes) removeAnonymousVolumes(root, record.volumes);
      writeText(`${idOrPrefix}\n`);
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      writeSync(2, `m-docker: ${error.message}\n`);
      failure ??= error;
    }
  }
  if (failure !== undefined) throw new CliError('some containers were not removed (see above)', 1, { cause: failure });
}

async function killOwner(record: ContainerRecord): Promise<void> {
  try {
    process.kill(record.owner.pid, 'SIGKILL');
  } catch {
    // It exited between the check and the kill.
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  while (isRunning(record.owner)) {
    if (Date.now() > deadline) {
      throw new CliError(`container ${record.id.slice(0, 12)} did not stop within ${KILL_WAIT_MS} ms of SIGKILL to its m-docker process ${record.owner.pid}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function describeStatus(record: ContainerRecord): string {
  if (isContainerRunning(record)) return 'Up';
  if (record.exitCode === undefined) return 'Exited (unknown: m-docker was killed)';
  return `Exited (${record.exitCode}) ${record.finished ?? ''}`.trimEnd();
}

// Arguments with spaces or quotes are shown quoted, so the command reads as
// it was given.
function quoteCommand(command: readonly string[]): string {
  return command.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : JSON.stringify(word))).join(' ');
}

function writeText(text: string): void {
  if (text !== '') writeSync(1, text);
}
