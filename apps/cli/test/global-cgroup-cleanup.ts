import { removeStaleCgroups } from '@m-docker/cgroups';
import type { TestProject } from 'vitest/node';

import { isCliAlive } from '../src/run/container-cgroup.js';
import { cgroupsBelow, LAYOUT, removeParentDirectories } from './cgroup-helpers.js';

// After the whole suite: removes the cgroups that CLIs killed by a test
// left below the suite's cgroup parent, as the next `m-docker run` would,
// then the parent itself. Anything still there afterwards is reported as an
// error, because it means a run left a cgroup with processes or children.

/** vitest's global setup: returns the teardown. */
export default function setup(project: TestProject): () => void {
  const parent = project.config.env.M_DOCKER_CGROUP_PARENT;
  return () => {
    if (process.getuid?.() !== 0 || LAYOUT === undefined || parent === undefined || parent.startsWith('/')) return;

    removeStaleCgroups({ parent, isAlive: isCliAlive });
    // Only the last segment belongs to this vitest process; the ones before
    // it may come from the caller's environment and hold other suites.
    const left = [...cgroupsBelow(parent), ...removeParentDirectories(parent, parent.split('/').length - 1)];
    if (left.length > 0) {
      throw new Error(`the tests left cgroups below the parent ${parent}:\n${left.join('\n')}`);
    }
  };
}
