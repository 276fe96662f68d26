import type { Header } from 'tar-stream';

import { ImageError } from './errors.js';
import { isNodeType, type MemberContext, type MemberMetadata } from './layer-writer.js';
import { type RetainedBytes, readPaxRecords } from './tar-raw-headers.js';

// What unpackLayer reads from a member's headers: its type, owner, mode,
// times and extended attributes, and the checks that reject members it
// cannot write.

/** A member's header as tar-stream 3 decodes it, with the fields its types leave out or type too narrowly. */
export interface LayerHeader extends Omit<Header, 'type' | 'linkname' | 'pax'> {
  /** null for a type flag that tar-stream does not know. */
  type: Header['type'] | null;
  linkname: string | null;
  /** The member's pax records, values decoded as UTF-8. */
  pax: Record<string, string> | null;
  /** Stream position of the member's data, right after its own 512-byte header. */
  byteOffset: number;
}

const XATTR_PREFIX = 'SCHILY.xattr.';

// overlayfs reads its own trusted.overlay.* attributes from the layers (a
// redirect or metacopy can point a file at another path), so a layer may
// not bring them: the unpacker writes the only one it needs, the opaque
// marker, from the `.wh..wh..opq` whiteout.
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';
const SPARSE_PREFIX = 'GNU.sparse.';

// Type flags that tar-stream 3 does not decode, named for messages.
const TYPE_FLAG_NAMES: Record<string, string> = {
  D: 'GNU dump directory',
  K: 'GNU long link name',
  M: 'GNU multi-volume continuation',
  S: 'GNU sparse file',
  V: 'GNU volume header',
};

/** Checks whether a member is a regular file: type `0` or contiguous (`7`). */
export function isRegularFile(header: LayerHeader): boolean {
  return header.type === 'file' || header.type === 'contiguous-file';
}

/**
 * Rejects member types and encodings that unpackLayer cannot write
 * faithfully, before anything of the member is written.
 */
export function checkSupported(member: MemberContext, header: LayerHeader, typeFlag: number | undefined): void {
  const known = isRegularFile(header) || ['directory', 'symlink', 'link'].includes(header.type ?? '');
  if (!known && !isNodeType(header.type)) {
    const flag = typeFlag === undefined ? '?' : String.fromCharCode(typeFlag);
    const kind = TYPE_FLAG_NAMES[flag] ?? 'an unknown member type';
    const message = `${member.layer}: member ${JSON.stringify(member.name)} has type flag ${JSON.stringify(flag)} (${kind}), which unpackLayer does not support`;
    throw new ImageError('UNKNOWN_FORMAT', message, { entry: member.name });
  }

  if (Object.keys(header.pax ?? {}).some((key) => key.startsWith(SPARSE_PREFIX))) {
    const message = `${member.layer}: member ${JSON.stringify(member.name)} is a GNU sparse file, which unpackLayer does not support`;
    throw new ImageError('UNKNOWN_FORMAT', message, { entry: member.name });
  }

  // tar-stream decodes names as UTF-8 and replaces invalid bytes with
  // U+FFFD, so such a name cannot be written as the archive spells it.
  // TODO: keep names as raw bytes to unpack layers with Latin-1 file names.
  for (const name of [header.name, header.linkname ?? '']) {
    if (name.includes('\uFFFD')) {
      const message = `${member.layer}: member ${JSON.stringify(member.name)} has a name that is not valid UTF-8, which unpackLayer does not support`;
      throw new ImageError('UNKNOWN_FORMAT', message, { entry: member.name });
    }
  }
}

// Owner, mode and times from the ustar header, replaced by the pax
// records `uid`, `gid`, `mtime` and `atime` where present. Those records
// carry values that do not fit the ustar fields, such as uids of 2^21 and
// more or fractions of a second. tar-stream leaves them in `pax`.
export function metadataOf(header: LayerHeader): Omit<MemberMetadata, 'xattrs'> {
  const pax = header.pax ?? {};
  const mtime = paxNumber(pax.mtime, /^-?\d+(\.\d+)?$/) ?? (header.mtime?.getTime() ?? 0) / 1000;
  return {
    uid: paxNumber(pax.uid, /^\d+$/) ?? header.uid ?? 0,
    gid: paxNumber(pax.gid, /^\d+$/) ?? header.gid ?? 0,
    mode: (header.mode ?? 0) & 0o7777,
    mtime,
    atime: paxNumber(pax.atime, /^-?\d+(\.\d+)?$/) ?? mtime,
  };
}

function paxNumber(value: string | undefined, pattern: RegExp): number | undefined {
  return value !== undefined && pattern.test(value) ? Number(value) : undefined;
}

// Reads the member's `SCHILY.xattr.NAME` records again from the raw pax
// header between `headersStart` and `headerStart`, because tar-stream
// decodes the values as UTF-8 and binary values would be damaged.
export function readXattrs(
  member: MemberContext,
  header: LayerHeader,
  retained: RetainedBytes,
  headersStart: number,
  headerStart: number,
): Map<string, Buffer> {
  const xattrs = new Map<string, Buffer>();
  if (!Object.keys(header.pax ?? {}).some((key) => key.startsWith(XATTR_PREFIX))) return xattrs;

  const records = readPaxRecords(retained, headersStart, headerStart);
  if (records === undefined) {
    const message = `${member.layer}: member ${JSON.stringify(member.name)}: reading its pax header again for its extended attributes failed`;
    throw new ImageError('UNKNOWN_FORMAT', message, { entry: member.name });
  }

  for (const [key, value] of records) {
    if (!key.startsWith(XATTR_PREFIX)) continue;
    const name = key.slice(XATTR_PREFIX.length);
    if (!name.startsWith(OVERLAY_XATTR_PREFIX)) xattrs.set(name, value);
  }
  return xattrs;
}
