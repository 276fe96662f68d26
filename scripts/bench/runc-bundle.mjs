// OCI bundles for runc, and their cleanup: two that run /bin/true, one with
// only busybox and one with a root filesystem from a tarball, and one for
// detached containers that run `sleep 1000`.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { findOnPath } from './machine.mjs';

/** Paths checked for a statically linked busybox; Debian's busybox-static installs /bin/busybox. */
const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];
const NO_STATIC_BUSYBOX = 'no statically linked busybox for the root filesystem, apt-get install busybox-static adds it';

/**
 * Prepares runc for the benchmark inside `scratchDir`, which the caller
 * removes. Returns `{ available: true, version, argv, cleanup }`, where
 * `argv()` gives the command line of one run with a fresh container id, or
 * `{ available: false, reason }` when runc, busybox or a test run fails.
 * The bundle's root filesystem holds only bin/busybox and
 * bin/true -> busybox.
 */
export function prepareRunc(scratchDir) {
  const runc = findOnPath('runc');
  if (runc === undefined) return { available: false, reason: 'runc is not installed, apt-get install runc adds it' };
  const busybox = BUSYBOX_CANDIDATES.find((path) => isStaticBusybox(path));
  if (busybox === undefined) return { available: false, reason: NO_STATIC_BUSYBOX };

  const fillRootfs = (rootfs) => fillBusyboxRootfs(rootfs, busybox, ['true']);
  return prepareBundle(runc, { dir: join(scratchDir, 'runc'), idPrefix: `m-docker-bench-${process.pid}`, fillRootfs });
}

/**
 * Prepares a bundle for detached containers inside `scratchDir`: busybox
 * with bin/true and bin/sleep, running `sleep 1000`, with a cgroups path of
 * its own. Unlike the other bundles it makes no trial run, because its
 * process does not exit; the caller tries `runc run --detach`, `runc exec`
 * and `runc delete` itself. Returns `{ available: true, runc, version,
 * bundle, stateRoot, idPrefix, cleanup }`, or `{ available: false, reason }`.
 */
export function prepareRuncDetachedBundle(scratchDir) {
  const runc = findOnPath('runc');
  if (runc === undefined) return { available: false, reason: 'runc is not installed, apt-get install runc adds it' };
  const busybox = BUSYBOX_CANDIDATES.find((path) => isStaticBusybox(path));
  if (busybox === undefined) return { available: false, reason: NO_STATIC_BUSYBOX };

  const dir = join(scratchDir, 'runc-detached');
  const bundle = join(dir, 'bundle');
  const stateRoot = join(dir, 'state');
  fillBusyboxRootfs(join(bundle, 'rootfs'), busybox, ['true', 'sleep']);
  writeConfig(runc, bundle, (config) => {
    config.process.args = ['sleep', '1000'];
    config.linux.cgroupsPath = `m-docker-bench-${process.pid}-detached`;
  });
  return {
    available: true,
    runc,
    version: runcVersion(runc),
    bundle,
    stateRoot,
    idPrefix: `m-docker-bench-${process.pid}-detached`,
    cleanup: () => deleteContainers(runc, stateRoot),
  };
}

// bin/busybox, copied from the host, and one symbolic link per applet.
function fillBusyboxRootfs(rootfs, busybox, applets) {
  const bin = join(rootfs, 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync(busybox, join(bin, 'busybox'));
  for (const applet of applets) symlinkSync('busybox', join(bin, applet));
}

function runcVersion(runc) {
  return spawnSync(runc, ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0]?.trim() || 'runc (version unknown)';
}

/**
 * Prepares runc like {@link prepareRunc}, with a bundle whose root
 * filesystem is `rootfsTar` extracted by GNU tar as root, so owners, modes
 * and links are kept. The root stays writable (`root.readonly` false), as
 * the overlayfs root of `m-docker run --image` is.
 */
export function prepareRuncWithRootfs(scratchDir, rootfsTar) {
  const runc = findOnPath('runc');
  if (runc === undefined) return { available: false, reason: 'runc is not installed, apt-get install runc adds it' };
  const tar = findOnPath('tar');
  if (tar === undefined) return { available: false, reason: 'tar is not installed, apt-get install tar adds it' };

  const fillRootfs = (rootfs) => {
    mkdirSync(rootfs, { recursive: true });
    const extract = spawnSync(tar, ['--extract', '--numeric-owner', '--file', rootfsTar, '--directory', rootfs], { encoding: 'utf8' });
    if (extract.status !== 0) throw new Error(`tar --extract of ${rootfsTar} failed: ${(extract.stderr || extract.error?.message || '').trim()}`);
  };
  const configure = (config) => {
    config.root.readonly = false;
  };
  return prepareBundle(runc, { dir: join(scratchDir, 'runc-rootfs'), idPrefix: `m-docker-bench-${process.pid}-rootfs`, fillRootfs, configure });
}

// Writes the bundle and its state directory below `dir` and makes one trial
// run. A state directory of its own keeps `runc list` and `runc delete` to
// the containers that this bundle's runs created.
function prepareBundle(runc, { dir, idPrefix, fillRootfs, configure = () => {} }) {
  const version = runcVersion(runc);
  const bundle = join(dir, 'bundle');
  const stateRoot = join(dir, 'state');
  fillRootfs(join(bundle, 'rootfs'));
  writeConfig(runc, bundle, configure);

  let sequence = 0;
  const argv = () => [runc, '--root', stateRoot, 'run', '--bundle', bundle, `${idPrefix}-${sequence++}`];
  const cleanup = () => deleteContainers(runc, stateRoot);

  const trial = spawnSync(argv()[0], argv().slice(1), { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 30_000 });
  if (trial.status !== 0) {
    cleanup();
    const reason = (trial.stderr || trial.error?.message || `exit status ${trial.status}`).trim().split('\n').at(-1);
    return { available: false, reason: `runc run failed: ${reason}` };
  }
  return { available: true, version, argv, cleanup };
}

// config.json comes from `runc spec` with three changes, and then whatever
// `configure` changes.
function writeConfig(runc, bundle, configure) {
  const spec = spawnSync(runc, ['spec', '--bundle', bundle], { encoding: 'utf8' });
  if (spec.status !== 0) throw new Error(`runc spec failed: ${spec.stderr.trim()}`);
  const configPath = join(bundle, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  config.process.terminal = false;
  config.process.args = ['/bin/true'];
  // A relative cgroups path puts the container's cgroups below this
  // process's own cgroup in every hierarchy, never beside it.
  config.linux.cgroupsPath = `m-docker-bench-${process.pid}`;
  configure(config);
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
}

// `runc run` deletes a container when it exits; this catches any that a
// signal or failure left behind, and the detached ones.
function deleteContainers(runc, stateRoot) {
  const list = spawnSync(runc, ['--root', stateRoot, 'list', '--quiet'], { encoding: 'utf8' });
  if (list.status !== 0) return;
  for (const id of list.stdout.split('\n').filter(Boolean)) {
    spawnSync(runc, ['--root', stateRoot, 'delete', '--force', id], { stdio: 'ignore' });
  }
}

// Reads the ELF program headers: a dynamically linked binary has a PT_INTERP
// entry naming its loader, which the bundle's root filesystem does not have.
// Only 64-bit little-endian ELF files are inspected; others count as static
// and the trial run in prepareRunc() reports them if they fail.
function isStaticBusybox(path) {
  let file;
  try {
    file = readFileSync(path);
  } catch {
    return false;
  }
  if (file.subarray(0, 4).toString('latin1') !== '\x7fELF') return false;
  const is64BitLittleEndian = file[4] === 2 && file[5] === 1;
  if (!is64BitLittleEndian) return true;

  const PT_INTERP = 3;
  const headerOffset = Number(file.readBigUInt64LE(0x20));
  const headerSize = file.readUInt16LE(0x36);
  const headerCount = file.readUInt16LE(0x38);
  for (let index = 0; index < headerCount; index++) {
    if (file.readUInt32LE(headerOffset + index * headerSize) === PT_INTERP) return false;
  }
  return true;
}
