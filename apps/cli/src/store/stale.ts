import type { Logger } from '@m-docker/log';

import { removeOldExitCodes, removeStaleContainers } from './containers.js';
import { removeAnonymousVolumes } from './volumes.js';

/**
 * Removes what runs killed mid-way left in the store: their --rm container
 * directories and the anonymous volumes those containers had. Every
 * command that opens the store calls it first.
 */
export function cleanStaleState(root: string, log: Logger): void {
  removeOldExitCodes(root);
  const removed = removeStaleContainers(root);
  if (removed.length === 0) return;

  for (const { record } of removed) {
    if (record !== undefined) removeAnonymousVolumes(root, record.volumes);
  }
  log.info('removed containers of killed runs', { ids: removed.map(({ id }) => id.slice(0, 12)).join(',') });
}
