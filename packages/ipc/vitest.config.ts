import { defineConfig } from 'vitest/config';

// Each test file runs in its own child process (the forks pool), so a test
// that calls unshare(2) or setns(2) changes only that process's main thread.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
