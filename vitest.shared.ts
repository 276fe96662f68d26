import { defineConfig } from 'vitest/config';

// The vitest settings every package shares. Each test file runs in its own
// child process (the forks pool), so a test that calls unshare(2) or
// setns(2) changes only that process's main thread.
function reportFile(runtime: string | undefined): string {
  return runtime ? `test-results-${runtime}.json` : 'test-results.json';
}

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    // The JSON report feeds the workspace summary line of `pnpm test`; a
    // suite that runs once per runtime writes one report per runtime.
    reporters: ['default', ['json', { outputFile: reportFile(process.env.M_DOCKER_JS_RUNTIME) }]],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
