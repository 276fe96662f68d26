import type { Logger } from '@m-docker/log';

import { type ContainerRecord, createContainer, finishContainer, type NewContainer, removeContainer } from '../store/containers.js';
import { checkName } from '../store/names.js';
import { identityOf, ownIdentity, type ProcessIdentity } from '../store/process-identity.js';
import type { RunRequest } from './container-config.js';

// Every run is a container with a record in the store, whether it has a
// root of its own (container-root.ts writes that record, with the overlay's
// directories) or runs on the host's root (this module writes a record
// alone). The record is what `ps`, `stop`, `kill`, `wait`, `inspect` and
// `rm` read. Its owner is this CLI, which writes the exit into it.

/** The parts of a record that a run has before its root is prepared. */
export interface ContainerIdentity {
  /** The --name value, checked but not yet reserved: createContainer reserves it, or a generated name. */
  requestedName: string | undefined;
  init: ProcessIdentity | undefined;
}

/** Checks the requested name and reads the init's identity. */
export function startIdentity(request: RunRequest, initPid: number | undefined): ContainerIdentity {
  if (request.name !== undefined) checkName(request.name);
  const init = initPid === undefined ? undefined : identityOf(initPid);
  return { requestedName: request.name, init };
}

/** A record of a container on the host's root, and how to end it. */
export interface HostContainer {
  record: ContainerRecord;
  /** Records the exit: the status and whether the OOM killer killed a process of the container. */
  finish(status: number, oomKilled: boolean): void;
  discard(): void;
}

/** Reserves the name and writes the record of a run on the host's root file system. */
export function registerHostContainer(request: RunRequest, id: string, identity: ContainerIdentity, argv: string[], log: Logger): HostContainer {
  const container: NewContainer = {
    id,
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
  if (identity.init !== undefined) container.init = identity.init;
  const { record } = createContainer(request.root, container, identity.requestedName);
  log.debug('container registered', { name: record.name });
  return {
    record,
    finish: (status, oomKilled) => finishContainer(request.root, record, status, oomKilled),
    discard: () => {
      removeContainer(request.root, id);
    },
  };
}
