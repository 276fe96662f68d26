import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';

import { CliError } from '../cli-error.js';
import type { LogEntry } from '../run/detach.js';
import { findContainer, isContainerRunning } from './container-commands.js';
import { containersDir, listContainers } from './containers.js';

// `logs` reads the log file that a detached container's monitor writes
// (one JSON LogEntry a line) and prints each line to stdout or stderr, as
// the container wrote it. With -f it keeps reading until the container has
// exited and the file has no more lines.

/** How often -f looks for new lines, in ms. */
const FOLLOW_POLL_MS = 50;

/** Options of `logs`. */
export interface LogsOptions {
  follow: boolean;
  /** Lines to print from the end; undefined for all. */
  tail?: number;
  timestamps: boolean;
}

/** Prints the log of the container `reference`. */
export async function printLogs(root: string, reference: string, options: LogsOptions): Promise<number> {
  const record = findContainer(root, reference);
  const file = `${containersDir(root)}/${record.id}/container.log`;
  let offset = 0;
  let first = true;

  for (;;) {
    const { entries, next } = readEntries(file, offset);
    offset = next;
    const shown = first && options.tail !== undefined ? entries.slice(Math.max(0, entries.length - options.tail)) : entries;
    first = false;
    for (const entry of shown) print(entry, options.timestamps);

    if (!options.follow) return 0;
    // A --rm container's directory, log included, goes at its exit.
    const current = listContainers(root).find((candidate) => candidate.id === record.id);
    if (current === undefined) return 0;
    if (!isContainerRunning(current) && readEntries(file, offset).entries.length === 0) return 0;
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
  }
}

// Reads the whole lines after `offset`; a line still being written stays
// for the next read.
function readEntries(file: string, offset: number): { entries: LogEntry[]; next: number } {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return { entries: [], next: offset };
  }
  if (size <= offset) return { entries: [], next: offset };

  const buffer = Buffer.alloc(size - offset);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, offset);
  } finally {
    closeSync(fd);
  }
  const text = buffer.toString('utf8');
  const end = text.lastIndexOf('\n') + 1;
  const entries = text
    .slice(0, end)
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line) as LogEntry;
      } catch (error) {
        throw new CliError(`the log file ${file} has an invalid line: ${(error as Error).message}`);
      }
    });
  return { entries, next: offset + Buffer.byteLength(text.slice(0, end)) };
}

function print(entry: LogEntry, timestamps: boolean): void {
  const text = timestamps ? `${entry.time} ${entry.log}` : entry.log;
  writeSync(entry.stream === 'stderr' ? 2 : 1, text);
}
