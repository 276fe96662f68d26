import { type MigrationWarmUp, warmUpMigration } from '@m-docker/cgroups/migration-warm-up';
import type { Logger } from '@m-docker/log';

import type { RunPhase, Timeline } from './timeline.js';

// Moving the init into its cgroup between `ready` and `start` delays the
// whole run by whatever the move takes. The first cgroup migration after a
// pause waits for an RCU grace period in the kernel, 4 to 19 ms on the
// project's machines, and one made soon after another migration does not
// (see @m-docker/cgroups/migration-warm-up). So the CLI makes a write that
// moves nothing, on the thread pool, right after it spawns the init. It
// makes a second one once the container's cgroup exists, because the first
// one's effect wears off about one grace period after it ended, and a slow
// init start-up can outlast that. Neither moves the init, and both run while
// the CLI has other work or waits for `ready`.
//
// This module stays small and imports no node: module at load time, because
// main.ts loads it before the rest of the CLI.

/** A warm-up write in flight, with the timeline phase that marked its start. */
export interface MigrationWarmUpStart {
  phase: RunPhase;
  outcome: Promise<MigrationWarmUp>;
}

/** Starts a warm-up write on the thread pool, marks `phase` on the timeline and returns at once. */
export function startMigrationWarmUp(timeline: Timeline, phase: RunPhase): MigrationWarmUpStart {
  const outcome = warmUpMigration();
  timeline.mark(phase);
  return { phase, outcome };
}

/** Logs at debug level how the write ended, once it has. A failure costs only the time that the write would have saved. */
export function logWarmUpOutcome(warmUp: MigrationWarmUpStart, log: Logger): void {
  void warmUp.outcome.then(({ path, error }) => {
    if (error) {
      log.debug('the cgroup warm-up write failed, so moving the init may wait for an RCU grace period', { phase: warmUp.phase, error: error.message });
      return;
    }
    log.debug('the cgroup warm-up write ended', { phase: warmUp.phase, path });
  });
}
