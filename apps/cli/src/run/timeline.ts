import type { LogFields, Logger } from '@m-docker/log';

/** The phases of `m-docker run`, in the order they happen. */
export const RUN_PHASES = [
  'cli started',
  'init spawned',
  'cgroup warm-up started',
  'root prepared',
  'config sent',
  'cgroup created',
  'cgroup warm-up repeated',
  'ready received',
  'cgroup joined',
  'start sent',
  'exec confirmed',
  'stale cgroups removed',
  'container exited',
  'cgroup removed',
] as const;

export type RunPhase = (typeof RUN_PHASES)[number];

/**
 * Records when each phase of a run happened, in milliseconds since the CLI
 * process started (performance.now() counts from there under Node and Bun).
 * The init is spawned before the logger exists, so marks made before
 * `attach()` are logged when it is called, with their time as `at`.
 * `summary()` gives the whole timeline on one line for --debug.
 */
export class Timeline {
  private readonly marks = new Map<RunPhase, number>();
  private readonly pending: { phase: RunPhase; fields: LogFields | undefined; time: number }[] = [];
  private log: Logger | undefined;

  /** Records `phase` at `time` (default: now) and logs it once a logger is attached. */
  mark(phase: RunPhase, fields?: LogFields, time = performance.now()): void {
    this.marks.set(phase, time);
    if (this.log) this.log.debug(phase, fields);
    else this.pending.push({ phase, fields, time });
  }

  /** Logs the marks made so far and every later one through `log`. */
  attach(log: Logger): void {
    this.log = log;
    for (const { phase, fields, time } of this.pending.splice(0)) {
      log.debug(phase, { ...fields, at: `${time.toFixed(1)}ms` });
    }
  }

  /** Returns `cli started 6.8, init spawned 9.6, …` for the phases reached so far, in time order. */
  summary(): string {
    return [...this.marks]
      .sort((a, b) => a[1] - b[1])
      .map(([phase, time]) => `${phase} ${time.toFixed(1)}`)
      .join(', ');
  }
}
