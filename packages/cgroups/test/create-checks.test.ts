import { describe, expect, it } from 'vitest';
import { type CgroupLayout, CgroupError, type CgroupOptions, createCgroup } from '../src/index.js';

// Checks that createCgroup makes before it touches cgroupfs. The mount
// points do not exist, so a check that let a case through would fail on
// mkdir(2) with ENOENT instead of the expected error.

const MISSING = '/nonexistent/m-docker-cgroups-test';

function catchError(options: CgroupOptions): CgroupError {
  try {
    createCgroup(options);
  } catch (error) {
    if (CgroupError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a CgroupError');
}

describe('createCgroup checks', () => {
  it.each([
    ['memory', { memory: 32 * 1024 * 1024 }, '--memory'],
    ['pids', { pidsLimit: 10 }, '--pids-limit'],
    ['cpu', { cpuShares: 512 }, '--cpu-shares'],
    ['cpuset', { cpusetMems: '0' }, '--cpuset-mems'],
  ])('rejects missing v1 %s controller', (controller, limits, option) => {
    const layout: CgroupLayout = { version: 1, controllers: { devices: `${MISSING}/devices` } };

    const error = catchError({ id: 'c1', parent: '/m-docker', limits, layout });

    expect(error.code).toBe('CONTROLLER_MISSING');
    expect(error.message).toBe(`${option} needs the ${controller} controller, which is not mounted: no cgroup v1 hierarchy in /proc/self/mountinfo lists it`);
    expect(error.option).toBe(option);
  });

  it('rejects a parent outside the mount', () => {
    const layout: CgroupLayout = { version: 1, controllers: { memory: `${MISSING}/memory` }, mountRoots: { memory: '/docker/abc' } };

    const error = catchError({ id: 'c1', parent: '/m-docker', limits: {}, layout });

    expect(error.code).toBe('LAYOUT_UNKNOWN');
    expect(error.message).toBe(
      `cgroup /m-docker is not visible: the memory hierarchy is mounted on ${MISSING}/memory from /docker/abc; use a relative --cgroup-parent`,
    );
  });

  it('rejects a relative parent without own cgroup', () => {
    const layout: CgroupLayout = { version: 1, controllers: { pids: `${MISSING}/pids` } };

    const error = catchError({ id: 'c1', parent: 'm-docker', limits: {}, layout, ownPaths: { memory: '/' } });

    expect(error.code).toBe('LAYOUT_UNKNOWN');
    expect(error.message).toBe('/proc/self/cgroup has no entry for the pids hierarchy, so the relative parent "m-docker" cannot be resolved');
  });

  it('rejects invalid limits first', () => {
    const layout: CgroupLayout = { version: 2, root: MISSING };

    const error = catchError({ id: 'c1', parent: '/m-docker', limits: { memory: 1024 }, layout });

    expect(error.code).toBe('INVALID_VALUE');
    expect(error.message).toBe('invalid value "1024" for --memory: the minimum is 6291456 bytes (6m)');
  });

  it('reports an unreadable v2 root', () => {
    const layout: CgroupLayout = { version: 2, root: MISSING };

    const error = catchError({ id: 'c1', parent: '/m-docker', limits: {}, layout });

    expect(error.code).toBe('LAYOUT_UNKNOWN');
    expect(error.message).toBe(`reading ${MISSING}/cgroup.controllers failed: ENOENT (no such file or directory)`);
  });
});
