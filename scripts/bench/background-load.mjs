// The CPU time that processes other than this benchmark used while it ran:
// on a shared 2-core machine that is the first suspect for a slow number.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

// USER_HZ, the unit of /proc/stat and /proc/PID/stat. Linux fixes it at 100
// on x86-64 and arm64, the fallback when getconf cannot run.
export function readTicksPerSecond() {
  const ticks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
}

// The first line of /proc/stat: `cpu user nice system idle iowait irq softirq steal ...`.
function readMachineTicks() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields;
  return { busy: user + nice + system + irq + softirq + steal, idle: idle + iowait };
}

// utime, stime, cutime and cstime of this process: its own CPU time and that
// of every child it has waited for, which includes their waited-for children.
function readOwnTicks() {
  const afterName = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const [utime, stime, cutime, cstime] = afterName.slice(11, 15).map(Number);
  return utime + stime + cutime + cstime;
}

/**
 * Starts counting. The returned function reports `{ seconds, otherCores }`:
 * the elapsed time, and the average number of cores that everything else
 * (other processes, kernel threads, hypervisor steal) kept busy.
 */
export function startBackgroundLoad() {
  const ticksPerSecond = readTicksPerSecond();
  const started = { time: performance.now(), machine: readMachineTicks(), own: readOwnTicks() };
  return () => {
    const seconds = (performance.now() - started.time) / 1000;
    const machine = readMachineTicks();
    const ownTicks = readOwnTicks() - started.own;
    const otherTicks = machine.busy - started.machine.busy - ownTicks;
    return { seconds, otherCores: Math.max(0, otherTicks) / ticksPerSecond / seconds };
  };
}
