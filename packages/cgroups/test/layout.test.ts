import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CgroupError, detectLayout, ownCgroupPaths } from '../src/index.js';

// mountinfo of a pure cgroup v2 system (systemd's unified layout).
const PURE_V2 = `21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
22 21 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
27 22 0:25 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:5 - pstore pstore rw
`;

// The hybrid layout of this project's machines: v1 controllers, and an
// empty cgroup2 at /sys/fs/cgroup/unified.
const HYBRID = `23 1 0:22 / /sys rw,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

// A pure v1 system with co-mounted controllers and optional fields.
const PURE_V1 = `18 1 8:1 / / rw,relatime shared:1 - xfs /dev/sda1 rw
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
29 24 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
30 24 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
31 24 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
`;

// v1 inside a container without a cgroup namespace: each hierarchy is
// mounted from the container's cgroup.
const V1_IN_CONTAINER = `500 400 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
501 400 0:31 /docker/abc /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids
`;

const V2_TWICE = `40 30 0:40 / /run/cgroup2\\040copy rw - cgroup2 cgroup2 rw
26 22 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
`;

describe('detectLayout', () => {
  it.each([
    ['pure v2', PURE_V2, { version: 2, root: '/sys/fs/cgroup' }],
    [
      'hybrid',
      HYBRID,
      {
        version: 1,
        controllers: {
          cpu: '/sys/fs/cgroup/cpu',
          cpuacct: '/sys/fs/cgroup/cpuacct',
          cpuset: '/sys/fs/cgroup/cpuset',
          memory: '/sys/fs/cgroup/memory',
          devices: '/sys/fs/cgroup/devices',
          freezer: '/sys/fs/cgroup/freezer',
          blkio: '/sys/fs/cgroup/blkio',
          pids: '/sys/fs/cgroup/pids',
        },
      },
    ],
    [
      'pure v1',
      PURE_V1,
      {
        version: 1,
        controllers: {
          cpu: '/sys/fs/cgroup/cpu,cpuacct',
          cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
          memory: '/sys/fs/cgroup/memory',
          pids: '/sys/fs/cgroup/pids',
          net_cls: '/sys/fs/cgroup/net_cls,net_prio',
          net_prio: '/sys/fs/cgroup/net_cls,net_prio',
        },
      },
    ],
    [
      'v1 in container',
      V1_IN_CONTAINER,
      {
        version: 1,
        controllers: { memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
        mountRoots: { memory: '/docker/abc', pids: '/docker/abc' },
      },
    ],
    ['v2 mounted twice', V2_TWICE, { version: 2, root: '/sys/fs/cgroup' }],
    ['escaped mount point', '40 30 0:40 / /run/cgroup2\\040copy rw - cgroup2 cgroup2 rw\n', { version: 2, root: '/run/cgroup2 copy' }],
    ['v2 from a subtree', '40 30 0:40 /user.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n', { version: 2, root: '/sys/fs/cgroup', mountRoot: '/user.slice' }],
  ])('detects %s', (_name, mountinfo, expected) => {
    expect(detectLayout(mountinfo)).toEqual(expected);
  });

  it('rejects mountinfo without cgroups', () => {
    let error: unknown;
    try {
      detectLayout('21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n');
    } catch (caught) {
      error = caught;
    }

    expect(CgroupError.isInstance(error)).toBe(true);
    expect((error as CgroupError).code).toBe('LAYOUT_UNKNOWN');
    expect((error as Error).message).toBe(
      'no cgroup file system is mounted: /proc/self/mountinfo lists no cgroup or cgroup2 mount; mount cgroup2 on /sys/fs/cgroup',
    );
  });
});

describe('ownCgroupPaths', () => {
  it.each([
    ['pure v2', '0::/user.slice/user-1000.slice/session-2.scope\n', { '': '/user.slice/user-1000.slice/session-2.scope' }],
    [
      'hybrid',
      '9:name=systemd:/\n8:pids:/\n4:memory:/process_api/55ec\n2:cpuacct:/\n1:cpu:/\n0::/\n',
      { 'name=systemd': '/', pids: '/', memory: '/process_api/55ec', cpuacct: '/', cpu: '/', '': '/' },
    ],
    ['co-mounted', '4:cpu,cpuacct:/docker/abc\n', { cpu: '/docker/abc', cpuacct: '/docker/abc' }],
    ['colon in path', '0::/a:b\n', { '': '/a:b' }],
    ['empty text', '', {}],
  ])('reads %s', (_name, text, expected) => {
    expect(ownCgroupPaths(text)).toEqual(expected);
  });
});

describe('layout of this machine', () => {
  const isV2 = existsSync('/sys/fs/cgroup/cgroup.controllers');

  it('matches the mounted version', () => {
    expect(detectLayout().version).toBe(isV2 ? 2 : 1);
  });

  it('finds this process in each hierarchy', () => {
    const layout = detectLayout();
    const own = ownCgroupPaths();
    const directories =
      layout.version === 2
        ? [join(layout.root, own[''] ?? '')]
        : Object.entries(layout.controllers).map(([controller, mountPoint]) => join(mountPoint, own[controller] ?? ''));

    expect(directories.length).toBeGreaterThan(0);
    for (const directory of directories) {
      expect(readFileSync(join(directory, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(process.pid));
    }
  });
});
