import { constants, type Stats } from 'node:fs';
import { chmod, type FileHandle, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { lsetxattr, makedev, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '@m-docker/syscalls';

import { ImageError } from './errors.js';
import { type MemberPath, pathKey } from './layer-member-name.js';

// Writes the members of one layer below its root directory. One invariant
// keeps every write inside the root. A path is opened, created or removed
// only after lstat(2) has shown each of its parent components to be a real
// directory, not a symlink. The final component is created with O_EXCL or
// by a call that does not follow symlinks (mkdir, symlink, link, mknod).
// `knownDirectories` caches the parents already checked. An entry leaves
// the cache when a later member replaces it, so the cache stays true as
// long as nothing but this writer changes the root.

/** Owner, permission bits, times and extended attributes of a member. */
export interface MemberMetadata {
  uid: number;
  gid: number;
  /** Permission bits including setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  /** Seconds since the epoch, with a fraction when a pax header gives one. */
  atime: number;
  mtime: number;
  /** Extended attributes from the member's `SCHILY.xattr.NAME` pax records: name to raw value. */
  xattrs: ReadonlyMap<string, Buffer>;
}

/** The member being written, for messages. */
export interface MemberContext {
  /** The member's name as the archive spells it. */
  name: string;
  /** Prefix of every message, such as `layer "blobs/sha256/ab12..."`. */
  layer: string;
}

/** Device and FIFO member types, with the file type bits mknod(2) takes. */
const NODE_TYPES = { 'character-device': S_IFCHR, 'block-device': S_IFBLK, fifo: S_IFIFO } as const;
export type NodeType = keyof typeof NODE_TYPES;

/** Checks whether a tar-stream member type is a device or FIFO type. */
export function isNodeType(type: string | null | undefined): type is NodeType {
  return type != null && Object.hasOwn(NODE_TYPES, type);
}

/** Mode of directories that a member needs but the layer does not contain, as docker creates them. */
const IMPLIED_DIRECTORY_MODE = 0o755;

const OPAQUE_XATTR = 'trusted.overlay.opaque';

const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Builds the UNSAFE_PATH error for a member. */
export function unsafePath(member: MemberContext, reason: string): ImageError {
  return new ImageError('UNSAFE_PATH', `${member.layer}: member ${JSON.stringify(member.name)} ${reason}`, {
    entry: member.name,
  });
}

/** Writes members into one layer directory and applies directory metadata at the end. */
export class LayerWriter {
  /** Sum of the sizes of the regular files written, in bytes. */
  size = 0;

  private readonly knownDirectories = new Set<string>(['']);
  // Directories' metadata waits until their content is written, because
  // every file created in a directory changes its mtime.
  private readonly pendingDirectories = new Map<string, MemberMetadata>();

  constructor(private readonly root: string) {}

  /** Creates or keeps a directory. Its owner, mode and times are set by `finish`. */
  async directory(member: MemberContext, path: MemberPath, metadata: MemberMetadata): Promise<void> {
    const { host, kept } = await this.prepare(member, path, 'directory');
    if (!kept) await mkdir(host, { mode: 0o700 });

    this.knownDirectories.add(pathKey(path));
    this.pendingDirectories.set(pathKey(path), metadata);
    setXattrs(host, metadata.xattrs);
  }

  /** Writes a regular file from `data` and adds its length to `size`. */
  async file(
    member: MemberContext,
    path: MemberPath,
    metadata: MemberMetadata,
    data: AsyncIterable<Buffer>,
  ): Promise<void> {
    const { host } = await this.prepare(member, path, 'file');
    const handle = await open(host, CREATE_FILE, 0o600);
    try {
      for await (const chunk of data) {
        await writeAll(handle, chunk);
        this.size += chunk.length;
      }

      // chown(2) clears setuid and setgid, and a write or chown clears
      // security.capability, so the mode and the attributes come after.
      await handle.chown(metadata.uid, metadata.gid);
      await handle.chmod(metadata.mode);
      setXattrs(host, metadata.xattrs);
      await handle.utimes(metadata.atime, metadata.mtime);
    } finally {
      await handle.close();
    }
  }

  /** Creates a symlink whose target is stored exactly as given, absolute or relative. */
  async symlink(member: MemberContext, path: MemberPath, target: string, metadata: MemberMetadata): Promise<void> {
    const { host } = await this.prepare(member, path, 'symlink');
    await symlink(target, host);
    await lchown(host, metadata.uid, metadata.gid);
    setXattrs(host, metadata.xattrs);
    await lutimes(host, metadata.atime, metadata.mtime);
  }

  /**
   * Creates a hard link to `target`, an earlier member of this layer. The
   * link shares the target's inode, so it takes no metadata of its own.
   */
  async hardLink(member: MemberContext, path: MemberPath, target: MemberPath): Promise<void> {
    const described = `links to ${JSON.stringify(pathKey(target))}, which`;
    const targetHost = await this.existingEntry(member, target, described);
    if (pathKey(target) === pathKey(path)) return;

    const { host } = await this.prepare(member, path, 'hard link');
    await link(targetHost, host);
  }

  /** Creates a character or block device or a FIFO. */
  async node(
    member: MemberContext,
    path: MemberPath,
    type: NodeType,
    device: { major: number; minor: number },
    metadata: MemberMetadata,
  ): Promise<void> {
    const { host } = await this.prepare(member, path, type);
    mknod(host, NODE_TYPES[type] | (metadata.mode & 0o777), makedev(device.major, device.minor));
    await this.applyNodeMetadata(host, metadata);
  }

  /**
   * Creates the overlayfs whiteout for `hidden`: a character device 0:0 with
   * no permission bits, owned as the whiteout member was.
   */
  async whiteout(member: MemberContext, hidden: MemberPath, metadata: MemberMetadata): Promise<void> {
    const { host } = await this.prepare(member, hidden, 'whiteout');
    mknod(host, S_IFCHR, makedev(0, 0));
    await lchown(host, metadata.uid, metadata.gid);
    await lutimes(host, metadata.atime, metadata.mtime);
  }

  /** Marks `directory` opaque for overlayfs, creating it when the layer has not. */
  async opaque(member: MemberContext, directory: MemberPath): Promise<void> {
    const host = await this.ensureDirectory(member, directory);
    lsetxattr(host, OPAQUE_XATTR, 'y');
  }

  /** Sets the owner, mode and times of every directory member, deepest first. */
  async finish(): Promise<void> {
    const byDepth = [...this.pendingDirectories].sort(([a], [b]) => depth(b) - depth(a));
    for (const [key, metadata] of byDepth) {
      const host = this.hostPath(key);
      await lchown(host, metadata.uid, metadata.gid);
      await chmod(host, metadata.mode);
      await lutimes(host, metadata.atime, metadata.mtime);
    }
  }

  private async applyNodeMetadata(host: string, metadata: MemberMetadata): Promise<void> {
    // mknod(2) applies the umask and takes no setuid bits; chmod(2) on the
    // new node, which is no symlink, sets the mode exactly.
    await lchown(host, metadata.uid, metadata.gid);
    await chmod(host, metadata.mode);
    setXattrs(host, metadata.xattrs);
    await lutimes(host, metadata.atime, metadata.mtime);
  }

  /**
   * Makes room for a new entry at `path` and returns its host path. Parents
   * are checked, or created when missing. An existing entry is removed, as
   * tar replaces an earlier member of the same name, except a directory when
   * the new member is a directory too: that one is kept (`kept`) and merged.
   */
  private async prepare(
    member: MemberContext,
    path: MemberPath,
    type: string,
  ): Promise<{ host: string; kept: boolean }> {
    if (path.length === 0 && type !== 'directory') {
      throw unsafePath(member, `is a ${type} in place of the layer's root directory`);
    }

    await this.ensureDirectories(member, path, path.length - 1);
    const host = this.hostPath(pathKey(path));
    const existing = await lstatIfExists(host);
    if (existing === undefined) return { host, kept: false };

    if (existing.isDirectory()) {
      if (type === 'directory') return { host, kept: true };
      await rm(host, { recursive: true });
      this.forget(pathKey(path));
    } else {
      await unlink(host);
    }
    return { host, kept: false };
  }

  /** Creates the directory `path` and its parents as needed and returns its host path. */
  private async ensureDirectory(member: MemberContext, path: MemberPath): Promise<string> {
    await this.ensureDirectories(member, path, path.length);
    return this.hostPath(pathKey(path));
  }

  // Checks the first `count` prefixes of `path` from the root down, and
  // creates the missing ones with mode 0755.
  private async ensureDirectories(member: MemberContext, path: MemberPath, count: number): Promise<void> {
    for (let length = 1; length <= count; length++) {
      const key = pathKey(path.slice(0, length));
      if (this.knownDirectories.has(key)) continue;

      const host = this.hostPath(key);
      const stats = await lstatIfExists(host);
      if (stats === undefined) {
        await mkdir(host);
        await chmod(host, IMPLIED_DIRECTORY_MODE);
      } else if (stats.isSymbolicLink()) {
        throw unsafePath(member, `leaves the layer: its parent ${JSON.stringify(key)} is a symlink`);
      } else if (!stats.isDirectory()) {
        throw new ImageError(
          'STORE_FAILED',
          `${member.layer}: member ${JSON.stringify(member.name)} cannot be written: its parent ${JSON.stringify(key)} is not a directory`,
          { entry: member.name, path: host },
        );
      }
      this.knownDirectories.add(key);
    }
  }

  // Returns the host path of an existing non-directory entry of this layer,
  // reached without passing through a symlink. `described` starts each
  // reason, such as `links to "a/b", which`.
  private async existingEntry(member: MemberContext, path: MemberPath, described: string): Promise<string> {
    for (let length = 1; length < path.length; length++) {
      const key = pathKey(path.slice(0, length));
      if (this.knownDirectories.has(key)) continue;

      const stats = await lstatIfExists(this.hostPath(key));
      if (stats?.isSymbolicLink()) {
        throw unsafePath(member, `${described} leaves the layer: its parent ${JSON.stringify(key)} is a symlink`);
      }
      if (!stats?.isDirectory()) throw unsafePath(member, `${described} is not in this layer`);
    }

    const host = this.hostPath(pathKey(path));
    const stats = await lstatIfExists(host);
    if (stats === undefined || path.length === 0) throw unsafePath(member, `${described} is not in this layer`);
    if (stats.isDirectory()) throw unsafePath(member, `${described} is a directory`);
    return host;
  }

  // Drops a removed directory and everything below it from the cache and
  // from the pending metadata.
  private forget(key: string): void {
    const below = `${key}/`;
    for (const known of this.knownDirectories) {
      if (known === key || known.startsWith(below)) this.knownDirectories.delete(known);
    }
    for (const pending of this.pendingDirectories.keys()) {
      if (pending === key || pending.startsWith(below)) this.pendingDirectories.delete(pending);
    }
  }

  private hostPath(key: string): string {
    return key === '' ? this.root : join(this.root, key);
  }
}

function depth(key: string): number {
  return key === '' ? 0 : key.split('/').length;
}

async function lstatIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

// FileHandle.write may write fewer bytes than given, as write(2) may.
async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

function setXattrs(host: string, xattrs: ReadonlyMap<string, Buffer>): void {
  for (const [name, value] of xattrs) lsetxattr(host, name, value);
}
