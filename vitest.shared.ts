import { defineConfig } from 'vitest/config';

// The vitest settings every package shares. Each test file runs in its own
// child process (the forks pool), so a test that calls unshare(2) or
// setns(2) changes only that process's main thread.
function reportFile(runtime: string | undefined): string {
  return runtime ? `test-results-${runtime}.json` : 'test-results.json';
}

// Every `m-docker run` creates a cgroup below M_DOCKER_CGROUP_PARENT. The
// tests use a relative parent, so their cgroups sit below the cgroup that
// runs the tests in each hierarchy and never at the top of one. Each vitest
// process gets a parent of its own, so that its teardown can remove it
// while other packages' suites still run: below a relative parent from the
// caller's environment (CI sets one), or at the test process's own cgroup.
// An absolute parent from the environment is replaced.
function testCgroupParent(inherited: string | undefined): string {
  const own = `m-docker-test-${process.pid}`;
  if (inherited !== undefined && inherited !== '' && !inherited.startsWith('/')) return `${inherited}/${own}`;
  return own;
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
