import type { Logger } from '@m-docker/log';

import { type ContainerRecord, createContainer, finishContainer, removeContainer } from '../store/containers.js';
import { releaseName, reserveName } from '../store/names.js';
import { identityOf, ownIdentity, type ProcessIdentity } from '../store/process-identity.js';
import type { RunRequest } from './container-config.js';

// Every run is a container with a record in the store, whether it has a
// root of its own (container-root.ts writes that record, with the overlay's
// directories) or runs on the host's root (this module writes a record
// alone). The record is what `ps`, `stop`, `kill`, `wait`, `inspect` and
// `rm` read. Its owner is this CLI, which writes the exit into it.

/** The parts of a record that a run has before its root is prepared. */
export interface ContainerIdentity {
  name: string;
  init: ProcessIdentity | undefined;
}

/** Reserves the container's name and reads the init's identity; release() undoes the reservation. */
export function startIdentity(request: RunRequest, id: string, initPid: number | undefined): ContainerIdentity & { release(): void } {
  const name = reserveName(request.root, id, request.name);
  const init = initPid === undefined ? undefined : identityOf(initPid);
  return { name, init, release: () => releaseName(request.root, name, id) };
}

/** A record of a container on the host's root, and how to end it. */
export interface HostContainer {
  record: ContainerRecord;
  /** Records the exit: the status and whether the OOM killer killed a process of the container. */
  finish(status: number, oomKilled: boolean): void;
  discard(): void;
}

/** Writes the record of a run on the host's root file system. */
export function registerHostContainer(request: RunRequest, id: string, identity: ContainerIdentity, argv: string[], log: Logger): HostContainer {
  const record: ContainerRecord = {
    id,
    name: identity.name,
    image: null,
    source: '/',
    ownRoot: false,
    command: argv,
    created: new Date().toISOString(),
    owner: ownIdentity(),
    volumes: [],
    autoRemove: request.remove,
    ...request.capabilities,
  };
  if (identity.init !== undefined) record.init = identity.init;
  createContainer(request.root, record);
  log.debug('container registered', { name: identity.name });
  return {
    record,
    finish: (status, oomKilled) => finishContainer(request.root, record, status, oomKilled),
    discard: () => removeContainer(request.root, id),
  };
}
