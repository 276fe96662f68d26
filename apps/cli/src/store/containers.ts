import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

import { CliError } from '../cli-error.js';
import type { CapabilityOptions } from '../run/capability-options.js';
import { isOlderThan } from './file-age.js';
import { releaseName } from './names.js';
import { isRunning, type ProcessIdentity } from './process-identity.js';

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

/** Paths of one container's directory. */
export interface ContainerPaths {
  dir: string;
  upperDir: string;
  workDir: string;
  target: string;
}

/** A directory whose record was never written is left by a CLI killed while creating it; it is removed after this many ms. */
const UNFINISHED_DIR_AGE_MS = 60_000;

export function containersDir(root: string): string {
  return `${root}/containers`;
}

/**
 * Creates the container's directory and writes its record, with the
 * overlay's directories when `record.ownRoot` is set; the caller removes
 * it with removeContainer on failure.
 */
export function createContainer(root: string, record: ContainerRecord): ContainerPaths {
  const dir = `${containersDir(root)}/${record.id}`;
  mkdirSync(containersDir(root), { recursive: true, mode: 0o700 });
  mkdirSync(dir, { mode: 0o700 });
  writeRecord(dir, record);

  const paths = { dir, upperDir: `${dir}/upper`, workDir: `${dir}/work`, target: `${dir}/rootfs` };
  if (record.ownRoot) {
    for (const path of [paths.upperDir, paths.workDir, paths.target]) mkdirSync(path, { mode: 0o755 });
  }
  return paths;
}

/** Replaces the container's record, as its owner does when the state changes. */
export function updateContainer(root: string, record: ContainerRecord): void {
  writeRecord(`${containersDir(root)}/${record.id}`, record);
}

/** Records the exit, or removes the directory when the container asked for --rm. */
export function finishContainer(root: string, record: ContainerRecord, exitCode: number, oomKilled = false): void {
  if (record.autoRemove) {
    writeExitCode(root, record.id, exitCode);
    removeContainer(root, record.id);
    return;
  }
  const dir = `${containersDir(root)}/${record.id}`;
  writeRecord(dir, { ...record, finished: new Date().toISOString(), exitCode, oomKilled });
}

// A --rm container's directory goes at its exit, but `wait` on it must
// still print the exit code, as docker's does: the code is kept in
// <root>/exits/<id> for EXIT_CODE_KEEP_MS.

/** How long the exit code of a removed --rm container stays readable, in ms. */
const EXIT_CODE_KEEP_MS = 10 * 60_000;

function writeExitCode(root: string, id: string, exitCode: number): void {
  mkdirSync(`${root}/exits`, { recursive: true, mode: 0o700 });
  writeFileSync(`${root}/exits/${id}`, `${exitCode}\n`);
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
 * Removes a container's directory. It first checks that nothing is mounted
 * below it in this mount namespace, so that removing the writable layer can
 * never delete a volume's files through a mount.
 */
export function removeContainer(root: string, id: string): void {
  const dir = `${containersDir(root)}/${id}`;
  const mounted = mountPointsBelow(dir);
  if (mounted.length > 0) {
    throw new CliError(
      `cannot remove container ${id.slice(0, 12)}: ${mounted[0]} is still mounted: unmount it first (umount ${mounted[0]})`,
    );
  }
  const record = readRecord(dir);
  rmSync(dir, { recursive: true, force: true });
  if (record !== undefined) releaseName(root, record.name, id);
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
 * CLI is gone, and directories without a record older than a minute.
 * Returns the removed containers, with the record when there was one.
 */
export function removeStaleContainers(root: string): { id: string; record?: ContainerRecord }[] {
  const removed: { id: string; record?: ContainerRecord }[] = [];
  for (const id of readDirectory(containersDir(root))) {
    const dir = `${containersDir(root)}/${id}`;
    const record = readRecord(dir);
    const stale =
      record === undefined
        ? isOlderThan(dir, UNFINISHED_DIR_AGE_MS)
        : record.autoRemove && record.finished === undefined && !isRunning(record.owner);
    if (!stale) continue;
    removeContainer(root, id);
    removed.push(record === undefined ? { id } : { id, record });
  }
  return removed;
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
