import type { Logger } from '@m-docker/log';

import { CliError } from './cli-error.js';
import { imageUsers } from './run/image-root.js';
import type { StoreCommand } from './store-command-line.js';

type ImageCommand = Extract<StoreCommand, { kind: 'image-import' | 'image-ls' | 'image-rm' }>;

/** Runs `image import`, `image ls` and `image rm` through @m-docker/images; returns the exit status. */
export async function runImageCommand(command: StoreCommand, root: string, log: Logger): Promise<number> {
  const images = await import('./image/image-commands.js');
  const { ImageError } = await import('@m-docker/images');
  try {
    return await dispatch(images, command as ImageCommand, root, log);
  } catch (error) {
    if (ImageError.isInstance(error)) throw new CliError(error.message, undefined, { cause: error });
    throw error;
  }
}

async function dispatch(
  images: typeof import('./image/image-commands.js'),
  command: ImageCommand,
  root: string,
  log: Logger,
): Promise<number> {
  log.debug('image command', { command: command.kind, root });
  if (command.kind === 'image-import') {
    const options: Parameters<typeof images.runImageImport>[0] = { root, file: command.file, quiet: command.quiet };
    if (command.reference !== undefined) options.reference = command.reference;
    await images.runImageImport(options);
    return 0;
  }
  if (command.kind === 'image-ls') {
    await images.runImageList({ root, quiet: command.quiet });
    return 0;
  }
  await images.runImageRemove({ root, references: command.references, force: command.force, usedBy: imageUsers(root) });
  return 0;
}
