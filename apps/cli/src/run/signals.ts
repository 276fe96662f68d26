import type { Logger } from '@m-docker/log';
import type { StartedProcess } from '@m-docker/runtime';

/** Signals the CLI passes on to the container's PID 1, as `docker run` does. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

// With -t the container shares the CLI's terminal and process group, so the
// terminal already sends Ctrl-C (SIGINT) and Ctrl-\ (SIGQUIT) to it.
// Passing them on as well would deliver each twice.
const TERMINAL_SIGNALS = new Set<NodeJS.Signals>(['SIGINT', 'SIGQUIT']);

/** Passes the signals the CLI receives on to `child`; returns a function that stops it. */
export function forwardSignals(child: StartedProcess, tty: boolean, log: Logger): () => void {
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const signal of FORWARDED_SIGNALS) {
    const handler = () => {
      if (tty && TERMINAL_SIGNALS.has(signal)) return;
      log.debug('forwarding signal', { signal, pid: child.pid });
      try {
        child.kill(signal);
      } catch (error) {
        log.warn('cannot forward signal', { signal, error: (error as Error).message });
      }
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
