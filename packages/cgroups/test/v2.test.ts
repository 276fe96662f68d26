import { afterEach, describe, expect, it, vi } from 'vitest';
import { CgroupError, type ContainerCgroup, createCgroup, type ResourceLimits, removeStaleCgroups } from '../src/index.js';
import { createFakeCgroup2, FAKE_ROOT, type FakeCgroup2, type FakeCgroup2Options } from './fake-cgroup2.js';

// The v2 code paths against a fake cgroup2 tree; see fake-cgroup2.ts for
// what the fake does like the kernel.
vi.mock('../src/cgroupfs.js', async (importOriginal) => {
  const { fakeCgroupfs } = await import('./fake-cgroup2.js');
  return fakeCgroupfs(await importOriginal());
});

const MIB = 1024 * 1024;
const FULL_LIMITS: ResourceLimits = {
  memory: 32 * MIB,
  memorySwap: 64 * MIB,
  memoryReservation: 16 * MIB,
  cpuQuota: 50_000,
  cpuPeriod: 100_000,
  cpuShares: 1024,
  cpusetCpus: '0-1',
  cpusetMems: '0',
  pidsLimit: 10,
};

let fake: FakeCgroup2 | undefined;
const cgroups: ContainerCgroup[] = [];

function setUp(options: FakeCgroup2Options = {}): FakeCgroup2 {
  fake = createFakeCgroup2(options);
  return fake;
}

function create(id: string, parent: string, limits: ResourceLimits, extra: { ownPaths?: Record<string, string> } = {}): ContainerCgroup {
  if (!fake) throw new Error('setUp() first');
  const cgroup = createCgroup({ id, parent, limits, layout: fake.layout, fsRoot: fake.fsRoot, ...extra });
  cgroups.push(cgroup);
  return cgroup;
}

function catchError(action: () => unknown): CgroupError {
  try {
    action();
  } catch (error) {
    if (CgroupError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a CgroupError');
}

afterEach(() => {
  for (const cgroup of cgroups.splice(0).reverse()) {
    try {
      cgroup.remove();
    } catch {
      // The temporary tree is deleted below in any case.
    }
  }
  fake?.dispose();
  fake = undefined;
});

describe('createCgroup on v2', () => {
  it('creates the chain and writes every limit', () => {
    const tree = setUp();
    const cgroup = create('c1', '/m-docker', FULL_LIMITS);
    const leaf = `${FAKE_ROOT}/m-docker/c1`;

    expect(cgroup.paths).toEqual({ '': `${tree.fsRoot}${leaf}` });
    expect(tree.log).toEqual([
      `write ${FAKE_ROOT}/cgroup.subtree_control +memory +pids +cpu +cpuset`,
      `mkdir ${FAKE_ROOT}/m-docker`,
      `write ${FAKE_ROOT}/m-docker/cgroup.subtree_control +memory +pids +cpu +cpuset`,
      `mkdir ${leaf}`,
      `write ${leaf}/memory.max 33554432`,
      `write ${leaf}/memory.swap.max 33554432`,
      `write ${leaf}/memory.low 16777216`,
      `write ${leaf}/cpu.max 50000 100000`,
      `write ${leaf}/cpu.weight 39`,
      `write ${leaf}/cpuset.cpus 0-1`,
      `write ${leaf}/cpuset.mems 0`,
      `write ${leaf}/pids.max 10`,
    ]);
  });

  it.each([
    ['memory.max', '33554432\n'],
    ['memory.swap.max', '33554432\n'],
    ['memory.low', '16777216\n'],
    ['cpu.max', '50000 100000\n'],
    ['cpu.weight', '39\n'],
    ['cpuset.cpus', '0-1\n'],
    ['cpuset.mems', '0\n'],
    ['pids.max', '10\n'],
    ['cgroup.controllers', 'cpuset cpu memory pids\n'],
  ])('leaves %s as %j', (file, content) => {
    const tree = setUp();
    create('c1', '/m-docker', FULL_LIMITS);

    expect(tree.read(`${FAKE_ROOT}/m-docker/c1/${file}`)).toBe(content);
  });

  it.each([
    ['docker default swap', { memory: 8 * MIB }, ['memory.max 8388608', 'memory.swap.max 8388608']],
    ['unlimited swap', { memory: 8 * MIB, memorySwap: -1 }, ['memory.max 8388608', 'memory.swap.max max']],
    ['swap equal to memory', { memory: 8 * MIB, memorySwap: 8 * MIB }, ['memory.max 8388608', 'memory.swap.max 0']],
    ['period only', { cpuPeriod: 50_000 }, ['cpu.max max 50000']],
    ['quota only', { cpuQuota: 20_000 }, ['cpu.max 20000 100000']],
    ['no quota', { cpuQuota: -1, cpuPeriod: 10_000 }, ['cpu.max max 10000']],
    ['minimum shares', { cpuShares: 2 }, ['cpu.weight 1']],
    ['maximum shares', { cpuShares: 262_144 }, ['cpu.weight 10000']],
    ['unlimited pids', { pidsLimit: -1 }, ['pids.max max']],
    ['zero means unset', { memory: 0, pidsLimit: 0, cpuShares: 0 }, []],
  ] as Array<[string, ResourceLimits, string[]]>)('converts %s', (_name, limits, expected) => {
    const tree = setUp();
    create('c1', '/m-docker', limits);

    const prefix = `write ${FAKE_ROOT}/m-docker/c1/`;
    const writes = tree.log.filter((line) => line.startsWith(prefix)).map((line) => line.slice(prefix.length));
    expect(writes).toEqual(expected);
  });

  it('enables only controllers not yet enabled', () => {
    const tree = setUp();
    tree.setFile(`${FAKE_ROOT}/cgroup.subtree_control`, 'memory pids\n');
    tree.addCgroup('/sys/fs/cgroup/m-docker');
    tree.setFile(`${FAKE_ROOT}/m-docker/cgroup.subtree_control`, 'memory pids\n');
    create('c1', '/m-docker', { cpuShares: 512 });

    expect(tree.log.filter((line) => line.includes('subtree_control'))).toEqual([
      `write ${FAKE_ROOT}/cgroup.subtree_control +cpu`,
      `write ${FAKE_ROOT}/m-docker/cgroup.subtree_control +cpu`,
    ]);
    expect(tree.read(`${FAKE_ROOT}/m-docker/cgroup.subtree_control`)).toBe('cpu memory pids\n');
  });

  it('skips missing unused controllers', () => {
    const tree = setUp({ controllers: ['memory'] });
    create('c1', '/m-docker', { memory: 8 * MIB });

    expect(tree.log[0]).toBe(`write ${FAKE_ROOT}/cgroup.subtree_control +memory`);
  });

  it('recreates a parent removed meanwhile', () => {
    let removedOnce = false;
    const tree = setUp({
      beforeMkdir: (path) => {
        if (path !== `${FAKE_ROOT}/m-docker/c1` || removedOnce) return;
        removedOnce = true;
        tree.removeCgroup(`${FAKE_ROOT}/m-docker`);
      },
    });
    tree.addCgroup(`${FAKE_ROOT}/m-docker`);
    const cgroup = create('c1', '/m-docker', { pidsLimit: 5 });

    expect(tree.log.filter((line) => line.startsWith('mkdir'))).toEqual([`mkdir ${FAKE_ROOT}/m-docker`, `mkdir ${FAKE_ROOT}/m-docker/c1`]);
    expect(tree.read(`${FAKE_ROOT}/m-docker/c1/pids.max`)).toBe('5\n');

    cgroup.remove();
    expect(tree.cgroups()).toEqual([FAKE_ROOT]);
  });

  it('resolves a relative parent below the own cgroup', () => {
    const tree = setUp();
    create('c1', 'nested/m-docker', { pidsLimit: 5 }, { ownPaths: { '': '/' } });

    expect(tree.exists(`${FAKE_ROOT}/nested/m-docker/c1/pids.max`)).toBe(true);
    expect(tree.read(`${FAKE_ROOT}/nested/m-docker/c1/pids.max`)).toBe('5\n');
  });
});

describe('createCgroup errors on v2', () => {
  it('rejects a parent with processes', () => {
    const tree = setUp();
    tree.addCgroup(`${FAKE_ROOT}/user.slice`);
    tree.setFile(`${FAKE_ROOT}/user.slice/cgroup.subtree_control`, 'memory pids\n');
    tree.addCgroup(`${FAKE_ROOT}/user.slice/app`, [4242, 4243]);
    const before = tree.cgroups();

    const error = catchError(() => create('c1', 'm-docker', { memory: 8 * MIB }, { ownPaths: { '': '/user.slice/app' } }));

    expect(error.code).toBe('INTERNAL_PROCESS');
    expect(error.message).toBe(
      `cannot enable memory, pids in ${tree.fsRoot}${FAKE_ROOT}/user.slice/app/cgroup.subtree_control: the cgroup contains processes (pids 4242, 4243). ` +
        'cgroup v2 enables controllers for the children of a non-root cgroup only while it has no processes of its own. ' +
        'Use a --cgroup-parent whose cgroups contain no processes, or move those processes into a child cgroup first.',
    );
    expect(tree.log).toEqual([]);
    expect(tree.cgroups()).toEqual(before);
  });

  it('rejects an absolute parent with processes', () => {
    const tree = setUp();
    tree.addCgroup(`${FAKE_ROOT}/m-docker`, [77]);

    const error = catchError(() => create('c1', '/m-docker', { pidsLimit: 5 }));

    expect(error.code).toBe('INTERNAL_PROCESS');
    expect(error.path).toBe(`${tree.fsRoot}${FAKE_ROOT}/m-docker/cgroup.subtree_control`);
    expect(tree.exists(`${FAKE_ROOT}/m-docker/c1`)).toBe(false);
  });

  it.each([
    ['cpu', { cpuQuota: 50_000 }, '--cpu-quota', '50000'],
    ['cpuset', { cpusetCpus: '0' }, '--cpuset-cpus', '0'],
    ['memory', { memoryReservation: 8 * MIB }, '--memory-reservation', '8388608'],
    ['pids', { pidsLimit: 3 }, '--pids-limit', '3'],
  ] as Array<[string, ResourceLimits, string, string]>)('rejects missing %s controller', (controller, limits, option, value) => {
    const tree = setUp({ controllers: ['io'] });

    const error = catchError(() => create('c1', '/m-docker', limits));

    expect(error.code).toBe('CONTROLLER_MISSING');
    expect(error.message).toBe(`${option} needs the ${controller} controller, which is not in ${tree.fsRoot}${FAKE_ROOT}/cgroup.controllers`);
    expect(error.option).toBe(option);
    expect(error.value).toBe(value);
    expect(tree.log).toEqual([]);
  });

  it('rejects explicit swap without swap accounting', () => {
    const tree = setUp({ swap: false });

    const error = catchError(() => create('c1', '/m-docker', { memory: 8 * MIB, memorySwap: 16 * MIB }));

    expect(error.code).toBe('CONTROLLER_MISSING');
    expect(error.message).toBe(
      `--memory-swap needs memory.swap.max, which does not exist in ${tree.fsRoot}${FAKE_ROOT}/m-docker/c1/memory.swap.max: ` +
        'the kernel has no swap accounting (memory.swap.max exists only with CONFIG_MEMCG_SWAP and without swapaccount=0); omit --memory-swap',
    );
    expect(tree.cgroups()).toEqual([`${FAKE_ROOT}`]);
  });

  it('skips default swap without swap accounting', () => {
    const tree = setUp({ swap: false });
    create('c1', '/m-docker', { memory: 8 * MIB });

    expect(tree.read(`${FAKE_ROOT}/m-docker/c1/memory.max`)).toBe('8388608\n');
    expect(tree.exists(`${FAKE_ROOT}/m-docker/c1/memory.swap.max`)).toBe(false);
  });

  it('removes what it created on a failed write', () => {
    const tree = setUp({ rejectWrites: ['cpuset.cpus'] });

    const error = catchError(() => create('c1', '/a/b', { cpusetCpus: '0-3', pidsLimit: 4 }));

    const file = `${tree.fsRoot}${FAKE_ROOT}/a/b/c1/cpuset.cpus`;
    expect(error.code).toBe('WRITE_FAILED');
    expect(error.message).toBe(`writing "0-3" to ${file} for --cpuset-cpus failed: EINVAL (invalid argument)`);
    expect(error.path).toBe(file);
    expect(error.value).toBe('0-3');
    expect(tree.log.filter((line) => line.startsWith('rmdir'))).toEqual([
      `rmdir ${FAKE_ROOT}/a/b/c1`,
      `rmdir ${FAKE_ROOT}/a/b`,
      `rmdir ${FAKE_ROOT}/a`,
    ]);
    expect(tree.cgroups()).toEqual([FAKE_ROOT]);
  });

  it('rejects an existing container cgroup', () => {
    const tree = setUp();
    tree.addCgroup(`${FAKE_ROOT}/m-docker`);
    tree.addCgroup(`${FAKE_ROOT}/m-docker/c1`);

    const error = catchError(() => create('c1', '/m-docker', {}));

    expect(error.code).toBe('ALREADY_EXISTS');
    expect(error.message).toBe(`cgroup ${tree.fsRoot}${FAKE_ROOT}/m-docker/c1 exists already: another container may use it; remove it if it is a leftover`);
    expect(tree.exists(`${FAKE_ROOT}/m-docker/c1`)).toBe(true);
  });

  it.each([
    ['../escape', '--cgroup-parent', 'expected a path without "." or ".." components, such as /m-docker or m-docker'],
    ['/m-docker/./x', '--cgroup-parent', 'expected a path without "." or ".." components, such as /m-docker or m-docker'],
  ])('rejects parent %s', (parent, option, reason) => {
    setUp();
    const error = catchError(() => create('c1', parent, {}));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe(`invalid value "${parent}" for ${option}: ${reason}`);
  });

  it.each(['a/b', '..', '', '-x'])('rejects container id %j', (id) => {
    setUp();
    const error = catchError(() => create(id, '/m-docker', {}));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe(`invalid value "${id}" for container id: expected letters, digits, "_", "." or "-", starting with a letter or digit`);
  });
});

describe('ContainerCgroup on v2', () => {
  it('adds a process to cgroup.procs', () => {
    const tree = setUp();
    tree.setFile(`${FAKE_ROOT}/cgroup.procs`, '1\n4242\n');
    const cgroup = create('c1', '/m-docker', {});

    cgroup.addProcess(4242);

    expect(tree.read(`${FAKE_ROOT}/m-docker/c1/cgroup.procs`)).toBe('4242\n');
    expect(tree.read(`${FAKE_ROOT}/cgroup.procs`)).toBe('1\n');
  });

  it('rejects an invalid pid', () => {
    setUp();
    const cgroup = create('c1', '/m-docker', {});

    const error = catchError(() => cgroup.addProcess(0));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe('invalid value "0" for pid: expected a positive process id');
  });

  it.each([
    ['no kill', 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\noom_group_kill 0\n', false],
    ['one kill', 'low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\noom_group_kill 0\n', true],
  ])('reads oomKilled with %s', (_name, events, expected) => {
    const tree = setUp();
    const cgroup = create('c1', '/m-docker', { memory: 8 * MIB });
    tree.setFile(`${FAKE_ROOT}/m-docker/c1/memory.events`, events);

    expect(cgroup.oomKilled()).toBe(expected);
  });

  it('reports no OOM kill without memory controller', () => {
    setUp({ controllers: ['pids'] });
    const cgroup = create('c1', '/m-docker', {});

    expect(cgroup.oomKilled()).toBe(false);
  });

  it('removes created directories idempotently', () => {
    const tree = setUp();
    const cgroup = create('c1', '/m-docker', {});

    cgroup.remove();
    cgroup.remove();

    expect(tree.log.filter((line) => line.startsWith('rmdir'))).toEqual([`rmdir ${FAKE_ROOT}/m-docker/c1`, `rmdir ${FAKE_ROOT}/m-docker`]);
    expect(tree.cgroups()).toEqual([FAKE_ROOT]);
  });

  it('keeps a parent it did not create', () => {
    const tree = setUp();
    tree.addCgroup(`${FAKE_ROOT}/m-docker`);
    create('c1', '/m-docker', {}).remove();

    expect(tree.cgroups()).toEqual([FAKE_ROOT, `${FAKE_ROOT}/m-docker`]);
  });

  it('keeps a parent another container uses', () => {
    const tree = setUp();
    const first = create('c1', '/m-docker', {});
    create('c2', '/m-docker', {});

    first.remove();

    expect(tree.cgroups()).toEqual([FAKE_ROOT, `${FAKE_ROOT}/m-docker`, `${FAKE_ROOT}/m-docker/c2`]);
  });

  it('fails to remove a cgroup with processes', () => {
    const tree = setUp();
    const cgroup = create('c1', '/m-docker', {});
    cgroup.addProcess(4242);

    const error = catchError(() => cgroup.remove());

    const leaf = `${tree.fsRoot}${FAKE_ROOT}/m-docker/c1`;
    expect(error.code).toBe('REMOVE_FAILED');
    expect(error.message).toBe(`removing cgroup ${leaf} failed: EBUSY (resource busy or locked): processes 4242 are still in it; end them first`);
    expect(error.path).toBe(leaf);

    tree.setFile(`${FAKE_ROOT}/m-docker/c1/cgroup.procs`, '');
    cgroup.remove();
    expect(tree.cgroups()).toEqual([FAKE_ROOT]);
  });
});

describe('removeStaleCgroups on v2', () => {
  it('removes only dead, empty cgroups', () => {
    const tree = setUp();
    tree.addCgroup(`${FAKE_ROOT}/m-docker`);
    tree.addCgroup(`${FAKE_ROOT}/m-docker/dead`);
    tree.addCgroup(`${FAKE_ROOT}/m-docker/alive`);
    tree.addCgroup(`${FAKE_ROOT}/m-docker/busy`, [99]);
    tree.addCgroup(`${FAKE_ROOT}/m-docker/nested`);
    tree.addCgroup(`${FAKE_ROOT}/m-docker/nested/child`);

    const removed = removeStaleCgroups({ parent: '/m-docker', isAlive: (id) => id === 'alive', layout: tree.layout, fsRoot: tree.fsRoot });

    expect(removed).toEqual([`${tree.fsRoot}${FAKE_ROOT}/m-docker/dead`]);
    expect(tree.exists(`${FAKE_ROOT}/m-docker/alive`)).toBe(true);
    expect(tree.exists(`${FAKE_ROOT}/m-docker/busy`)).toBe(true);
    expect(tree.exists(`${FAKE_ROOT}/m-docker/nested/child`)).toBe(true);
  });

  it('returns nothing for a missing parent', () => {
    const tree = setUp();
    expect(removeStaleCgroups({ parent: '/m-docker', isAlive: () => false, layout: tree.layout, fsRoot: tree.fsRoot })).toEqual([]);
  });

  it('rejects the hierarchy root as parent', () => {
    const tree = setUp();
    const error = catchError(() => removeStaleCgroups({ parent: '/', isAlive: () => false, layout: tree.layout, fsRoot: tree.fsRoot }));

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe(
      'invalid value "/" for --cgroup-parent: removeStaleCgroups needs a parent below the hierarchy root or the own cgroup, such as /m-docker',
    );
  });
});
