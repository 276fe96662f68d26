/**
 * Exit statuses of `m-docker run`, as docker uses them: 125 when m-docker
 * itself fails, 126 when the command cannot be executed, 127 when it is not
 * found. Any other status is the command's own.
 */
export const EXIT_STATUS = {
  runtimeError: 125,
  cannotExecute: 126,
  notFound: 127,
} as const;

/** A failure that ends the CLI with one line on stderr and an exit status. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly status: number = EXIT_STATUS.runtimeError,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** Throws unless m-docker runs as root; `reason` says why the command needs it, as in `m-docker run needs root`. */
export function requireRoot(reason: string): void {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new CliError(`${reason}, but it runs as uid ${uid}: run it as root, for example with sudo`);
  }
}
