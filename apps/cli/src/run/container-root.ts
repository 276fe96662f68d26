import { statSync } from 'node:fs';

import type { ImageRunConfig, RunCommandOptions } from '@m-docker/images/lookup';
import type { MountConfig } from '@m-docker/ipc';
import type { Logger } from '@m-docker/log';

import { CliError } from '../cli-error.js';
import { createContainer, finishContainer, type NewContainer, removeContainer } from '../store/containers.js';
import { ownIdentity } from '../store/process-identity.js';
import { cleanStaleState } from '../store/stale.js';
import { ensureVolume, removeAnonymousVolumes } from '../store/volumes.js';
import type { RootSettings, RunRequest } from './container-config.js';
import type { ContainerIdentity } from './container-state.js';
import { findTini, INIT_PATH_IN_CONTAINER, initMount, withInit } from './docker-init.js';
import { writeEtcFiles } from './etc-files.js';
import { openImageForRun } from './image-root.js';
import { DEFAULT_SHM_SIZE, orderMounts, parseByteSize, parseTmpfs, parseVolume, type VolumeSpec } from './mount-options.js';

// A run with --image or --rootfs gets a root file system of its own. The
// CLI checks every option first, then resolves the image's layers, creates
// the container's directory in the store with its generated /etc files and
// volumes, and hands the init a RootConfig and the mounts. The init mounts
// all of it inside the container's mount namespace, so the host never sees
// a mount. After the exit, finish() keeps or removes the directory.

/** The container's root, ready for the config, and how to end it. */
export interface PreparedRoot {
  settings: RootSettings;
  /** The container's name: the --name value, or the one generated when the directory was created. */
  name: string;
  /** Records the exit status and whether the OOM killer killed a process of the container, or removes the container with --rm. */
  finish(status: number, oomKilled: boolean): void;
  /** Removes everything prepare created, after a failure before the command ran. */
  discard(): void;
}

/** The characters that overlayfs's mount options use as separators, which a layer path cannot contain. */
const OVERLAY_SEPARATORS = /[:,]/;

/** Prepares the root for `request`, which has --image or --rootfs. Nothing is left behind when it throws. */
export async function prepareRoot(
  request: RunRequest,
  id: string,
  hostname: string,
  log: Logger,
  identity: ContainerIdentity,
): Promise<PreparedRoot> {
  const volumes = request.volumes.map((value) => parseVolume(value, process.cwd()));
  const tmpfs = request.tmpfs.map(parseTmpfs);
  const shmSize = request.shmSize === undefined ? DEFAULT_SHM_SIZE : parseByteSize(request.shmSize, '--shm-size');
  for (const volume of volumes) if (volume.kind === 'bind') checkHostPath(volume.hostPath, volume);
  orderMounts([...volumes, ...tmpfs]);
  const tini = request.init ? findTini(process.env, true) : undefined;
  if (tini !== undefined) checkInitPathFree([...volumes, ...tmpfs]);

  const source = request.image !== undefined ? await openImageForRun(request.root, request.image, log) : openRootfs(request.rootfs as string);
  const argv = await commandLine(request, source.config);
  for (const dir of source.lowerDirs) checkLayerPath(dir);

  cleanStaleState(request.root, log);

  // Anonymous volumes get random names, as in docker.
  const volumeNames = volumes.map(volumeName);
  const container: NewContainer = {
    id,
    image: source.imageId,
    source: source.name,
    ownRoot: true,
    command: argv,
    created: new Date().toISOString(),
    owner: ownIdentity(),
    volumes: volumeNames.filter(Boolean),
    autoRemove: request.remove,
    ...request.capabilities,
  };
  if (identity.init !== undefined) container.init = identity.init;
  const { record, paths } = createContainer(request.root, container, identity.requestedName);
  const anonymous: string[] = [];
  try {
    const etcMounts = writeEtcFiles(paths.dir, hostname).map(
      (file): MountConfig => ({ type: 'bind', source: file.path, destination: `/etc/${file.name}`, readonly: false, data: '' }),
    );
    const volumeMounts = volumes.map((volume, index) => volumeMount(request.root, volume, volumeNames[index] as string, anonymous));
    const userDestinations = new Set([...volumeMounts, ...tmpfs].map((mount) => mount.destination));
    // NOTE: with a volume at /sbin, the init creates the empty mount point
    // docker-init in the volume's host directory, where it stays.
    const initMounts = tini === undefined ? [] : [initMount(tini)];
    const mounts = orderMounts([
      ...etcMounts.filter((mount) => !userDestinations.has(mount.destination)),
      ...volumeMounts,
      ...tmpfs,
      ...initMounts,
    ]);
    log.debug('container directory created', { dir: paths.dir, layers: source.lowerDirs.length, mounts: mounts.length });

    const settings: RootSettings = {
      argv: tini === undefined ? argv : withInit(INIT_PATH_IN_CONTAINER, argv),
      imageEnv: source.config.Env ?? [],
      cwd: request.workdir ?? (source.config.WorkingDir || '/'),
      root: {
        target: paths.target,
        lowerDirs: source.lowerDirs,
        upperDir: paths.upperDir,
        workDir: paths.workDir,
        readonly: request.readOnly,
        shmSize,
      },
      mounts,
      // Without a user the command runs as uid 0 with root's groups from the
      // container's /etc/group, not with the CLI's own groups.
      user: request.user ?? (source.config.User || '0'),
    };
    return {
      settings,
      name: record.name,
      finish: (status, oomKilled) => {
        finishContainer(request.root, record, status, oomKilled);
        if (request.remove) removeAnonymousVolumes(request.root, record.volumes);
      },
      discard: () => {
        removeContainer(request.root, id);
        removeAnonymousVolumes(request.root, anonymous);
      },
    };
  } catch (error) {
    removeContainer(request.root, id);
    removeAnonymousVolumes(request.root, anonymous);
    throw error;
  }
}

interface RootSource {
  imageId: string | null;
  name: string;
  lowerDirs: string[];
  config: ImageRunConfig;
}

function openRootfs(dir: string): RootSource {
  const absolute = dir.startsWith('/') ? dir : `${process.cwd()}/${dir}`;
  let kind: 'missing' | 'directory' | 'other' = 'missing';
  try {
    kind = statSync(absolute).isDirectory() ? 'directory' : 'other';
  } catch {
    // Reported below as missing.
  }
  if (kind === 'missing') {
    throw new CliError(`invalid --rootfs ${JSON.stringify(dir)}: no such directory: give a directory that contains a root file system`);
  }
  if (kind === 'other') {
    throw new CliError(`invalid --rootfs ${JSON.stringify(dir)}: not a directory: give a directory that contains a root file system, or import a tarball with 'm-docker image import'`);
  }
  return { imageId: null, name: absolute, lowerDirs: [absolute], config: {} };
}

// docker's rules (resolveRunCommand): --entrypoint replaces the image's
// Entrypoint and drops its Cmd; COMMAND replaces Cmd.
async function commandLine(request: RunRequest, config: ImageRunConfig): Promise<string[]> {
  const { ImageError, resolveRunCommand } = await import('@m-docker/images/lookup');
  const command = request.command === undefined ? [] : [request.command, ...request.args];
  const options: RunCommandOptions = { command };
  if (request.entrypoint !== undefined) options.entrypoint = request.entrypoint;
  try {
    return resolveRunCommand(config, options);
  } catch (error) {
    if (!ImageError.isInstance(error)) throw error;
    const what = request.image === undefined ? `--rootfs ${request.rootfs}` : `image ${request.image}`;
    const reason = request.entrypoint === '' ? "--entrypoint '' cleared the entrypoint and the image's Cmd" : `${what} has no Entrypoint or Cmd`;
    throw new CliError(`no command to run: ${reason}: give COMMAND after the options`, undefined, { cause: error });
  }
}

function volumeName(volume: VolumeSpec): string {
  if (volume.kind === 'named') return volume.name;
  if (volume.kind === 'anonymous') return randomName();
  return '';
}

function volumeMount(root: string, volume: VolumeSpec, name: string, anonymous: string[]): MountConfig {
  let source: string;
  if (volume.kind === 'bind') {
    source = volume.hostPath;
  } else {
    source = ensureVolume(root, name, volume.kind === 'anonymous');
    if (volume.kind === 'anonymous') anonymous.push(name);
  }
  return { type: 'bind', source, destination: volume.destination, readonly: volume.readonly, data: '' };
}

function checkHostPath(path: string, volume: VolumeSpec): void {
  try {
    statSync(path);
  } catch {
    throw new CliError(
      `invalid -v: host path ${path} does not exist: create it first, or use a named volume (-v NAME:${volume.destination})`,
    );
  }
}

function checkInitPathFree(mounts: readonly { destination: string }[]): void {
  if (mounts.some((mount) => mount.destination === INIT_PATH_IN_CONTAINER)) {
    throw new CliError(`--init binds tini onto ${INIT_PATH_IN_CONTAINER}, and a -v or --tmpfs mount uses that path too: mount it elsewhere`);
  }
}

function checkLayerPath(path: string): void {
  if (OVERLAY_SEPARATORS.test(path)) {
    throw new CliError(`cannot use ${path} as a layer: overlayfs cannot take a path that contains ':' or ','; move or link it`);
  }
}

function randomName(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
}
