import type { LogFields, Logger } from '@m-docker/log';

/** The phases of `m-docker run`, in the order they happen. */
export const RUN_PHASES = [
  'cli started',
  'init spawned',
  'config sent',
  'ready received',
  'start sent',
  'exec confirmed',
  'container exited',
] as const;

export type RunPhase = (typeof RUN_PHASES)[number];

/**
 * Records when each phase of a run happened, in milliseconds since the CLI
 * process started (performance.now() counts from there under Node and Bun),
 * and logs each phase as it happens. `summary()` gives the whole timeline on
 * one line for --debug.
 */
export class Timeline {
  private readonly marks = new Map<RunPhase, number>();

  constructor(private readonly log: Logger) {}

  /** Records `phase` at `time` (default: now) and logs it. */
  mark(phase: RunPhase, fields?: LogFields, time = performance.now()): void {
    this.marks.set(phase, time);
    this.log.debug(phase, fields);
  }

  /** Returns `init spawned 8.1, config sent 9.0, …` for the phases reached so far. */
  summary(): string {
    return RUN_PHASES.filter((phase) => this.marks.has(phase))
      .map((phase) => `${phase} ${(this.marks.get(phase) as number).toFixed(1)}`)
      .join(', ');
  }
}
