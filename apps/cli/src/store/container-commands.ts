import { writeSync } from 'node:fs';

import { CliError } from '../cli-error.js';
import { killAndWait } from './container-signals.js';
import { type ContainerRecord, listContainers, removeContainer } from './containers.js';
import { isRunning } from './process-identity.js';
import { removeAnonymousVolumes } from './volumes.js';

// The commands that read and change containers: ps, rm, stop, kill, wait
// and inspect. A container runs while the m-docker process that started it
// (its owner) runs and has not recorded an exit. The record names the
// owner and the container's PID 1 by pid and start time, so a reused pid
// is never mistaken for them.

/** Returns whether the container's CLI still runs it. */
export function isContainerRunning(record: ContainerRecord): boolean {
  return record.finished === undefined && isRunning(record.owner);
}

/** The error of a reference that names no container, which `rm -f` does not count as a failure. */
export class NoSuchContainerError extends CliError {
  constructor(reference: string) {
    super(`no such container: ${JSON.stringify(reference)}: see 'm-docker ps -a'`);
    this.name = 'NoSuchContainerError';
  }
}

/** Finds a container by name, full id or unique id prefix; throws when none or several match. */
export function findContainer(root: string, reference: string): ContainerRecord {
  const records = listContainers(root);
  const named = records.find((record) => record.name === reference);
  if (named !== undefined) return named;

  const matches = records.filter((record) => record.id.startsWith(reference));
  if (reference === '' || matches.length === 0) throw new NoSuchContainerError(reference);
  if (matches.length > 1) {
    throw new CliError(`container id prefix ${JSON.stringify(reference)} is ambiguous: it matches ${matches.length} containers: give more characters`);
  }
  return matches[0] as ContainerRecord;
}

/** Prints the containers as `ps` does: running ones, or all with `all`; as a table, ids alone, or JSON lines. */
export function printContainers(root: string, all: boolean, quiet: boolean, format?: 'json'): void {
  const now = Date.now();
  const records = listContainers(root)
    .filter((record) => all || isContainerRunning(record))
    .sort((a, b) => b.created.localeCompare(a.created));
  if (quiet) {
    writeText(records.map((record) => `${record.id.slice(0, 12)}\n`).join(''));
    return;
  }
  if (format === 'json') {
    writeText(records.map((record) => `${JSON.stringify(psFields(record, now))}\n`).join(''));
    return;
  }

  const rows = [
    ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES'],
    ...records.map((record) => {
      const fields = psFields(record, now);
      return [fields.ID, fields.Image, fields.Command, fields.RunningFor, fields.Status, fields.Names];
    }),
  ];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] as string).length))) ?? [];
  writeText(rows.map((row) => `${row.map((cell, column) => cell.padEnd((widths[column] ?? 0) + 3)).join('').trimEnd()}\n`).join(''));
}

/**
 * Removes containers. A running one is refused unless `force` is set; then
 * it is killed first (killAndWait). Every name is tried; each failure is
 * one line on stderr, and the status is 1 when any failed. A container
 * that another command removes first, such as a parallel rm or the owner
 * of a --rm container, counts as removed with `force` and as not found
 * without it. With `force` a container that does not exist is reported
 * on stderr but is no failure, as with docker 20.10 and later.
 */
export async function removeContainers(root: string, ids: readonly string[], force: boolean, volumes: boolean): Promise<number> {
  let status = 0;
  for (const idOrPrefix of ids) {
    try {
      const record = findContainer(root, idOrPrefix);
      if (isContainerRunning(record)) {
        if (!force) {
          throw new CliError(`container ${record.id.slice(0, 12)} is running: stop it first, or remove it with rm -f`);
        }
        await killAndWait(root, record);
      }
      if (removeContainer(root, record.id)) {
        if (volumes) removeAnonymousVolumes(root, record.volumes);
      } else if (!force) {
        throw new NoSuchContainerError(idOrPrefix);
      }
      writeText(`${idOrPrefix}\n`);
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      writeSync(2, `m-docker: ${error.message}\n`);
      if (!(force && error instanceof NoSuchContainerError)) status = 1;
    }
  }
  return status;
}

// The fields of one `ps` line, with the names `docker ps --format json` uses.
function psFields(record: ContainerRecord, now: number) {
  return {
    ID: record.id.slice(0, 12),
    Image: record.source,
    Command: quoteCommand(record.command),
    CreatedAt: record.created,
    RunningFor: `${describeDuration(now - Date.parse(record.created))} ago`,
    Status: describeStatus(record, now),
    State: isContainerRunning(record) ? 'running' : 'exited',
    Names: record.name,
  };
}

/** Returns docker's status text: `Up 3 minutes`, `Exited (0) 2 seconds ago`. */
export function describeStatus(record: ContainerRecord, now = Date.now()): string {
  if (isContainerRunning(record)) return `Up ${describeDuration(now - Date.parse(record.created))}`;
  if (record.exitCode === undefined || record.finished === undefined) return 'Exited (unknown: its m-docker process was killed)';
  return `Exited (${record.exitCode}) ${describeDuration(now - Date.parse(record.finished))} ago`;
}

/** Returns a duration in docker's words: `Less than a second`, `2 seconds`, `3 minutes`, `About an hour`, `5 days`. */
export function describeDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.round(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(seconds / 3600);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  return `${Math.floor(hours / 24)} days`;
}

// Arguments with spaces or quotes are shown quoted, so the command reads as
// it was given.
function quoteCommand(command: readonly string[]): string {
  return command.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : JSON.stringify(word))).join(' ');
}

function writeText(text: string): void {
  if (text !== '') writeSync(1, text);
}

/** Prints the records of the containers as a JSON array, with docker's names for the common fields. */
export function inspectContainers(root: string, references: readonly string[]): number {
  const found: object[] = [];
  let failed = false;
  for (const reference of references) {
    try {
      const record = findContainer(root, reference);
      found.push({
        Id: record.id,
        Name: `/${record.name}`,
        Created: record.created,
        Path: record.command[0],
        Args: record.command.slice(1),
        State: {
          Status: isContainerRunning(record) ? 'running' : 'exited',
          Running: isContainerRunning(record),
          OOMKilled: record.oomKilled === true,
          Pid: isContainerRunning(record) ? (record.init?.pid ?? 0) : 0,
          ExitCode: record.exitCode ?? null,
          FinishedAt: record.finished ?? null,
        },
        Image: record.image,
        Source: record.source,
        AutoRemove: record.autoRemove,
        // docker's inspect shows null for an option that was not given.
        HostConfig: {
          CapAdd: record.capAdd?.length ? record.capAdd : null,
          CapDrop: record.capDrop?.length ? record.capDrop : null,
          Privileged: record.privileged === true,
        },
        Volumes: record.volumes,
        Owner: record.owner,
      });
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      writeSync(2, `m-docker: ${error.message}\n`);
      failed = true;
    }
  }
  writeText(`${JSON.stringify(found, null, 2)}\n`);
  return failed ? 1 : 0;
}
