import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as Cgroupfs from '../src/cgroupfs.js';
import type { CgroupLayout } from '../src/index.js';

// A fake cgroup2 tree in a temporary directory, for the v2 code paths that
// a cgroup v1 machine cannot run. Tests replace src/cgroupfs.ts with
// fakeCgroupfs(), which acts like the kernel on paths inside a fake tree.
// Its mkdir fills the new cgroup with the interface files of the
// controllers that the parent enables, and writes need an existing file.
// cgroup.subtree_control and cgroup.procs follow the kernel's rules, and
// rmdir fails for a cgroup with processes or children. Other paths go to
// the real functions.

/** The interface files of a new cgroup, with the kernel's initial values. */
const CORE_FILES: Record<string, string> = {
  'cgroup.procs': '',
  'cgroup.subtree_control': '\n',
  'cgroup.type': 'domain\n',
  'cgroup.events': 'populated 0\nfrozen 0\n',
};

const CONTROLLER_FILES: Record<string, Record<string, string>> = {
  cpuset: { 'cpuset.cpus': '\n', 'cpuset.mems': '\n', 'cpuset.cpus.effective': '0-3\n', 'cpuset.mems.effective': '0\n' },
  cpu: { 'cpu.max': 'max 100000\n', 'cpu.weight': '100\n' },
  io: { 'io.max': '' },
  memory: {
    'memory.max': 'max\n',
    'memory.low': '0\n',
    'memory.current': '0\n',
    'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
  },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n' },
};

/** The order in which the kernel lists controllers in cgroup.controllers and cgroup.subtree_control. */
const KERNEL_ORDER = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'];

export const FAKE_ROOT = '/sys/fs/cgroup';

export interface FakeCgroup2Options {
  /** Controllers in the root's cgroup.controllers. Default: cpuset cpu io memory pids. */
  controllers?: string[];
  /** Whether memory.swap.max exists, as with swap accounting. Default: true. */
  swap?: boolean;
  /** Interface file names whose writes fail with EINVAL, as for a value the kernel rejects. */
  rejectWrites?: string[];
  /** Runs before each mkdir in the tree, with the path below fsRoot, to simulate another program. */
  beforeMkdir?: (path: string) => void;
}

/** A fake cgroup2 tree, mounted at FAKE_ROOT below fsRoot. */
export interface FakeCgroup2 {
  fsRoot: string;
  layout: CgroupLayout;
  /** Every mkdir, write and rmdir, in order: `write /sys/fs/cgroup/x/memory.max 1024`. Paths exclude fsRoot. */
  log: string[];
  /** Creates a cgroup as if another program had, with its processes; not logged. */
  addCgroup(path: string, pids?: number[]): void;
  /** Removes an empty cgroup as if another program had; not logged. */
  removeCgroup(path: string): void;
  /** Sets a file's content, for state the kernel changes on its own (oom_kill counts, exited processes). */
  setFile(path: string, content: string): void;
  read(path: string): string;
  exists(path: string): boolean;
  /** Lists every cgroup of the tree, root first. */
  cgroups(): string[];
  dispose(): void;
}

const fakes = new Set<FakeCgroup2 & { options: Required<FakeCgroup2Options> }>();

export function createFakeCgroup2(options: FakeCgroup2Options = {}): FakeCgroup2 {
  const fsRoot = mkdtempSync(join(tmpdir(), 'm-docker-fake-cgroup2-'));
  const full = { controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'], swap: true, rejectWrites: [], beforeMkdir: () => {}, ...options };
  const real = (path: string) => join(fsRoot, path);

  const fake = {
    fsRoot,
    options: full,
    layout: { version: 2, root: FAKE_ROOT } as CgroupLayout,
    log: [] as string[],
    addCgroup(path: string, pids: number[] = []) {
      populate(real(path), full);
      writeFileSync(real(join(path, 'cgroup.procs')), pids.map((pid) => `${pid}\n`).join(''));
    },
    removeCgroup(path: string) {
      for (const file of readdirSync(real(path))) unlinkSync(join(real(path), file));
      rmdirSync(real(path));
    },
    setFile(path: string, content: string) {
      writeFileSync(real(path), content);
    },
    read: (path: string) => readFileSync(real(path), 'utf8'),
    exists: (path: string) => existsSync(real(path)),
    cgroups: () => listTree(real(FAKE_ROOT)).map((path) => path.slice(fsRoot.length)),
    dispose() {
      fakes.delete(fake);
      rmSync(fsRoot, { recursive: true, force: true });
    },
  };

  // The root cgroup: no cgroup.type, and processes of its own, which the
  // no-internal-process rule allows only there.
  mkdirSync(real(FAKE_ROOT), { recursive: true });
  writeFileSync(real(join(FAKE_ROOT, 'cgroup.controllers')), `${sortControllers(full.controllers).join(' ')}\n`);
  writeFileSync(real(join(FAKE_ROOT, 'cgroup.subtree_control')), '\n');
  writeFileSync(real(join(FAKE_ROOT, 'cgroup.procs')), '1\n');

  fakes.add(fake);
  return fake;
}

/** Wraps the real src/cgroupfs.ts so that paths inside a fake tree get the fake kernel's behaviour. */
export function fakeCgroupfs(actual: typeof Cgroupfs): typeof Cgroupfs {
  return {
    ...actual,
    mkdirCgroup(path) {
      const fake = owner(path);
      if (!fake) return actual.mkdirCgroup(path);
      fake.options.beforeMkdir(path.slice(fake.fsRoot.length));
      if (existsSync(path) && statSync(path).isDirectory()) return false;
      if (!existsSync(dirname(path))) throw errnoError('ENOENT', 'mkdir', path);

      populate(path, fake.options);
      fake.log.push(`mkdir ${path.slice(fake.fsRoot.length)}`);
      return true;
    },
    writeCgroupFile(path, value) {
      const fake = owner(path);
      if (!fake) return actual.writeCgroupFile(path, value);
      if (!existsSync(path)) throw errnoError('ENOENT', 'open', path);

      fake.log.push(`write ${path.slice(fake.fsRoot.length)} ${value}`);
      const name = path.slice(dirname(path).length + 1);
      if (fake.options.rejectWrites.includes(name)) throw errnoError('EINVAL', 'write', path);
      if (name === 'cgroup.subtree_control') return writeSubtreeControl(path, value, fake.options);
      if (name === 'cgroup.procs') return moveProcess(fake, path, value);
      writeFileSync(path, `${value}\n`);
    },
    rmdirCgroup(path) {
      const fake = owner(path);
      if (!fake) return actual.rmdirCgroup(path);
      if (!existsSync(path)) throw errnoError('ENOENT', 'rmdir', path);

      const hasChildren = readdirSync(path, { withFileTypes: true }).some((entry) => entry.isDirectory());
      if (hasChildren || readFileSync(join(path, 'cgroup.procs'), 'utf8').trim() !== '') throw errnoError('EBUSY', 'rmdir', path);
      for (const file of readdirSync(path)) unlinkSync(join(path, file));
      rmdirSync(path);
      fake.log.push(`rmdir ${path.slice(fake.fsRoot.length)}`);
    },
  };
}

function owner(path: string) {
  for (const fake of fakes) {
    if (path.startsWith(`${fake.fsRoot}/`)) return fake;
  }
  return undefined;
}

// Creates a cgroup directory with the files the kernel would: the core
// files and those of each controller that the parent enables.
function populate(path: string, options: Required<FakeCgroup2Options>): void {
  const enabled = readFileSync(join(dirname(path), 'cgroup.subtree_control'), 'utf8').split(/\s+/).filter(Boolean);
  mkdirSync(path);

  const files = { ...CORE_FILES, 'cgroup.controllers': `${enabled.join(' ')}\n`, ...controllerFiles(enabled, options) };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(path, name), content);
}

function controllerFiles(controllers: string[], options: Required<FakeCgroup2Options>): Record<string, string> {
  const files: Record<string, string> = {};
  for (const controller of controllers) Object.assign(files, CONTROLLER_FILES[controller]);
  if (controllers.includes('memory') && options.swap) files['memory.swap.max'] = 'max\n';
  return files;
}

// Applies `+name` and `-name` tokens like the kernel: each must be in
// cgroup.controllers, and a non-root cgroup with processes refuses (EBUSY).
function writeSubtreeControl(path: string, value: string, options: Required<FakeCgroup2Options>): void {
  const directory = dirname(path);
  const available = readFileSync(join(directory, 'cgroup.controllers'), 'utf8').split(/\s+/);
  const enabled = new Set(readFileSync(path, 'utf8').split(/\s+/).filter(Boolean));
  const isRoot = !existsSync(join(directory, 'cgroup.type'));
  const hasProcesses = readFileSync(join(directory, 'cgroup.procs'), 'utf8').trim() !== '';

  for (const token of value.split(' ')) {
    const name = token.slice(1);
    if (!available.includes(name) || !/^[+-]/.test(token)) throw errnoError('EINVAL', 'write', path);
    if (token.startsWith('+') && !isRoot && hasProcesses) throw errnoError('EBUSY', 'write', path);
    if (token.startsWith('+')) enabled.add(name);
    else enabled.delete(name);
  }
  writeFileSync(path, `${sortControllers([...enabled]).join(' ')}\n`);

  // Existing children get the controllers' files, as the kernel gives them.
  for (const child of readdirSync(directory, { withFileTypes: true }).filter((entry) => entry.isDirectory())) {
    const childPath = join(directory, child.name);
    writeFileSync(join(childPath, 'cgroup.controllers'), `${sortControllers([...enabled]).join(' ')}\n`);
    for (const [name, content] of Object.entries(controllerFiles([...enabled], options))) {
      if (!existsSync(join(childPath, name))) writeFileSync(join(childPath, name), content);
    }
  }
}

// A pid belongs to one cgroup, so writing it to cgroup.procs moves it.
function moveProcess(fake: FakeCgroup2, path: string, value: string): void {
  for (const cgroup of listTree(join(fake.fsRoot, FAKE_ROOT))) {
    const procs = join(cgroup, 'cgroup.procs');
    const kept = readFileSync(procs, 'utf8').split('\n').filter((pid) => pid !== '' && pid !== value);
    writeFileSync(procs, kept.map((pid) => `${pid}\n`).join(''));
  }
  writeFileSync(path, `${readFileSync(path, 'utf8')}${value}\n`);
}

function listTree(directory: string): string[] {
  const children = readdirSync(directory, { withFileTypes: true }).filter((entry) => entry.isDirectory());
  return [directory, ...children.flatMap((entry) => listTree(join(directory, entry.name)))];
}

function sortControllers(controllers: string[]): string[] {
  return [...controllers].sort((a, b) => KERNEL_ORDER.indexOf(a) - KERNEL_ORDER.indexOf(b));
}

function errnoError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const descriptions: Record<string, string> = { ENOENT: 'no such file or directory', EBUSY: 'resource busy or locked', EINVAL: 'invalid argument' };
  return Object.assign(new Error(`${code}: ${descriptions[code]}, ${syscall} '${path}'`), { code, syscall, path });
}
