import { defineConfig } from 'tsup';

import library from '../../tsup.library.js';

// A second entry, `@m-docker/cgroups/migration-warm-up`, for the CLI's start
// path: it runs before the CLI loads the rest of this package, and it must
// not import node:fs, node:path or node:os at load time. The code both
// entries share goes into a chunk of its own.
export default defineConfig({
  ...library,
  entry: { index: 'src/index.ts', 'migration-warm-up': 'src/migration-warm-up.ts' },
});
