import type { ImportProgress } from '@m-docker/images';

import { humanSize } from './human-units.js';

const BAR_WIDTH = 30;
const PHASE_LABELS: Record<ImportProgress['phase'], string> = { read: 'Reading', unpack: 'Unpacking' };

/**
 * A one-line progress bar on a terminal, redrawn in place with `\r`:
 * `Unpacking [=============>                ]  45% 12.3MB/27.1MB`. It
 * redraws only when the phase or the whole percentage changes, so a
 * chunk-by-chunk caller writes at most about 100 lines per phase.
 */
export class ProgressBar {
  /** Phase and whole percentage of the last line drawn. */
  #drawn: string | undefined;

  constructor(private readonly write: (text: string) => void) {}

  update(progress: ImportProgress): void {
    const key = `${progress.phase} ${percentOf(progress)}`;
    if (key === this.#drawn) return;
    this.#drawn = key;
    this.write(`\r\x1b[K${formatProgress(progress)}`);
  }

  /** Clears the bar's line, so that the next output starts on an empty line. */
  finish(): void {
    if (this.#drawn === undefined) return;
    this.#drawn = undefined;
    this.write('\r\x1b[K');
  }
}

function percentOf({ bytesDone, bytesTotal }: ImportProgress): number {
  return bytesTotal > 0 ? Math.floor(Math.min(bytesDone / bytesTotal, 1) * 100) : 100;
}

/** Formats one state of the bar; the byte counts round like `docker images` sizes. */
export function formatProgress({ phase, bytesDone, bytesTotal }: ImportProgress): string {
  const percent = percentOf({ phase, bytesDone, bytesTotal });
  const filled = Math.floor((percent * BAR_WIDTH) / 100);
  const bar = filled >= BAR_WIDTH ? '='.repeat(BAR_WIDTH) : `${'='.repeat(filled)}>${' '.repeat(BAR_WIDTH - filled - 1)}`;
  return `${PHASE_LABELS[phase].padEnd(9)} [${bar}] ${`${percent}%`.padStart(4)} ${humanSize(bytesDone)}/${humanSize(bytesTotal)}`;
}
