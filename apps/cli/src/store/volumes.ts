import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';

import { CliError } from '../cli-error.js';
import { listContainers } from './containers.js';
import { isRunning } from './process-identity.js';

// Named volumes live in <root>/volumes/<name>/: the data in _data/, which
// is what containers see, and volume.json with the creation time. A volume
// outlives every container that uses it, until `volume rm`.

/** One named volume, as `volume ls` lists it. */
export interface VolumeRecord {
  name: string;
  /** ISO 8601 time of creation. */
  created: string;
  /** Whether it was created for a `-v CONTAINER_PATH` and goes with its container's --rm. */
  anonymous: boolean;
}

export function volumesDir(root: string): string {
  return `${root}/volumes`;
}

/** Returns the host directory of volume `name`, creating the volume when it does not exist. */
export function ensureVolume(root: string, name: string, anonymous = false): string {
  const dir = `${volumesDir(root)}/${name}`;
  mkdirSync(volumesDir(root), { recursive: true, mode: 0o700 });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return `${dir}/_data`;
    throw error;
  }
  mkdirSync(`${dir}/_data`, { mode: 0o755 });
  const record: VolumeRecord = { name, created: new Date().toISOString(), anonymous };
  writeFileSync(`${dir}/volume.json`, `${JSON.stringify(record, null, 2)}\n`);
  return `${dir}/_data`;
}

/** Lists the volumes, sorted by name. */
export function listVolumes(root: string): VolumeRecord[] {
  let names: string[];
  try {
    names = readdirSync(volumesDir(root)).sort();
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    try {
      return [JSON.parse(readFileSync(`${volumesDir(root)}/${name}/volume.json`, 'utf8')) as VolumeRecord];
    } catch {
      return [];
    }
  });
}

/**
 * Removes volume `name` and its data. It is refused while a container
 * record names it, unless `force` is set and none of those is running.
 */
export function removeVolume(root: string, name: string, force = false): void {
  const dir = `${volumesDir(root)}/${name}`;
  if (!existsDirectory(dir)) {
    throw new CliError(`volume ${JSON.stringify(name)} not found: see 'm-docker volume ls'`);
  }
  const users = listContainers(root).filter((record) => record.volumes?.includes(name));
  const running = users.filter((record) => record.finished === undefined && isRunning(record.owner));
  if (running.length > 0 || (users.length > 0 && !force)) {
    const ids = users.map((record) => record.id.slice(0, 12)).join(', ');
    throw new CliError(`volume ${JSON.stringify(name)} is in use by container ${ids}: remove the container first`);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Removes the anonymous volumes among `names`, when a --rm container that used them is removed. */
export function removeAnonymousVolumes(root: string, names: readonly string[]): void {
  const anonymous = new Set(listVolumes(root).filter((volume) => volume.anonymous).map((volume) => volume.name));
  for (const name of names) {
    if (anonymous.has(name)) rmSync(`${volumesDir(root)}/${name}`, { recursive: true, force: true });
  }
}

function existsDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
