import { readFileSync } from 'node:fs';

// A pid alone does not name a process for long: once it exits, the kernel
// may give its pid to another one. The pid plus the process's start time
// (field 22 of /proc/PID/stat, in clock ticks since boot) does, so stale
// state is recognised even after the pid was reused.

/** A process named by its pid and its start time. */
export interface ProcessIdentity {
  pid: number;
  startTime: string;
}

/** Returns the identity of the calling process. */
export function ownIdentity(): ProcessIdentity {
  return identityOf(process.pid);
}

/** Returns the identity of the process `pid`; the start time is '' when it is gone. */
export function identityOf(pid: number): ProcessIdentity {
  return { pid, startTime: readStartTime(pid) ?? '' };
}

/** Returns whether the process `identity` names still runs. */
export function isRunning(identity: ProcessIdentity): boolean {
  return readStartTime(identity.pid) === identity.startTime;
}

/** Returns field 22 of /proc/PID/stat, the start time in clock ticks since boot, or undefined when the process is gone or a zombie. */
export function readStartTime(pid: number | 'self'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces,
  // so the fields are counted from the last ')'. A zombie (state Z or X)
  // has exited and only waits for its parent to reap it, which for a
  // detached monitor can take a while.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}
