import { defineConfig, mergeConfig } from 'vitest/config';

import shared from '../../vitest.shared.js';

// The end-to-end tests run containers, and each creates a cgroup. The global
// setup removes what killed CLIs left behind and checks that nothing else is.
export default mergeConfig(shared, defineConfig({ test: { globalSetup: ['test/global-cgroup-cleanup.ts'] } }));
