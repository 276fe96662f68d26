// A description of the machine and software that produced the numbers.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, realpathSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { delimiter, join } from 'node:path';

/** Returns the first executable named `name` on PATH, as the shell would find it, or undefined. */
export function findOnPath(name) {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (directory === '') continue;
    const candidate = join(directory, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory; the shell goes on to the next one too.
    }
  }
  return undefined;
}

/** Returns the first line of `argv`'s output, or undefined if it cannot run. */
function firstLineOf(argv) {
  const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  return `${result.stdout}${result.stderr}`.split('\n')[0].trim() || undefined;
}

function cpuModel() {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown CPU model';
  } catch {
    return 'unknown CPU model (/proc/cpuinfo is not readable)';
  }
}

/**
 * Describes the machine: CPU model, cores, kernel, the Node that runs this
 * script, and the tools the benchmark uses.
 */
export function describeMachine() {
  const runc = findOnPath('runc');
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    kernel: `Linux ${release()}`,
    harnessNode: `${process.version} (${realpathSync(process.execPath)})`,
    runc: runc ? (firstLineOf([runc, '--version']) ?? 'installed, version unknown') : 'not installed',
    strace: findOnPath('strace') ? (firstLineOf(['strace', '-V']) ?? 'installed') : 'not installed',
    unshare: findOnPath('unshare') ? (firstLineOf(['unshare', '--version']) ?? 'installed') : 'not installed',
  };
}
