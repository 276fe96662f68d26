import { writeSync } from 'node:fs';

import { CgroupError, type ContainerCgroup, createCgroup, type ResourceLimits, removeStaleCgroups } from '@m-docker/cgroups';
import type { Logger } from '@m-docker/log';
import { close, O_WRONLY, openFile } from '@m-docker/syscalls';

import { CliError } from '../cli-error.js';
import { readStartTime } from '../store/process-identity.js';
import { logWarmUpOutcome, type MigrationWarmUpStart, startMigrationWarmUp } from './container-cgroup-warm-up.js';
import type { CgroupRequest } from './resource-options.js';
import type { Timeline } from './timeline.js';

// Every container gets a cgroup of its own, with or without limits. The CLI
// creates it right after it sends the init its config, while the init sets
// up the container. It moves the init in after `ready` and before `start`,
// while the init waits and before COMMAND exists, so that the init's own
// set-up is not charged to the container's limits. It removes the cgroup
// once the init has exited and been reaped. Writes that move nothing,
// started after the spawn and after the creation, keep that move fast (see
// container-cgroup-warm-up.ts).
//
// The cgroup's name is `<container id>-<CLI pid>-<CLI start time>`, the
// start time being field 22 of /proc/<pid>/stat (clock ticks since boot). A
// CLI killed by SIGKILL cannot remove its cgroup, so every run also removes,
// while its COMMAND runs, the empty cgroups under its parent whose CLI no
// longer runs: no process
// has that pid, or the process that has it started at another time. A pid
// alone could have been reused since. Directories with other names are left
// alone.
//
// The pids limit is the exception: the cgroup is created with pids.max at
// max, and the CLI passes pids.max, open for writing, to the init, which
// writes the limit as its last step before execve. The pids controller
// counts the threads of the init's runtime, which may start more while the
// init finishes its set-up after `start`, and Bun aborts when one is
// refused (see execCommand in @m-docker/init).
//
// NOTE: the pid is read in the CLI's PID namespace. A CLI in another PID
// namespace that uses the same parent may see a live CLI's cgroup as stale,
// and remove it while it is empty, between its creation and the init's move.

const NAME_PATTERN = /^[0-9a-f]{64}-(\d+)-(\d+)$/;

/** A container's cgroup during one run. */
export interface RunCgroup {
  /**
   * Creates the cgroup with the requested limits, except the pids limit,
   * and opens its pids.max for that limit. Then it starts the second
   * warm-up write. Throws a CliError (status 125) naming what failed. The
   * library has then removed what it created, except when only the open
   * failed: remove() removes the cgroup then.
   */
  create(): void;
  /** Removes the leftover cgroups of killed CLIs under the same parent. A failure is logged, not thrown. */
  removeStale(log: Logger): void;
  /** Moves the init into the cgroup, or throws a CliError (status 125). */
  join(pid: number): void;
  /**
   * Returns the cgroup's pids.max, open for writing and close-on-exec,
   * with the limit that --pids-limit requests, for the init to write
   * there; undefined without a limit. The caller then owns `fd` and closes
   * it. A later call returns undefined.
   */
  takePidsLimit(): PidsLimitFile | undefined;
  /** Logs at debug level how each warm-up write ended, once it has. */
  logWarmUps(log: Logger): void;
  /**
   * Prints one line on stderr when the OOM killer killed a process of the
   * container, and returns whether it did. Call it after the init has
   * exited. A count that cannot be read is logged and counts as no kill.
   */
  reportOutOfMemory(log: Logger): boolean;
  /** Removes the cgroup, once, and closes pids.max unless it was taken. A failure is logged, not thrown, because the container has ended already. */
  remove(log: Logger): void;
}

/** The container's pids.max, open for writing, and the limit that belongs there. */
export interface PidsLimitFile {
  fd: number;
  limit: number;
}

/**
 * Returns the cgroup of the container `id`, to be created below
 * `request.parent` with `request.limits`. `warmUp` is the warm-up write
 * started after the init's spawn.
 */
export function containerCgroup(request: CgroupRequest, id: string, timeline: Timeline, warmUp?: MigrationWarmUpStart): RunCgroup {
  return new RunningCgroup(request, id, timeline, warmUp);
}

class RunningCgroup implements RunCgroup {
  #cgroup: ContainerCgroup | undefined;
  #pidsLimit: PidsLimitFile | undefined;
  #removed = false;
  readonly #warmUps: MigrationWarmUpStart[] = [];

  constructor(
    private readonly request: CgroupRequest,
    private readonly id: string,
    private readonly timeline: Timeline,
    warmUp: MigrationWarmUpStart | undefined,
  ) {
    if (warmUp) this.#warmUps.push(warmUp);
  }

  create(): void {
    const started = performance.now();
    const name = `${this.id}-${process.pid}-${readStartTime('self')}`;
    try {
      this.#cgroup = createCgroup({ id: name, parent: this.request.parent, limits: withoutPidsLimit(this.request.limits) });
    } catch (error) {
      throw cliError("cannot create the container's cgroup", error);
    }
    this.#pidsLimit = this.#openPidsMax(this.#cgroup);
    this.timeline.mark('cgroup created', { ms: elapsed(started), parent: this.request.parent, name });
    this.#warmUps.push(startMigrationWarmUp(this.timeline, 'cgroup warm-up repeated'));
  }

  removeStale(log: Logger): void {
    // removeStaleCgroups rejects the hierarchy's root as the parent, because
    // the machine's own top-level cgroups are there.
    if (this.request.parent.split('/').every((segment) => segment === '')) {
      log.debug('stale cgroups are not looked for in the root cgroup', { parent: this.request.parent });
      return;
    }

    const started = performance.now();
    try {
      const removed = removeStaleCgroups({ parent: this.request.parent, isAlive: isCliAlive });
      this.timeline.mark('stale cgroups removed', { ms: elapsed(started), count: removed.length });
      for (const path of removed) log.debug('removed the cgroup of a CLI that no longer runs', { path });
    } catch (error) {
      log.warn('removing the cgroups of CLIs that no longer run failed', { parent: this.request.parent, error: (error as Error).message });
    }
  }

  join(pid: number): void {
    const started = performance.now();
    try {
      this.#created().addProcess(pid);
    } catch (error) {
      throw cliError("cannot move the container's init into its cgroup", error);
    }
    this.timeline.mark('cgroup joined', { ms: elapsed(started), pid });
  }

  takePidsLimit(): PidsLimitFile | undefined {
    const taken = this.#pidsLimit;
    this.#pidsLimit = undefined;
    return taken;
  }

  logWarmUps(log: Logger): void {
    for (const warmUp of this.#warmUps) logWarmUpOutcome(warmUp, log);
  }

  reportOutOfMemory(log: Logger): boolean {
    if (this.#cgroup === undefined) return false;
    let killed: boolean;
    try {
      killed = this.#cgroup.oomKilled();
    } catch (error) {
      log.warn("reading the container's OOM kill count failed", { error: (error as Error).message });
      return false;
    }
    if (!killed) return false;

    const message =
      this.request.memory === undefined
        ? "the container ran out of memory under the limit of a cgroup above it, and the kernel's OOM killer killed a process in it"
        : `the container reached its memory limit (--memory ${this.request.memory}), and the kernel's OOM killer killed a process in it: raise --memory`;
    writeSync(2, `m-docker: ${message}\n`);
    return true;
  }

  remove(log: Logger): void {
    const pidsLimit = this.takePidsLimit();
    if (pidsLimit !== undefined) close(pidsLimit.fd);
    if (this.#cgroup === undefined || this.#removed) return;
    this.#removed = true;

    const started = performance.now();
    try {
      this.#cgroup.remove();
      this.timeline.mark('cgroup removed', { ms: elapsed(started) });
    } catch (error) {
      // The next run with the same parent removes it, once it is empty.
      log.warn("removing the container's cgroup failed", { error: (error as Error).message });
    }
  }

  // Opened right after the creation, while the init still sets up the
  // container, so that only sending it is left between ready and start.
  #openPidsMax(cgroup: ContainerCgroup): PidsLimitFile | undefined {
    const limit = this.request.limits.pidsLimit;
    if (limit === undefined || limit === -1) return undefined;

    // On v1 the pids hierarchy's directory, on v2 the one directory.
    const directory = cgroup.paths.pids ?? cgroup.paths[''];
    if (directory === undefined) throw new CliError("internal error: the container's cgroup is in no pids hierarchy");
    const path = `${directory}/pids.max`;
    try {
      return { fd: openFile(path, O_WRONLY), limit };
    } catch (error) {
      throw cliError(`cannot open ${path} for --pids-limit`, error);
    }
  }

  #created(): ContainerCgroup {
    if (this.#cgroup === undefined) throw new CliError("internal error: the container's cgroup was used before it was created");
    return this.#cgroup;
  }
}

/** Returns whether the CLI that created the cgroup `name` still runs. Names of another form count as alive, so they are kept. */
export function isCliAlive(name: string): boolean {
  const match = NAME_PATTERN.exec(name);
  if (!match) return true;
  const [, pid, ticks] = match as unknown as [string, string, string];
  return readStartTime(Number(pid)) === ticks;
}

// -1 makes createCgroup require the pids controller, as the limit itself
// would, and leaves pids.max at max, the value of a new cgroup.
function withoutPidsLimit(limits: ResourceLimits): ResourceLimits {
  return limits.pidsLimit === undefined ? limits : { ...limits, pidsLimit: -1 };
}

function cliError(failedStep: string, error: unknown): CliError {
  if (CgroupError.isInstance(error) && error.code === 'INVALID_VALUE') {
    return new CliError(error.message, undefined, { cause: error });
  }
  return new CliError(`${failedStep}: ${(error as Error).message}`, undefined, { cause: error });
}

function elapsed(started: number): string {
  return (performance.now() - started).toFixed(2);
}
