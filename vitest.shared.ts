import { defineConfig } from 'vitest/config';

// The vitest settings every package shares. Each test file runs in its own
// child process (the forks pool), so a test that calls unshare(2) or
// setns(2) changes only that process's main thread.
function reportFile(runtime: string | undefined): string {
  return runtime ? `test-results-${runtime}.json` : 'test-results.json';
}

// Every `m-docker run` creates a cgroup below M_DOCKER_CGROUP_PARENT. The
// tests use a relative parent, so their cgroups sit below the cgroup that
// runs the tests in each hierarchy and never at the top of one. A relative
// parent from the caller's environment is kept, and an absolute one is
// replaced.
function testCgroupParent(inherited: string | undefined): string {
  if (inherited !== undefined && inherited !== '' && !inherited.startsWith('/')) return inherited;
  return `m-docker-test-${process.pid}`;
}

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    // The JSON report feeds the workspace summary line of `pnpm test`; a
    // suite that runs once per runtime writes one report per runtime.
    reporters: ['default', ['json', { outputFile: reportFile(process.env.M_DOCKER_JS_RUNTIME) }]],
    env: { M_DOCKER_CGROUP_PARENT: testCgroupParent(process.env.M_DOCKER_CGROUP_PARENT) },
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
