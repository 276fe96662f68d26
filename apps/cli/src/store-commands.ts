import { writeSync } from 'node:fs';

import type { Logger } from '@m-docker/log';

import { CliError, requireRoot } from './cli-error.js';
import { VOLUME_NAME_PATTERN } from './run/mount-options.js';
import { inspectContainers, printContainers, removeContainers } from './store/container-commands.js';
import type { LogsOptions } from './store/container-logs.js';
import { killContainers, stopContainers, waitContainers } from './store/container-signals.js';
import { cleanStaleState } from './store/stale.js';
import { ensureVolume, listVolumes, removeVolume, volumesDir } from './store/volumes.js';
import type { StoreCommand } from './store-command-line.js';

// Runs the commands that manage the store. Each first removes what killed
// runs left behind, so that a crash is cleaned up by the next command.


/** Runs `command` against the store at `root`; returns the exit status. */
export async function runStoreCommand(command: StoreCommand, root: string, log: Logger): Promise<number> {
  requireRoot("m-docker's store belongs to root");
  cleanStaleState(root, log);
  await removeStaleCgroups(log);

  switch (command.kind) {
    case 'volume-create':
      return createVolume(root, command.name);
    case 'volume-ls':
      return printVolumes(root, command.quiet);
    case 'volume-rm':
      return removeVolumes(root, command.names, command.force);
    case 'container-ls':
      printContainers(root, command.all, command.quiet, command.format);
      return 0;
    case 'container-stop':
      return stopContainers(root, command.references, command.seconds);
    case 'container-kill':
      return killContainers(root, command.references, command.signal);
    case 'container-wait':
      return waitContainers(root, command.references);
    case 'container-inspect':
      return inspectContainers(root, command.references);
    case 'container-logs': {
      const { printLogs } = await import('./store/container-logs.js');
      const options: LogsOptions = { follow: command.follow, timestamps: command.timestamps };
      if (command.tail !== undefined) options.tail = command.tail;
      return printLogs(root, command.reference, options);
    }
    case 'container-rm':
      return removeContainers(root, command.ids, command.force, command.volumes);
    default: {
      const { runImageCommand } = await import('./image-command-runner.js');
      return runImageCommand(command, root, log);
    }
  }
}

// The cgroups that runs killed with SIGKILL left below the parent that
// M_DOCKER_CGROUP_PARENT (or the default) names go with the next m-docker
// command, as the next run removes them too. A command given
// --cgroup-parent on its run reaches only that parent through the next run.
async function removeStaleCgroups(log: Logger): Promise<void> {
  try {
    const [{ removeStaleCgroups: remove }, { isCliAlive }, { selectParent }] = await Promise.all([
      import('@m-docker/cgroups'),
      import('./run/container-cgroup.js'),
      import('./run/resource-options.js'),
    ]);
    const parent = selectParent(undefined, process.env);
    for (const path of remove({ parent, isAlive: isCliAlive })) log.debug('removed the cgroup of a run that no longer runs', { path });
  } catch (error) {
    log.debug('looking for the cgroups of killed runs failed', { error: (error as Error).message });
  }
}

function createVolume(root: string, name: string | undefined): number {
  const volumeName = name ?? Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
  if (!VOLUME_NAME_PATTERN.test(volumeName)) {
    throw new CliError(
      `invalid volume name ${JSON.stringify(volumeName)}: use letters, digits, '_', '.' and '-', at least 2 characters, starting with a letter or digit`,
    );
  }
  ensureVolume(root, volumeName);
  print(`${volumeName}\n`);
  return 0;
}

// Tries every name, as docker does; -f skips volumes that do not exist.
function removeVolumes(root: string, names: readonly string[], force: boolean): number {
  let status = 0;
  const existing = new Set(listVolumes(root).map((volume) => volume.name));
  for (const name of names) {
    if (force && !existing.has(name)) continue;
    try {
      removeVolume(root, name, force);
      print(`${name}\n`);
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      writeSync(2, `m-docker: ${error.message}\n`);
      status = 1;
    }
  }
  return status;
}

function printVolumes(root: string, quiet: boolean): number {
  const volumes = listVolumes(root);
  if (quiet) {
    print(volumes.map((volume) => `${volume.name}\n`).join(''));
    return 0;
  }
  const rows = [['VOLUME NAME', 'MOUNTPOINT'], ...volumes.map((volume) => [volume.name, `${volumesDir(root)}/${volume.name}/_data`])];
  const width = Math.max(...rows.map(([name]) => (name as string).length)) + 3;
  print(rows.map(([name, path]) => `${(name as string).padEnd(width)}${path}\n`).join(''));
  return 0;
}

function print(text: string): void {
  if (text !== '') writeSync(1, text);
}

