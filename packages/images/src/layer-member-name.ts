// Member names of a layer tar and what they mean to overlayfs. A name is
// relative to the layer's root: docker writes `etc/passwd`, other tools
// `./etc/passwd`. Whiteouts follow the OCI image spec's layer format
// (image-spec, layer.md, "Whiteouts"): `.wh.NAME` hides NAME of the layers
// below, and `.wh..wh..opq` hides everything below in its directory.

/** Prefix of a whiteout member's base name. */
export const WHITEOUT_PREFIX = '.wh.';

/** Prefix of whiteout metadata: the opaque marker, and aufs files such as `.wh..wh.plnk`. */
export const WHITEOUT_META_PREFIX = '.wh..wh.';

/** Base name that marks its directory opaque. */
export const OPAQUE_MARKER = '.wh..wh..opq';

/** A member name as path components below the layer root; no component is empty, `.` or `..`. */
export type MemberPath = readonly string[];

/** A member name that is safe to write, or the reason it leaves the layer. */
export type ParsedName = { ok: true; path: MemberPath } | { ok: false; reason: string };

/**
 * Splits a member name into components. A leading `./` and empty or `.`
 * components are dropped, so `./` and `.` name the layer root (an empty
 * path). An absolute name or one with a `..` component is rejected.
 */
export function parseMemberName(name: string): ParsedName {
  let relative = name;
  while (relative.startsWith('./')) relative = relative.slice(2);

  if (relative.startsWith('/')) return { ok: false, reason: 'the name is absolute' };

  const path = relative.split('/').filter((component) => component !== '' && component !== '.');
  if (path.includes('..')) return { ok: false, reason: 'the name contains a ".." component' };

  return { ok: true, path };
}

/** Returns the key of a member path in maps and sets: its components joined by `/`, `''` for the root. */
export function pathKey(path: MemberPath): string {
  return path.join('/');
}

/** The meaning of a member name to overlayfs. */
export type MemberRole =
  /** An ordinary file, directory, link or device. */
  | { kind: 'entry' }
  /** `DIR/.wh.NAME`: hides `DIR/NAME` of the lower layers. */
  | { kind: 'whiteout'; hidden: MemberPath }
  /** `DIR/.wh..wh..opq`: hides all of `DIR` in the lower layers. */
  | { kind: 'opaque'; directory: MemberPath }
  /** aufs metadata such as `.wh..wh.plnk` and the members below it, which overlayfs does not use. */
  | { kind: 'aufs-metadata' }
  /** A whiteout whose hidden name is empty, `.` or `..`. */
  | { kind: 'invalid'; reason: string };

/** Classifies a parsed member path by its whiteout prefixes. */
export function memberRole(path: MemberPath): MemberRole {
  const base = path.at(-1);
  if (base === undefined) return { kind: 'entry' };

  const parent = path.slice(0, -1);
  if (parent.some((component) => component.startsWith(WHITEOUT_META_PREFIX))) return { kind: 'aufs-metadata' };
  if (base === OPAQUE_MARKER) return { kind: 'opaque', directory: parent };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'aufs-metadata' };
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: 'entry' };

  const hidden = base.slice(WHITEOUT_PREFIX.length);
  if (hidden === '' || hidden === '.' || hidden === '..') {
    return { kind: 'invalid', reason: `is a whiteout of ${JSON.stringify(hidden)}, which is not a file name` };
  }
  return { kind: 'whiteout', hidden: [...parent, hidden] };
}
