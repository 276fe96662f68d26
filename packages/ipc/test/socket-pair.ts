import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Connects two net.Sockets over a Unix stream socket in a fresh temporary
 * directory, the same socket kind as the socketpair that spawn() creates.
 */
export async function connectedSockets(): Promise<[Socket, Socket]> {
  const directory = mkdtempSync(join(tmpdir(), 'm-docker-ipc-'));
  const path = join(directory, 'channel.sock');
  const server = createServer();

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });

    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const client = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    return [client, await accepted];
  } finally {
    server.close();
    rmSync(directory, { recursive: true, force: true });
  }
}
