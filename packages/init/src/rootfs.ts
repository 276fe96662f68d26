import type { MountConfig, RootConfig } from '@m-docker/ipc';
import {
  chdir,
  chmod,
  isDirectory,
  MNT_DETACH,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  makedev,
  mknod,
  mount,
  pivotRoot,
  S_IFCHR,
  symlink,
  umount2,
} from '@m-docker/syscalls';

import { makeDirectories, makeFile, PathInRootError, resolveInRoot } from './path-in-root.js';
import { DEVPTS_OPTIONS } from './terminal.js';

// The container's root, built in the init's own mount namespace (already
// private, so nothing here reaches the host):
//
//   1. overlayfs on root.target: the lower directories read-only, the
//      container's upper and work directories above them
//   2. /proc, /dev (a tmpfs with device nodes, devpts, shm, mqueue), /sys
//      read-only, then the requested mounts (volumes, tmpfs, /etc files)
//   3. pivot_root into it, then a lazy unmount of the old root, so no path
//      of the host stays reachable
//   4. with --read-only, the root is remounted read-only last, after the
//      mount points and the working directory inside it were created
//
// The kernel's docs: Documentation/filesystems/overlayfs.rst and
// pivot_root(2).

/** Device nodes every container gets in /dev, as docker and runc create them: name, major, minor. */
const DEVICES = [
  ['null', 1, 3],
  ['zero', 1, 5],
  ['full', 1, 7],
  ['random', 1, 8],
  ['urandom', 1, 9],
  ['tty', 5, 0],
] as const;

/** Links in /dev to the process's own descriptors, as udev creates them on a host. */
const DEV_LINKS = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
  ['ptmx', 'pts/ptmx'],
] as const;

/** Bytes of mount(2) data that the kernel copies: one page on x86_64 and aarch64 with 4 KiB pages. */
const MOUNT_DATA_MAX = 4095;

/** Settings of the container besides its root that shape the root file system. */
export interface RootOptions {
  /** Whether the command gets a pty, whose slave the init binds onto /dev/console after pivot_root. */
  terminal: boolean;
  /** The working directory, created if missing, as docker does. */
  cwd: string;
}

/** Mounts the container's root and its file systems, and makes it the root of the mount namespace. */
export function setUpRoot(root: RootConfig, mounts: readonly MountConfig[], options: RootOptions): void {
  mountOverlay(root);
  mountProc(root.target);
  mountDev(root, options.terminal);
  mountSys(root.target);
  for (const entry of mounts) mountEntry(root.target, entry);
  directoryInRoot(root.target, options.cwd);
  switchRoot(root.target);
  if (root.readonly) mount(null, '/', null, MS_BIND | MS_REMOUNT | MS_RDONLY);
}

function mountOverlay(root: RootConfig): void {
  const data = `lowerdir=${root.lowerDirs.join(':')},upperdir=${root.upperDir},workdir=${root.workDir}`;
  // NOTE: a long lowerdir list (about 40 layers with store paths of 100
  // bytes) passes the one-page limit; docker shortens the paths with links.
  if (Buffer.byteLength(data) > MOUNT_DATA_MAX) {
    throw new Error(`the overlay's ${root.lowerDirs.length} layer paths exceed the ${MOUNT_DATA_MAX} bytes that mount(2) takes`);
  }
  mount('overlay', root.target, 'overlay', 0, data);
}

function mountProc(target: string): void {
  const path = directoryInRoot(target, '/proc');
  mount('proc', path, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

function mountDev(root: RootConfig, terminal: boolean): void {
  const dev = directoryInRoot(root.target, '/dev');
  mount('tmpfs', dev, 'tmpfs', MS_NOSUID, 'mode=755,size=65536k');

  // chmod after mknod: the umask would leave 0644.
  for (const [name, major, minor] of DEVICES) {
    mknod(`${dev}/${name}`, S_IFCHR | 0o666, makedev(major, minor));
    chmod(`${dev}/${name}`, 0o666);
  }
  for (const [name, target] of DEV_LINKS) symlink(target, `${dev}/${name}`);

  const pts = directoryInRoot(root.target, '/dev/pts');
  mount('devpts', pts, 'devpts', MS_NOSUID | MS_NOEXEC, DEVPTS_OPTIONS);
  const shm = directoryInRoot(root.target, '/dev/shm');
  mount('shm', shm, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,size=${root.shmSize}`);
  const mqueue = directoryInRoot(root.target, '/dev/mqueue');
  mount('mqueue', mqueue, 'mqueue', MS_NOSUID | MS_NODEV | MS_NOEXEC);

  // With -t the pty's slave becomes /dev/console too. The pty exists only
  // after pivot_root, so this is the mount point for it.
  if (terminal) makeFile(root.target, `${dev}/console`);
}

function mountSys(target: string): void {
  const path = directoryInRoot(target, '/sys');
  mount('sysfs', path, 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

// A failure names the container path that the user gave, not the host
// path inside the store that it resolved to.
function mountEntry(target: string, entry: MountConfig): void {
  try {
    mountEntryAt(target, entry);
  } catch (error) {
    const reason = (error as Error).message.replaceAll(target, '');
    throw new PathInRootError(entry.destination, `cannot mount ${entry.source} on ${entry.destination}: ${reason}: choose another container path`);
  }
}

function mountEntryAt(target: string, entry: MountConfig): void {
  const path = resolveInRoot(target, entry.destination);
  if (entry.type === 'tmpfs') {
    makeDirectories(target, path);
    const { flags, data } = splitMountOptions(entry.data);
    mount('tmpfs', path, 'tmpfs', flags | (entry.readonly ? MS_RDONLY : 0), data);
    return;
  }

  if (isDirectory(entry.source)) makeDirectories(target, path);
  else makeFile(target, path);
  mount(entry.source, path, null, MS_BIND | MS_REC);
  // A bind mount takes its read-only flag only from a remount.
  if (entry.readonly) mount(null, path, null, MS_BIND | MS_REMOUNT | MS_RDONLY);
}

/** Flag words that a tmpfs mount's data may contain, as mount(8) spells them. */
const FLAG_WORDS: Record<string, number> = { noexec: MS_NOEXEC, nosuid: MS_NOSUID, nodev: MS_NODEV };

// Splits `noexec,nosuid,size=64m` into the mount flags and the data that
// mount(2) passes to the file system.
function splitMountOptions(options: string): { flags: number; data: string | null } {
  let flags = 0;
  const data: string[] = [];
  for (const option of options.split(',').filter(Boolean)) {
    const flag = FLAG_WORDS[option];
    if (flag === undefined) data.push(option);
    else flags |= flag;
  }
  return { flags, data: data.length === 0 ? null : data.join(',') };
}

// pivot_root(".", ".") stacks the old root on top of the new one at "/",
// so no directory for the old root is needed, even in a read-only image;
// the lazy unmount then drops it and every host mount below it.
function switchRoot(target: string): void {
  chdir(target);
  pivotRoot('.', '.');
  umount2('.', MNT_DETACH);
  chdir('/');
}

function directoryInRoot(root: string, path: string): string {
  const hostPath = resolveInRoot(root, path);
  makeDirectories(root, hostPath);
  return hostPath;
}
