import { defineConfig } from 'vitest/config';

// The vitest settings every package shares. Each test file runs in its own
// child process (the forks pool), so a test that calls unshare(2) or
// setns(2) changes only that process's main thread.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    // The JSON report feeds the workspace summary line of `pnpm test`.
    reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
