import type { Logger } from '@m-docker/log';
import type { StartedProcess } from '@m-docker/runtime';

/** Signals the CLI passes on to the container's PID 1, as `docker run` does. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/**
 * Passes the signals the CLI receives on to `child`; returns a function that
 * stops it. With -t the container has a terminal of its own, and its keys
 * reach it through the pty. In raw mode (-it) Ctrl-C is a byte, not a
 * signal for the CLI. Without -i the CLI's terminal sends SIGINT to the CLI
 * alone, which passes it on, as docker's --sig-proxy does.
 */
export function forwardSignals(child: Pick<StartedProcess, 'pid' | 'kill'>, log: Logger): () => void {
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const signal of FORWARDED_SIGNALS) {
    const handler = () => {
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
