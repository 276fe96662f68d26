import { lstat, readdir } from 'node:fs/promises';
import tar, { type Header } from 'tar-stream';

import { ImageError } from './errors.js';
import { destroyInput, InputReader } from './layer-input-reader.js';
import { checkSupported, isRegularFile, type LayerHeader, metadataOf, readXattrs } from './layer-member-header.js';
import { type MemberPath, memberRole, parseMemberName } from './layer-member-name.js';
import { isNodeType, LayerWriter, type MemberContext, type MemberMetadata, unsafePath } from './layer-writer.js';
import { paddedSize, type RetainedBytes, typeFlagAt } from './tar-raw-headers.js';

// Two loops run at once. The reader pulls chunks from the input, hashes
// them, keeps the bytes around the current headers (RetainedBytes) and
// writes them into tar-stream's extract, waiting when it is full. The
// member loop takes one member at a time from the extract and writes it
// with LayerWriter. An error on either side destroys the extract, which
// ends the other loop. unpackLayer settles only after the member loop has
// returned, so no file is written after the promise settles.

/** Options of {@link unpackLayer}. */
export interface UnpackLayerOptions {
  /** Called with the number of uncompressed bytes read so far, for a progress bar. */
  onBytes?: (bytes: number) => void;
  /** A name for messages, such as the layer's blob path in the archive. */
  label?: string;
}

/** Diff id and size of a layer that {@link unpackLayer} unpacked. */
export interface UnpackedLayer {
  /** `sha256:<64 hex>` of the uncompressed tar stream: the layer's diff id in OCI/docker terms. */
  diffId: string;
  /** Sum of the sizes of the regular files written, in bytes. */
  size: number;
}

/** A member as tar-stream 3 delivers it: its header and its data. */
interface Entry extends AsyncIterable<Buffer> {
  header: Header;
}

const HEADER_SIZE = 512;

/**
 * Unpacks an uncompressed layer tar read from `input` into `target`, an existing empty directory.
 *
 * Owners, permission bits (with setuid, setgid and sticky), times, symlinks,
 * hard links, devices, FIFOs and `SCHILY.xattr.*` extended attributes are
 * kept. Whiteouts become what overlayfs expects: `DIR/.wh.NAME` a character
 * device 0:0 at `DIR/NAME`, and `DIR/.wh..wh..opq` the xattr
 * `trusted.overlay.opaque=y` on `DIR`. A member whose name or hard-link
 * target would reach outside `target` rejects with `UNSAFE_PATH`.
 *
 * Reads `input` to its end, so that `diffId` covers every byte. On failure
 * it stops writing before it rejects. It then destroys `input` when `input`
 * has a `destroy` method. Removing what was written to `target` is the
 * caller's job. Nothing else may change `target` during the call.
 */
export async function unpackLayer(
  input: NodeJS.ReadableStream | AsyncIterable<Buffer>,
  target: string,
  options?: UnpackLayerOptions,
): Promise<UnpackedLayer> {
  const layer = `layer ${JSON.stringify(options?.label ?? target)}`;
  try {
    await checkTarget(target, layer);
  } catch (error) {
    destroyInput(input);
    throw error;
  }

  // The entry iterator must exist before the first chunk goes in, because
  // tar-stream drops entries that it emits before a listener exists.
  // allowUnknownFormat accepts pre-POSIX (v7) headers, which lack the ustar magic.
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);
  const entries = (extract as AsyncIterable<unknown>)[Symbol.asyncIterator]() as AsyncIterator<Entry>;

  // The first error of the extract is the root cause of a stream failure:
  // a member's data stream may report only that it was destroyed.
  const progress: Progress = {};
  extract.on('error', (error) => {
    progress.streamError ??= error;
  });

  const reader = new InputReader(input, options?.onBytes);
  const reading = reader.run(extract);
  const writer = new LayerWriter(target);
  try {
    await writeMembers(entries, reader.retained, writer, layer, progress);
    await reading;
    await writer.finish();
  } catch (error) {
    const failure = describeFailure(error, reader, layer, progress);
    extract.destroy();
    reader.stop();
    throw failure;
  }

  return { diffId: `sha256:${reader.digest()}`, size: writer.size };
}

async function checkTarget(target: string, layer: string): Promise<void> {
  let entries: string[];
  try {
    const stats = await lstat(target);
    if (!stats.isDirectory()) throw new Error('it is not a directory');
    entries = await readdir(target);
  } catch (error) {
    const message = `${layer}: cannot unpack into ${JSON.stringify(target)}: ${(error as Error).message}`;
    throw new ImageError('STORE_FAILED', message, { path: target, cause: error });
  }

  if (entries.length > 0) {
    const message = `${layer}: cannot unpack into ${JSON.stringify(target)}: the directory is not empty`;
    throw new ImageError('STORE_FAILED', message, { path: target });
  }
}

/** The member being written, the last one finished and the extract's first error, for messages. */
interface Progress {
  current?: string;
  last?: string;
  streamError?: unknown;
}

/** An error that came from the tar stream (the input or tar-stream's parser), not from the file system. */
class TarStreamFailure extends Error {
  constructor(cause: unknown) {
    super('tar stream failed', { cause });
  }
}

async function writeMembers(
  entries: AsyncIterator<Entry>,
  retained: RetainedBytes,
  writer: LayerWriter,
  layer: string,
  progress: Progress,
): Promise<void> {
  // Stream position right after the previous member's data: where the
  // headers of the next member begin.
  let headersStart = 0;

  for (;;) {
    let next: IteratorResult<Entry>;
    try {
      next = await entries.next();
    } catch (error) {
      throw new TarStreamFailure(error);
    }
    if (next.done) return;

    const entry = next.value;
    const header = entry.header as unknown as LayerHeader;
    const headerStart = header.byteOffset - HEADER_SIZE;
    progress.current = header.name;

    const member: MemberContext = { name: header.name, layer };
    const xattrs = readXattrs(member, header, retained, headersStart, headerStart);
    const typeFlag = header.type ? undefined : typeFlagAt(retained, headerStart);

    // tar-stream does not read the data of a directory, whatever its size.
    const dataSize = header.type === 'directory' ? 0 : paddedSize(header.size ?? 0);
    headersStart = header.byteOffset + dataSize;
    retained.discardBefore(headersStart);

    // The data iterator is created right away, because one created after
    // the entry was destroyed reports only "Stream was destroyed".
    const data = readData(entry[Symbol.asyncIterator]());
    await writeMember(data, header, member, { ...metadataOf(header), xattrs }, typeFlag, writer);
    progress.last = header.name;
    progress.current = undefined;
  }
}

async function writeMember(
  data: AsyncIterable<Buffer>,
  header: LayerHeader,
  member: MemberContext,
  metadata: MemberMetadata,
  typeFlag: number | undefined,
  writer: LayerWriter,
): Promise<void> {
  checkSupported(member, header, typeFlag);

  const parsed = parseMemberName(header.name);
  if (!parsed.ok) throw unsafePath(member, `leaves the layer: ${parsed.reason}`);
  const path = parsed.path;
  const role = memberRole(path);

  // tar-stream goes on only after a member's data is read. Regular files
  // that are written consume theirs, and the data of every other member is
  // drained here. A directory is left out because tar-stream never
  // delivers a directory's data.
  const keepsData = role.kind === 'entry' && isRegularFile(header);
  if (!keepsData && header.type !== 'directory') await drain(data);

  switch (role.kind) {
    case 'aufs-metadata':
      return;
    case 'invalid':
      throw unsafePath(member, role.reason);
    case 'opaque':
      return writer.opaque(member, role.directory);
    case 'whiteout':
      return writer.whiteout(member, role.hidden, metadata);
    case 'entry':
      return writeEntry(data, header, member, path, metadata, writer);
  }
}

async function writeEntry(
  data: AsyncIterable<Buffer>,
  header: LayerHeader,
  member: MemberContext,
  path: MemberPath,
  metadata: MemberMetadata,
  writer: LayerWriter,
): Promise<void> {
  if (isRegularFile(header)) return writer.file(member, path, metadata, data);

  switch (header.type) {
    case 'directory':
      return writer.directory(member, path, metadata);
    case 'symlink':
      return writer.symlink(member, path, header.linkname ?? '', metadata);
    case 'link':
      return writer.hardLink(member, path, linkTarget(member, header.linkname ?? ''));
  }

  // checkSupported has rejected every other type.
  if (isNodeType(header.type)) {
    const device = { major: header.devmajor ?? 0, minor: header.devminor ?? 0 };
    return writer.node(member, path, header.type, device, metadata);
  }
}

function linkTarget(member: MemberContext, linkname: string): MemberPath {
  const parsed = parseMemberName(linkname);
  if (!parsed.ok) throw unsafePath(member, `links to ${JSON.stringify(linkname)}, which leaves the layer: ${parsed.reason}`);
  return parsed.path;
}

// Yields a member's data and marks the errors of reading it as stream
// failures, to tell them apart from the file system's errors.
async function* readData(chunks: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await chunks.next();
    } catch (error) {
      throw new TarStreamFailure(error);
    }
    if (next.done) return;
    yield next.value;
  }
}

async function drain(data: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of data) {
    // The data of links, devices and whiteouts is discarded.
  }
}

// Turns any failure into the error unpackLayer rejects with. tar-stream 3
// reports a stream that ends inside a header or a member as "Unexpected
// end of data", and bytes that are no tar header as an invalid header.
function describeFailure(error: unknown, reader: InputReader, layer: string, progress: Progress): unknown {
  if (ImageError.isInstance(error)) return error;

  const where = describePosition(progress);
  const entry = progress.current ?? progress.last;
  const details = { ...(entry !== undefined ? { entry } : {}) };

  if (!(error instanceof TarStreamFailure)) {
    const path = (error as { path?: unknown }).path;
    const step =
      progress.current !== undefined
        ? `writing member ${JSON.stringify(progress.current)}`
        : "setting the directories' owners, modes and times";
    const message = `${layer}: ${step} failed: ${(error as Error).message}`;
    return new ImageError('STORE_FAILED', message, { ...details, ...(typeof path === 'string' ? { path } : {}), cause: error });
  }

  const cause = progress.streamError ?? error.cause;
  if (reader.failure !== undefined && cause === reader.failure.error) {
    if (!reader.failure.fromInput) return cause;
    const message = `${layer}: reading the layer failed ${where}: ${(cause as Error)?.message ?? String(cause)}`;
    return new ImageError('TRUNCATED', message, { ...details, cause });
  }

  if ((cause as Error)?.message === 'Unexpected end of data') {
    return new ImageError('TRUNCATED', `${layer}: the tar stream ends ${where}`, { ...details, cause });
  }

  const message = `${layer}: invalid tar data ${where}: ${(cause as Error)?.message ?? String(cause)}`;
  return new ImageError('UNKNOWN_FORMAT', message, { ...details, cause });
}

function describePosition(progress: Progress): string {
  if (progress.current !== undefined) return `in the middle of member ${JSON.stringify(progress.current)}`;
  if (progress.last !== undefined) return `in the header after member ${JSON.stringify(progress.last)}`;
  return 'in the first header';
}
