// Deterministic tar archives for test images: member constructors, packing
// with tar-stream, the whiteout rules that flatten image layers, and a
// header walker that finds a member's byte range.
//
// Every member gets the same mtime and members are sorted by name, so two
// builds from the same input give identical bytes and digests. Sorting by
// UTF-16 code units puts every directory before its children, because a
// parent's name ("data/") is a prefix of each child's name.

import tar from 'tar-stream';

/**
 * The `created` time of every image config, in RFC 3339 form without
 * fractional seconds, and the mtime of every member.
 */
export const FIXED_TIME_TEXT = '2024-01-01T00:00:00Z';
export const FIXED_TIME = new Date(FIXED_TIME_TEXT);

const BLOCK_SIZE = 512;

/** Describes a directory member. tar names a directory with a trailing slash. */
export function directory(name, { mode = 0o755, uid = 0, gid = 0 } = {}) {
  return { name: `${name}/`, type: 'directory', mode, uid, gid };
}

/** Describes a regular file member. `pax` adds pax extended header records, such as xattrs. */
export function file(name, content, { mode = 0o644, uid = 0, gid = 0, pax } = {}) {
  const member = { name, type: 'file', mode, uid, gid, content: Buffer.from(content) };
  if (pax !== undefined) member.pax = pax;
  return member;
}

/** Describes a symbolic link member. The archive stores `target` as written, without resolving it. */
export function symlink(name, target) {
  return { name, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: target };
}

/**
 * Describes a hard link member to `target`, another member's name. tar
 * writers store the mode of the shared inode, so it should match the target's.
 */
export function hardLink(name, target, { mode = 0o644, uid = 0, gid = 0 } = {}) {
  return { name, type: 'link', mode, uid, gid, linkname: target };
}

/** Compares member names by UTF-16 code units, which keeps the order independent of the locale. */
export function compareNames(a, b) {
  if (a.name < b.name) return -1;
  if (a.name > b.name) return 1;
  return 0;
}

/**
 * Packs members into a tar archive in memory and returns its bytes.
 * Members are sorted by name unless `sort` is false.
 */
export async function packTar(members, { sort = true } = {}) {
  const ordered = sort ? [...members].sort(compareNames) : members;
  const pack = tar.pack();
  const chunks = [];
  pack.on('data', (chunk) => chunks.push(chunk));
  const ended = new Promise((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });

  for (const member of ordered) {
    await addMember(pack, member);
  }
  pack.finalize();
  await ended;

  return Buffer.concat(chunks);
}

function addMember(pack, member) {
  // tar-stream sets fields such as `size` on the header it is given, so it
  // gets a copy and the caller's member stays unchanged.
  const { content, ...fields } = member;
  const header = { ...fields, mtime: FIXED_TIME };

  return new Promise((resolve, reject) => {
    const done = (error) => (error ? reject(error) : resolve());
    if (content === undefined) pack.entry(header, done);
    else pack.entry(header, content, done);
  });
}

/**
 * Applies layers from lowest to highest with the OCI whiteout rules, as
 * overlayfs and `docker export` see them, and returns the members of the
 * merged tree. A member `DIR/.wh.NAME` removes `DIR/NAME` and everything
 * below it. A member `DIR/.wh..wh..opq` hides every member below DIR that a
 * lower layer added. Whiteout members themselves do not appear in the result.
 */
export function flattenLayers(layers) {
  const tree = new Map();

  for (const layer of layers) {
    for (const member of layer) {
      const { parent, base } = splitName(member.name);
      if (base === '.wh..wh..opq') removeBelow(tree, parent);
    }

    for (const member of layer) {
      const { parent, base } = splitName(member.name);
      if (base === '.wh..wh..opq') continue;

      if (base.startsWith('.wh.')) {
        const hidden = parent + base.slice('.wh.'.length);
        tree.delete(hidden);
        removeBelow(tree, `${hidden}/`);
        continue;
      }

      tree.set(stripSlash(member.name), member);
    }
  }

  return [...tree.values()];
}

function stripSlash(name) {
  return name.endsWith('/') ? name.slice(0, -1) : name;
}

/** Splits `a/b/c` into the parent `a/b/` (empty at the root) and the base name `c`. */
function splitName(name) {
  const path = stripSlash(name);
  const slash = path.lastIndexOf('/');
  return { parent: path.slice(0, slash + 1), base: path.slice(slash + 1) };
}

/** Deletes every member whose name starts with `prefix`, which ends in a slash or is empty. */
function removeBelow(tree, prefix) {
  for (const key of [...tree.keys()]) {
    if (key.startsWith(prefix)) tree.delete(key);
  }
}

/**
 * Returns where a member's data starts in a tar archive and its size in
 * bytes. It reads ustar headers only, without pax or GNU long names, which
 * is enough for the outer archives this folder writes.
 */
export function findMember(archive, name) {
  let offset = 0;

  while (offset + BLOCK_SIZE <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK_SIZE);
    if (header.every((byte) => byte === 0)) break;

    const prefix = readField(header, 345, 155);
    const shortName = readField(header, 0, 100);
    const memberName = prefix ? `${prefix}/${shortName}` : shortName;
    const size = Number.parseInt(readField(header, 124, 12).trim() || '0', 8);

    if (memberName === name) return { dataOffset: offset + BLOCK_SIZE, size };
    offset += BLOCK_SIZE + Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
  }

  throw new Error(`member ${name} not found in the tar archive`);
}

function readField(header, start, length) {
  const field = header.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}
