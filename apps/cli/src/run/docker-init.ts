import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';

import type { MountConfig } from '@m-docker/ipc';

import { CliError } from '../cli-error.js';

// `run --init` makes tini PID 1 of the container, as `docker run --init`
// does: tini starts COMMAND as its child, forwards the signals it receives
// to it, reaps every orphan that the kernel reparents to PID 1, and exits
// with COMMAND's status (128+N when COMMAND died of signal N). The m-docker
// init cannot do this itself because a JavaScript runtime reaps only the
// children that it spawned, and the init execve()s COMMAND anyway.
//
// On the host's root file system the init executes the host's tini by its
// path. In a root of the container's own, tini is bound read-only onto
// /sbin/docker-init, docker's path, so it must be statically linked: the
// container's root has no dynamic loader and no libc that fit it.

/** The path of tini inside a container with a root of its own, as in docker. */
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';

/** Environment variable that replaces the search for tini with one path; for tests and unusual installs. */
export const TINI_PATH_VARIABLE = 'M_DOCKER_TINI';

/** Paths searched in order. Debian 12's package tini installs both, and only tini-static is statically linked. */
const TINI_PATHS = ['/usr/bin/tini-static', '/usr/bin/tini'] as const;

/** The kind of a candidate file: missing, not executable, or an executable with its linkage. */
export type ExecutableKind = 'missing' | 'not-executable' | 'static' | 'dynamic' | 'not-elf';

/** Returns `argv` as tini's arguments: `--` ends tini's options, so COMMAND's own options stay COMMAND's. */
export function withInit(initPath: string, argv: readonly string[]): string[] {
  return [initPath, '--', ...argv];
}

/** Returns the read-only bind mount of `tiniPath` onto /sbin/docker-init. */
export function initMount(tiniPath: string): MountConfig {
  return { type: 'bind', source: tiniPath, destination: INIT_PATH_IN_CONTAINER, readonly: true, data: '' };
}

/**
 * Returns the path of the host's tini: $M_DOCKER_TINI when set, else the
 * first usable path of TINI_PATHS. With `needStatic` (a root of the
 * container's own) only a statically linked tini is usable. Throws a
 * CliError (status 125) that names what to install or set.
 */
export function findTini(env: NodeJS.ProcessEnv, needStatic: boolean): string {
  const override = env[TINI_PATH_VARIABLE];
  if (override !== undefined && override !== '') return checkOverride(override, needStatic);

  const kinds = TINI_PATHS.map((path) => ({ path, kind: inspectExecutable(path) }));
  const usable = kinds.find(({ kind }) => isUsable(kind, needStatic));
  if (usable !== undefined) return usable.path;

  const found = kinds.filter(({ kind }) => kind !== 'missing');
  const reason =
    found.length === 0
      ? `neither ${TINI_PATHS.join(' nor ')} exists`
      : kinds.map(({ path, kind }) => `${path} ${describeKind(kind)}`).join(' and ');
  const need = needStatic ? 'a statically linked tini, which runs inside the root of the container' : 'tini';
  throw new CliError(
    `--init needs ${need}, but ${reason}: install Debian's package tini (apt-get install tini), which contains /usr/bin/tini-static, or set ${TINI_PATH_VARIABLE} to the path of a static tini`,
  );
}

function checkOverride(path: string, needStatic: boolean): string {
  const invalid = (problem: string, fix: string) =>
    new CliError(`invalid ${TINI_PATH_VARIABLE} ${JSON.stringify(path)}: ${problem}: ${fix}, or unset it to use ${TINI_PATHS[0]}`);
  if (!path.startsWith('/')) throw invalid('the path is not absolute', 'give an absolute path');

  const kind = inspectExecutable(path);
  if (kind === 'missing') throw invalid('no such file', 'set it to the path of a tini binary');
  if (kind === 'not-executable') throw invalid('not an executable file', 'set it to the path of a tini binary');
  if (!isUsable(kind, needStatic)) {
    throw invalid(
      `${describeKind(kind)}, so it cannot run inside the root of a container started with --image or --rootfs`,
      'set it to a statically linked tini',
    );
  }
  return path;
}

function isUsable(kind: ExecutableKind, needStatic: boolean): boolean {
  if (kind === 'static') return true;
  return !needStatic && (kind === 'dynamic' || kind === 'not-elf');
}

function describeKind(kind: ExecutableKind): string {
  const descriptions: Record<ExecutableKind, string> = {
    missing: 'does not exist',
    'not-executable': 'is not an executable file',
    static: 'is statically linked',
    dynamic: 'is dynamically linked',
    'not-elf': 'is not an ELF binary',
  };
  return descriptions[kind];
}

/** Classifies `path`: whether it is an executable regular file, and whether it needs a program interpreter. */
export function inspectExecutable(path: string): ExecutableKind {
  try {
    if (!statSync(path).isFile()) return 'not-executable';
  } catch {
    return 'missing';
  }
  try {
    accessSync(path, constants.X_OK | constants.R_OK);
  } catch {
    return 'not-executable';
  }
  return elfLinkage(path);
}

// ELF layout from elf(5): e_ident[EI_CLASS] at byte 4 (1 = 32-bit, 2 =
// 64-bit), e_ident[EI_DATA] at byte 5 (1 = little-endian, 2 = big-endian),
// then e_phoff, e_phentsize and e_phnum at offsets that depend on the
// class. A program header whose p_type (its first 4 bytes) is PT_INTERP
// names the dynamic loader. A static executable, static-pie included, has
// none.
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const PT_INTERP = 3;
const ELF_CLASSES = {
  1: { headerSize: 52, phoff: 28, phentsize: 42, phnum: 44 },
  2: { headerSize: 64, phoff: 32, phentsize: 54, phnum: 56 },
} as const;

/** Reads the ELF header and program headers of `path`: 'static' without PT_INTERP, 'dynamic' with it. */
export function elfLinkage(path: string): 'static' | 'dynamic' | 'not-elf' {
  const fd = openSync(path, 'r');
  try {
    const header = readAt(fd, 64, 0);
    if (header.length < 6 || !header.subarray(0, 4).equals(ELF_MAGIC)) return 'not-elf';
    const elfClass = header[4] === 1 || header[4] === 2 ? ELF_CLASSES[header[4]] : undefined;
    const encoding = header[5];
    if (elfClass === undefined || (encoding !== 1 && encoding !== 2) || header.length < elfClass.headerSize) return 'not-elf';

    const littleEndian = encoding === 1;
    const u16 = (buffer: Buffer, offset: number) => (littleEndian ? buffer.readUInt16LE(offset) : buffer.readUInt16BE(offset));
    const u32 = (buffer: Buffer, offset: number) => (littleEndian ? buffer.readUInt32LE(offset) : buffer.readUInt32BE(offset));
    const u64 = (buffer: Buffer, offset: number) => (littleEndian ? buffer.readBigUInt64LE(offset) : buffer.readBigUInt64BE(offset));
    const phoff = elfClass.headerSize === 64 ? Number(u64(header, elfClass.phoff)) : u32(header, elfClass.phoff);
    const entrySize = u16(header, elfClass.phentsize);
    const count = u16(header, elfClass.phnum);
    if (entrySize < 4) return 'not-elf';

    // The u16 fields bound the table to 65535 entries of 65535 bytes.
    const table = readAt(fd, entrySize * count, phoff);
    if (table.length < entrySize * count) return 'not-elf';
    for (let index = 0; index < count; index += 1) {
      if (u32(table, index * entrySize) === PT_INTERP) return 'dynamic';
    }
    return 'static';
  } finally {
    closeSync(fd);
  }
}

function readAt(fd: number, length: number, position: number): Buffer {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const count = readSync(fd, buffer, filled, length - filled, position + filled);
    if (count === 0) break;
    filled += count;
  }
  return buffer.subarray(0, filled);
}
