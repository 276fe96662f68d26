import { readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { killStartedCli, NOT_ROOT, runCli } from './helpers.js';

afterEach(killStartedCli);

// Bun creates a /tmp/bun-node-<hash> folder when it cannot load a script,
// and the init runs with no TMPDIR, so the missing-script test leaves one.
// Folders that were there before these tests are kept.
const bunFolders = () => readdirSync('/tmp').filter((name) => name.startsWith('bun-node-'));
let bunFoldersBefore: string[] = [];
beforeAll(() => {
  bunFoldersBefore = bunFolders();
});
afterAll(() => {
  for (const name of bunFolders()) {
    if (!bunFoldersBefore.includes(name)) rmSync(`/tmp/${name}`, { recursive: true, force: true });
  }
});

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

// The init may die before the CLI sent the config (EPIPE), or while the
// config it never read is still in its socket buffer, and then the kernel
// resets the connection (ECONNRESET) instead of closing it. Which one
// happens depends on timing, so every ending is valid.
const INIT_GONE =
  /^m-docker: (the container's init exited before it was ready|lost contact with the container's init while (waiting for ready|sending config): .+)$/;

const lastLine = (text: string) => text.trimEnd().split('\n').at(-1);

// These tests swap in a misbehaving init through M_DOCKER_INIT_PATH: each
// blocking read of the CLI must end with a clear error when the init dies.
describe.skipIf(NOT_ROOT)('run with a failing init (needs root)', () => {
  it('init that exits before ready gives 125', async () => {
    const result = await runCli(['run', '/bin/true'], { env: { M_DOCKER_INIT_PATH: fixture('init-exits-early.mjs') } });
    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(/\n$/);
    expect(lastLine(result.stderr)).toMatch(INIT_GONE);
  });

  it('init that dies mid-frame gives 125', async () => {
    const result = await runCli(['run', '/bin/true'], { env: { M_DOCKER_INIT_PATH: fixture('init-sends-half-frame.mjs') } });
    expect(result.status).toBe(125);
    expect(lastLine(result.stderr)).toMatch(
      /^m-docker: lost contact with the container's init while (waiting for ready: (end of stream after 5 of 8 header bytes|.*ECONNRESET.*)|sending config: .*(EPIPE|ECONNRESET).*)$/,
    );
  });

  it('missing init script gives 125', async () => {
    const result = await runCli(['run', '/bin/true'], { env: { M_DOCKER_INIT_PATH: '/nonexistent/init.mjs' } });
    expect(result.status).toBe(125);
    // Node and Bun word their own error differently.
    expect(result.stderr).toMatch(/(Cannot find module|Module not found) .\/nonexistent\/init\.mjs/);
    expect(lastLine(result.stderr)).toMatch(INIT_GONE);
  });
});
