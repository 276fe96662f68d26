import { ImageError } from './errors.js';
import type { ImageRunConfig } from './image-config.js';

/** The parts of `m-docker run --image` that choose the command. */
export interface RunCommandOptions {
  /** `--entrypoint`: one program, not split at spaces. `''` clears the image's Entrypoint. */
  entrypoint?: string;
  /** The arguments after the image name. */
  command: string[];
}

/**
 * Returns the argv of a container's process with docker's rules: the
 * entrypoint (the image's, or `--entrypoint`'s) followed by the
 * command-line arguments, or by the image's Cmd when there are none.
 * `--entrypoint` also drops the image's Cmd, so that the Cmd of one program
 * is never passed to another. Throws NO_COMMAND when the result is empty.
 */
export function resolveRunCommand(config: Pick<ImageRunConfig, 'Entrypoint' | 'Cmd'>, options: RunCommandOptions): string[] {
  let entrypoint = config.Entrypoint ?? [];
  let defaultCommand = config.Cmd ?? [];
  if (options.entrypoint !== undefined) {
    entrypoint = options.entrypoint === '' ? [] : [options.entrypoint];
    defaultCommand = [];
  }
  const command = options.command.length > 0 ? options.command : defaultCommand;

  const argv = [...entrypoint, ...command];
  if (argv.length === 0) {
    throw new ImageError('NO_COMMAND', 'no command specified: the image has no Cmd or Entrypoint, so give a command after the image name');
  }
  return argv;
}
