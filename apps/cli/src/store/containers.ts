import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

import { CliError } from '../cli-error.js';
import type { CapabilityOptions } from '../run/capability-options.js';
import { isOlderThan } from './file-age.js';
import { releaseName, reserveName } from './names.js';
import { isRunning, ownIdentity, type ProcessIdentity } from './process-identity.js';
import { withStoreLock } from './store-lock.js';

// Each container has a directory in the store, <root>/containers/<id>/:
//
//   container.json   this record, replaced atomically (write, then rename)
//
// and a container with its own root file system also has:
//
//   upper/, work/    overlayfs upper and work directories: the writable layer
//   rootfs/          the empty mount point of the overlay; it is mounted
//                    only in the container's mount namespace, never here
//   hostname, hosts, resolv.conf   files bound onto /etc in the container
//
// With --rm the directory is removed when the container exits; without it
// the writable layer is kept. A record whose owner (the CLI) is gone
// without a finish time belongs to a run that was killed: the next command
// that opens the store removes it when it asked for --rm.
//
// Every change is made under the store's lock (store-lock.ts). Creating a
// container reserves its name, creates its directory and writes its record
// in one section. Removing one renames its directory to
// <root>/removing/<id>.<pid>.<start time>, after the remover's identity,
// and releases its name in one section. The renamed directory is deleted
// after the lock is released. So under the lock, a directory without a
// record can only be left by a command that was killed or failed in the
// middle, and it is removed at once. rename(2) needs <root>/containers and
// <root>/removing on one file system.

/** The state of one container, as container.json stores it. */
export interface ContainerRecord {
  id: string;
  /** Unique in the store: given with --name, or generated. */
  name: string;
  /** The image id (`sha256:...`), or null for --rootfs and the host's root. */
  image: string | null;
  /** The reference the user gave, such as `busybox:latest`, the --rootfs directory, or `/` for the host's root. */
  source: string;
  /** Whether the container has a root file system of its own (upper/, work/, rootfs/). */
  ownRoot: boolean;
  command: string[];
  /** ISO 8601 time of creation. */
  created: string;
  /** The CLI process that runs the container. */
  owner: ProcessIdentity;
  /** The container's PID 1, with its pid in the host's PID namespace, once it was spawned. */
  init?: ProcessIdentity;
  /** Named and anonymous volumes the container mounts. */
  volumes: string[];
  /** Whether the directory goes when the container exits (--rm). */
  autoRemove: boolean;
  /** ISO 8601 time of the exit, once the container exited. */
  finished?: string;
  exitCode?: number;
  /** Whether the kernel's OOM killer killed a process in the container's cgroup, recorded with the exit (docker's State.OOMKilled). */
  oomKilled?: boolean;
  /**
   * --cap-add and --cap-drop as normalized names, and --privileged. A record
   * written before these fields existed has none, and counts as none given.
   */
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
}

/** Returns the record's capability options; a record without them gets docker's default set. */
export function capabilityOptionsOf(record: ContainerRecord): CapabilityOptions {
  return { capAdd: record.capAdd ?? [], capDrop: record.capDrop ?? [], privileged: record.privileged ?? false };
}

/** A container record before its name is reserved. */
export type NewContainer = Omit<ContainerRecord, 'name'>;

/** Paths of one container's directory. */
export interface ContainerPaths {
  dir: string;
  upperDir: string;
  workDir: string;
  target: string;
}

/** A container taken out of the store under the lock: its directory, renamed, is still to be deleted. */
interface DetachedContainer {
  id: string;
  record?: ContainerRecord;
  renamedDir: string;
}

export function containersDir(root: string): string {
  return `${root}/containers`;
}

function containerDir(root: string, id: string): string {
  return `${containersDir(root)}/${id}`;
}

// The directories of removed containers, until they are deleted.
function removingDir(root: string): string {
  return `${root}/removing`;
}

/**
 * Reserves the container's name (`requestedName`, or a generated one),
 * creates its directory and writes its record, with the overlay's
 * directories when `container.ownRoot` is set. All of it happens under
 * the store's lock, and nothing stays behind when it throws. The caller
 * removes the container with removeContainer on a later failure.
 */
export function createContainer(root: string, container: NewContainer, requestedName?: string): { record: ContainerRecord; paths: ContainerPaths } {
  const dir = containerDir(root, container.id);
  const paths = { dir, upperDir: `${dir}/upper`, workDir: `${dir}/work`, target: `${dir}/rootfs` };

  return withStoreLock(root, () => {
    const name = reserveName(root, container.id, requestedName);
    const { id, ...rest } = container;
    const record: ContainerRecord = { id, name, ...rest };
    let created = false;
    try {
      mkdirSync(containersDir(root), { recursive: true, mode: 0o700 });
      mkdirSync(dir, { mode: 0o700 });
      created = true;
      writeRecord(dir, record);
      if (record.ownRoot) {
        for (const path of [paths.upperDir, paths.workDir, paths.target]) mkdirSync(path, { mode: 0o755 });
      }
    } catch (error) {
      // A directory that existed before (EEXIST) is another container's.
      if (created) rmSync(dir, { recursive: true, force: true });
      releaseName(root, name, id);
      throw error;
    }
    return { record, paths };
  });
}

/** Replaces the container's record, as its owner does when the state changes. Returns false, writing nothing, when the container was removed. */
export function updateContainer(root: string, record: ContainerRecord): boolean {
  return withStoreLock(root, () => {
    const dir = containerDir(root, record.id);
    if (readRecord(dir) === undefined) return false;
    writeRecord(dir, record);
    return true;
  });
}

/**
 * Records the exit, and whether the OOM killer struck, in the container's
 * current record, or removes the container when it asked for --rm. A
 * container that another command removed in the meantime stays removed.
 */
export function finishContainer(root: string, record: ContainerRecord, exitCode: number, oomKilled = false): void {
  const detached = withStoreLock(root, () => {
    if (record.autoRemove) {
      writeExitCode(root, record.id, exitCode);
      return detachContainer(root, record.id);
    }
    const dir = containerDir(root, record.id);
    const current = readRecord(dir);
    if (current !== undefined) writeRecord(dir, { ...current, finished: new Date().toISOString(), exitCode, oomKilled });
    return undefined;
  });
  if (detached !== undefined) deleteRenamedDir(detached.renamedDir);
}

// A --rm container's directory goes at its exit, but `wait` on it must
// still print the exit code, as docker's does: the code is kept in
// <root>/exits/<id> for EXIT_CODE_KEEP_MS.

/** How long the exit code of a removed --rm container stays readable, in ms. */
const EXIT_CODE_KEEP_MS = 10 * 60_000;

// Written by rename, so that `wait` never reads a half-written file.
function writeExitCode(root: string, id: string, exitCode: number): void {
  mkdirSync(`${root}/exits`, { recursive: true, mode: 0o700 });
  const temporary = `${root}/exits/${id}.${process.pid}.tmp`;
  writeFileSync(temporary, `${exitCode}\n`, { mode: 0o600 });
  renameSync(temporary, `${root}/exits/${id}`);
}

/** Returns the exit code of a removed --rm container, if it exited within the last minutes. */
export function readExitCode(root: string, id: string): number | undefined {
  try {
    return Number(readFileSync(`${root}/exits/${id}`, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** Removes the kept exit codes that are older than EXIT_CODE_KEEP_MS. */
export function removeOldExitCodes(root: string): void {
  let names: string[];
  try {
    names = readdirSync(`${root}/exits`);
  } catch {
    return;
  }
  for (const name of names) {
    const path = `${root}/exits/${name}`;
    if (isOlderThan(path, EXIT_CODE_KEEP_MS)) rmSync(path, { force: true });
  }
}

/**
 * Removes a container: under the store's lock its directory is renamed and
 * its name released, then the directory is deleted. Returns false when
 * the container was already gone, removed by another command. It first
 * checks that nothing is mounted below the directory in this mount
 * namespace, so that removing the writable layer can never delete a
 * volume's files through a mount.
 */
export function removeContainer(root: string, id: string): boolean {
  const detached = withStoreLock(root, () => detachContainer(root, id));
  if (detached === undefined) return false;
  deleteRenamedDir(detached.renamedDir);
  return true;
}

// Takes the container out of the store; callers hold the lock and delete
// the renamed directory after releasing it. Returns undefined when the
// directory is gone.
function detachContainer(root: string, id: string): DetachedContainer | undefined {
  const dir = containerDir(root, id);
  if (!existsSync(dir)) return undefined;
  const mounted = mountPointsBelow(dir);
  if (mounted.length > 0) {
    throw new CliError(
      `cannot remove container ${id.slice(0, 12)}: ${mounted[0]} is still mounted: unmount it first (umount ${mounted[0]})`,
    );
  }

  const record = readRecord(dir);
  const self = ownIdentity();
  const renamedDir = `${removingDir(root)}/${id}.${self.pid}.${self.startTime}`;
  mkdirSync(removingDir(root), { recursive: true, mode: 0o700 });
  renameSync(dir, renamedDir);
  if (record !== undefined) releaseName(root, record.name, id);
  return record === undefined ? { id, renamedDir } : { id, record, renamedDir };
}

function deleteRenamedDir(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/**
 * Deletes the renamed directories of removed containers whose remover
 * died before it deleted them. Each is first renamed to this process's
 * identity, so two commands never delete the same directory at once.
 */
export function removeLeftOverRemovals(root: string): void {
  let names: string[];
  try {
    names = readdirSync(removingDir(root));
  } catch {
    return;
  }

  const self = ownIdentity();
  for (const name of names) {
    const match = /^([0-9a-f]{64})\.(\d+)\.(\d+)$/.exec(name);
    if (match === null) continue;
    const [, id, pid, startTime] = match as unknown as [string, string, string, string];
    if (isRunning({ pid: Number(pid), startTime })) continue;

    const claimed = `${removingDir(root)}/${id}.${self.pid}.${self.startTime}`;
    try {
      renameSync(`${removingDir(root)}/${name}`, claimed);
    } catch {
      // Another command claimed it first.
      continue;
    }
    deleteRenamedDir(claimed);
  }
}

/** Reads every container record; directories without a readable record are skipped. */
export function listContainers(root: string): ContainerRecord[] {
  const records: ContainerRecord[] = [];
  for (const id of readDirectory(containersDir(root))) {
    const record = readRecord(`${containersDir(root)}/${id}`);
    if (record !== undefined) records.push(record);
  }
  return records;
}

/** Returns the short ids of the containers created from `imageId`, for `image rm`. */
export function containersUsingImage(root: string, imageId: string): string[] {
  return listContainers(root)
    .filter((record) => record.image === imageId)
    .map((record) => record.id.slice(0, 12));
}

/**
 * Removes what killed runs left: the directories of --rm containers whose
 * CLI is gone, and directories without a record. Each one is found
 * without the lock and checked again under it, so the lock is taken only
 * when there is something to remove. Returns the removed containers, with
 * the record when there was one.
 */
export function removeStaleContainers(root: string): { id: string; record?: ContainerRecord }[] {
  const candidates = readDirectory(containersDir(root)).filter((id) => isStale(root, id));
  if (candidates.length === 0) return [];

  const detached = withStoreLock(root, () =>
    candidates.flatMap((id) => {
      const container = isStale(root, id) ? detachContainer(root, id) : undefined;
      return container === undefined ? [] : [container];
    }),
  );
  for (const { renamedDir } of detached) deleteRenamedDir(renamedDir);
  return detached.map(({ id, record }) => (record === undefined ? { id } : { id, record }));
}

// Without the lock, a directory without a record may be one that a run is
// creating; under the lock it is always left over.
function isStale(root: string, id: string): boolean {
  const dir = containerDir(root, id);
  const record = readRecord(dir);
  if (record === undefined) return existsSync(dir);
  return record.autoRemove && record.finished === undefined && !isRunning(record.owner);
}

function writeRecord(dir: string, record: ContainerRecord): void {
  const temporary = `${dir}/container.json.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, `${dir}/container.json`);
}

function readRecord(dir: string): ContainerRecord | undefined {
  try {
    return JSON.parse(readFileSync(`${dir}/container.json`, 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
}

function readDirectory(dir: string): string[] {
  try {
    return readdirSync(dir).filter((name) => /^[0-9a-f]{64}$/.test(name));
  } catch {
    return [];
  }
}

// Field 5 of /proc/self/mountinfo is the mount point, with space, tab,
// newline and backslash written as octal escapes (proc(5)).
function mountPointsBelow(dir: string): string[] {
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  return mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}
