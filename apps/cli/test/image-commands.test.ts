import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machinePlatform } from '@m-docker/images';
import tar from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';

import { CliError } from '../src/cli-error.js';
import { type CommandOutput, runImageImport, runImageList, runImageRemove } from '../src/image/image-commands.js';
import { NOT_ROOT } from './helpers.js';

// The image commands called directly with a temporary store root. Importing
// needs root, because layers keep their owners.

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'm-docker-image-cli-'));
  dirs.push(dir);
  return dir;
}

interface Captured extends CommandOutput {
  out: string[];
  err: string[];
}

function capture(stderrIsTTY = false): Captured {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (text) => out.push(text), stderr: (text) => err.push(text), stderrIsTTY };
}

async function tarOf(members: { name: string; data: Buffer | string }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const { name, data } of members) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, data);
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Writes a docker save archive of a one-layer image and returns its path and id. */
async function writeDockerArchive(repoTags: string[], content: string): Promise<{ path: string; id: string }> {
  const layer = await tarOf([{ name: 'file', data: content }]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: machinePlatform().architecture,
      os: 'linux',
      created: '2024-01-02T03:04:05Z',
      config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layer)}`] },
    }),
  );
  const configName = `${sha256(config)}.json`;
  const archive = await tarOf([
    { name: 'layer/layer.tar', data: layer },
    { name: configName, data: config },
    { name: 'manifest.json', data: JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: ['layer/layer.tar'] }]) },
  ]);
  const path = join(tempDir(), 'image.tar');
  writeFileSync(path, archive);
  return { path, id: `sha256:${sha256(config)}` };
}

const NOW = Date.parse('2024-01-04T03:04:05Z');
const noContainers = (): string[] => [];

describe.skipIf(NOT_ROOT)('runImageImport', () => {
  it('prints the references and the id', async () => {
    const { path, id } = await writeDockerArchive(['busybox:latest', 'busybox:1'], 'x');
    const output = capture();

    expect(await runImageImport({ root: tempDir(), file: path, output })).toBe(0);

    expect(output.out.join('')).toBe(`Loaded image: busybox:latest\nLoaded image: busybox:1\nLoaded image ID: ${id}\n`);
    expect(output.err).toEqual([]);
  });

  it('prints only the id of an untagged image', async () => {
    const { path, id } = await writeDockerArchive([], 'x');
    const output = capture();

    await runImageImport({ root: tempDir(), file: path, output });

    expect(output.out.join('')).toBe(`Loaded image ID: ${id}\n`);
  });

  it('names the image with the given reference', async () => {
    const { path } = await writeDockerArchive(['busybox:latest'], 'x');
    const output = capture();

    await runImageImport({ root: tempDir(), file: path, reference: 'mine', output });

    expect(output.out[0]).toBe('Loaded image: mine:latest\n');
  });

  describe('progress bar', () => {
    // Over 4 MiB, so that a terminal gets a bar.
    const big = 'b'.repeat(5 * 1024 * 1024);

    it('is drawn on a terminal and cleared at the end', async () => {
      const { path } = await writeDockerArchive(['big:1'], big);
      const output = capture(true);

      await runImageImport({ root: tempDir(), file: path, output });

      expect(output.err.some((text) => text.includes('Reading   ['))).toBe(true);
      expect(output.err.some((text) => text.includes('Unpacking ['))).toBe(true);
      expect(output.err.at(-1)).toBe('\r\x1b[K');
    });

    it.each([
      ['quiet', { quiet: true }, true],
      ['not a terminal', {}, false],
    ])('is not drawn when %s', async (_name, extra, tty) => {
      const { path } = await writeDockerArchive(['big:1'], big);
      const output = capture(tty);

      await runImageImport({ root: tempDir(), file: path, output, ...extra });

      expect(output.err).toEqual([]);
    });

    it('is not drawn for an archive of 4 MiB or less', async () => {
      const { path } = await writeDockerArchive(['small:1'], 'small');
      const output = capture(true);

      await runImageImport({ root: tempDir(), file: path, output });

      expect(output.err).toEqual([]);
    });

    it('is cleared before a failure is thrown', async () => {
      const { path } = await writeDockerArchive(['big:1'], big);
      // Cut inside the layer, after more than 4 MiB, so that the bar is drawn before the import fails.
      const cut = join(tempDir(), 'cut.tar');
      writeFileSync(cut, readFileSync(path).subarray(0, 5 * 1024 * 1024));
      const output = capture(true);

      await expect(runImageImport({ root: tempDir(), file: cut, output })).rejects.toMatchObject({ code: 'TRUNCATED' });

      expect(output.err.length).toBeGreaterThan(1);
      expect(output.err.at(-1)).toBe('\r\x1b[K');
      expect(output.out).toEqual([]);
    });
  });
});

describe.skipIf(NOT_ROOT)('runImageList', () => {
  async function storeWithImages(): Promise<{ root: string; first: string; second: string }> {
    const root = tempDir();
    const first = await writeDockerArchive(['busybox:latest', 'busybox:1'], 'first');
    const second = await writeDockerArchive(['alpine:3'], 'second, longer');
    await runImageImport({ root, file: first.path, output: capture() });
    await runImageImport({ root, file: second.path, output: capture() });
    return { root, first: first.id.slice(7, 19), second: second.id.slice(7, 19) };
  }

  it('prints a table like docker images', async () => {
    const { root, first, second } = await storeWithImages();
    const output = capture();

    await runImageList({ root, output, now: NOW });

    expect(output.out.join('')).toBe(
      [
        'REPOSITORY   TAG      IMAGE ID       CREATED      SIZE',
        `alpine       3        ${second}   2 days ago   14B`,
        `busybox      1        ${first}   2 days ago   5B`,
        `busybox      latest   ${first}   2 days ago   5B`,
        '',
      ].join('\n'),
    );
  });

  it('prints ids with quiet', async () => {
    const { root, first, second } = await storeWithImages();
    const output = capture();

    await runImageList({ root, quiet: true, output });

    expect(output.out.join('')).toBe(`${second}\n${first}\n${first}\n`);
  });

  it.each([
    ['{{.Repository}}:{{.Tag}}', 'alpine:3\nbusybox:1\nbusybox:latest\n'],
    ['table {{.Repository}}\t{{.Size}}', 'REPOSITORY   SIZE\nalpine       14B\nbusybox      5B\nbusybox      5B\n'],
  ])('prints the template %j', async (format, text) => {
    const { root } = await storeWithImages();
    const output = capture();

    await runImageList({ root, format, output, now: NOW });

    expect(output.out.join('')).toBe(text);
  });

  it('prints one JSON object per line', async () => {
    const { root, second } = await storeWithImages();
    const output = capture();

    await runImageList({ root, format: 'json', output, now: NOW });

    const lines = output.out.join('').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[0] as string)).toEqual({
      Repository: 'alpine',
      Tag: '3',
      ID: second,
      CreatedSince: '2 days ago',
      CreatedAt: '2024-01-02 03:04:05 +0000 UTC',
      Size: '14B',
    });
  });

  it('rejects an unknown template field', async () => {
    const output = capture();

    const listing = runImageList({ root: tempDir(), format: '{{.Digest}}', output });

    await expect(listing).rejects.toThrow(CliError);
    await expect(listing).rejects.toThrow('invalid --format: unknown field {{.Digest}}: use Repository, Tag, ID, CreatedSince, CreatedAt, Size, or json');
  });

  it('prints only the header for an empty store', async () => {
    const output = capture();

    await runImageList({ root: join(tempDir(), 'none'), output });

    expect(output.out.join('')).toBe('REPOSITORY   TAG   IMAGE ID   CREATED   SIZE\n');
  });
});

describe.skipIf(NOT_ROOT)('runImageRemove', () => {
  it('prints Untagged and Deleted lines', async () => {
    const root = tempDir();
    const { path, id } = await writeDockerArchive(['busybox:latest', 'busybox:1'], 'x');
    await runImageImport({ root, file: path, output: capture() });
    const output = capture();

    expect(await runImageRemove({ root, references: ['busybox:1', 'busybox'], force: false, usedBy: noContainers, output })).toBe(0);

    const layer = output.out.join('').split('\n').at(-2);
    expect(output.out.join('')).toBe(`Untagged: busybox:1\nUntagged: busybox:latest\nDeleted: ${id}\n${layer}\n`);
    expect(layer).toMatch(/^Deleted: sha256:[0-9a-f]{64}$/);
  });

  it('tries every reference, throws the last failure', async () => {
    const root = tempDir();
    const { path } = await writeDockerArchive(['busybox:latest'], 'x');
    await runImageImport({ root, file: path, output: capture() });
    const output = capture();

    const removing = runImageRemove({ root, references: ['first-missing', 'busybox', 'last-missing'], usedBy: noContainers, output });

    await expect(removing).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('"last-missing"') });
    expect(output.err).toEqual([
      `m-docker: image "first-missing" not found: import it with 'm-docker image import FILE first-missing' or see 'm-docker image ls'\n`,
    ]);
    expect(output.out.join('')).toMatch(/^Untagged: busybox:latest\nDeleted: sha256:/);
  });

  it('throws IN_USE naming the containers', async () => {
    const root = tempDir();
    const { path } = await writeDockerArchive(['busybox:latest'], 'x');
    await runImageImport({ root, file: path, output: capture() });

    const removing = runImageRemove({ root, references: ['busybox'], usedBy: () => ['c1'], output: capture() });

    await expect(removing).rejects.toMatchObject({ code: 'IN_USE', message: expect.stringContaining('is used by container c1') });
  });
});
