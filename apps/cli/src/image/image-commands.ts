import { writeSync } from 'node:fs';
import { isatty } from 'node:tty';

import { ImageError, type ImportOptions, openImageStore, type RemoveResult } from '@m-docker/images';

import { shortId } from './human-units.js';
import { formatImageList } from './list-format.js';
import { ProgressBar } from './progress-bar.js';

// `m-docker image import`, `image ls` and `image rm`. Each function opens
// the store below `root`, removes what killed imports left there, runs the
// command and prints docker's output. Failures of the store are thrown as
// ImageErrors, whose messages end with what to do, and the caller prints
// them.

/** The output streams of a command. Tests pass their own. */
export interface CommandOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal, where a progress bar may be drawn. */
  stderrIsTTY: boolean;
}

/** Returns the process's stdout and stderr as a CommandOutput. */
export function processOutput(): CommandOutput {
  return {
    stdout: (text) => writeSync(1, text),
    stderr: (text) => writeSync(2, text),
    stderrIsTTY: isatty(2),
  };
}

/** Archives of this size or less import without a progress bar, in bytes. */
export const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

export interface ImageImportOptions {
  root: string;
  /** A docker save archive, an OCI layout (tar or directory) or a root file system tarball. */
  file: string;
  /** `NAME[:TAG]` in place of the names in the archive. */
  reference?: string;
  /** Draws no progress bar. */
  quiet?: boolean;
  output?: CommandOutput;
}

/**
 * Imports an archive and prints `Loaded image: NAME:TAG` for each reference
 * and `Loaded image ID: sha256:...`. A progress bar is drawn on stderr when
 * it is a terminal, `quiet` is not set and the archive is over 4 MiB.
 */
export async function runImageImport(options: ImageImportOptions): Promise<number> {
  const output = options.output ?? processOutput();
  const store = openImageStore(options.root);
  const bar = new ProgressBar(output.stderr);
  let showBar: boolean | undefined;

  const importOptions: ImportOptions = {
    onProgress: (progress) => {
      // The read phase comes first, and its total is the archive's size.
      showBar ??= output.stderrIsTTY && options.quiet !== true && progress.bytesTotal > PROGRESS_MIN_BYTES;
      if (showBar) bar.update(progress);
    },
  };
  if (options.reference !== undefined) importOptions.reference = options.reference;

  let result: Awaited<ReturnType<typeof store.importArchive>>;
  try {
    result = await store.importArchive(options.file, importOptions);
  } finally {
    bar.finish();
  }

  for (const reference of result.references) output.stdout(`Loaded image: ${reference}\n`);
  output.stdout(`Loaded image ID: ${result.image.id}\n`);
  return 0;
}

export interface ImageListOptions {
  root: string;
  /** Prints only the ids, one per line. */
  quiet?: boolean;
  /** `table` (default), `json`, or a template such as `{{.Repository}}:{{.Tag}}`, as list-format.ts describes. */
  format?: string;
  output?: CommandOutput;
  /** The time that CREATED counts from, in ms since the epoch. Tests fix it. */
  now?: number;
}

/** Prints the images as `docker images` does: REPOSITORY, TAG, IMAGE ID, CREATED, SIZE. */
export async function runImageList(options: ImageListOptions): Promise<number> {
  const output = options.output ?? processOutput();
  const store = openImageStore(options.root);
  await store.cleanStale();
  const rows = await store.list();

  if (options.quiet === true) {
    output.stdout(rows.map((row) => `${shortId(row.id)}\n`).join(''));
    return 0;
  }
  output.stdout(formatImageList(rows, options.format, options.now ?? Date.now()));
  return 0;
}

export interface ImageRemoveOptions {
  root: string;
  /** Names, `NAME:TAG`s, ids or id prefixes. */
  references: string[];
  /** Removes an image by id with all its references, and only untags an image that containers use. */
  force?: boolean;
  /** Returns the containers that use an image, which is then not deleted. */
  usedBy: (imageId: string) => string[];
  output?: CommandOutput;
}

/**
 * Removes each reference in turn as `docker rmi` does and prints
 * `Untagged: NAME:TAG` and `Deleted: sha256:...` lines. Every reference is
 * tried even when one fails. The failures before the last are printed as
 * `m-docker: MESSAGE` lines on stderr, and the last one is thrown, so that
 * the caller prints it and exits with an error status.
 */
export async function runImageRemove(options: ImageRemoveOptions): Promise<number> {
  const output = options.output ?? processOutput();
  const store = openImageStore(options.root);

  let failure: ImageError | undefined;
  for (const reference of options.references) {
    try {
      const removeOptions = { force: options.force === true, usedBy: options.usedBy };
      output.stdout(describeRemoval(await store.remove(reference, removeOptions)));
    } catch (error) {
      if (!ImageError.isInstance(error)) throw error;
      if (failure !== undefined) output.stderr(`m-docker: ${failure.message}\n`);
      failure = error;
    }
  }
  if (failure !== undefined) throw failure;
  return 0;
}

function describeRemoval(result: RemoveResult): string {
  const lines = result.untagged.map((reference) => `Untagged: ${reference}\n`);
  if (result.deleted !== undefined) lines.push(`Deleted: ${result.deleted}\n`);
  for (const layer of result.deletedLayers) lines.push(`Deleted: ${layer}\n`);
  return lines.join('');
}
