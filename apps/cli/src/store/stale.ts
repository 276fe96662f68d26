import type { Logger } from '@m-docker/log';

import { removeLeftOverRemovals, removeOldExitCodes, removeStaleContainers } from './containers.js';
import { removeLeftOverNames } from './names.js';
import { removeAnonymousVolumes } from './volumes.js';

/**
 * Removes what runs and commands killed mid-way left in the store: their
 * --rm container directories with the anonymous volumes those containers
 * had, directories without a record, names without a container, and the
 * renamed directories of removals that never finished. Every command that
 * opens the store calls it first. It takes the store's lock only when it
 * finds something, so commands that find nothing never wait for it.
 */
export function cleanStaleState(root: string, log: Logger): void {
  removeOldExitCodes(root);
  removeLeftOverRemovals(root);
  const removed = removeStaleContainers(root);
  const names = removeLeftOverNames(root);
  if (names.length > 0) log.info('removed the names of containers that no longer exist', { names: names.join(',') });
  if (removed.length === 0) return;

  for (const { record } of removed) {
    if (record !== undefined) removeAnonymousVolumes(root, record.volumes);
  }
  log.info('removed containers of killed runs', { ids: removed.map(({ id }) => id.slice(0, 12)).join(',') });
}
