import { defineConfig } from 'tsup';

import library from '../../tsup.library.js';

// Two entries: the whole package, and `lookup`, which `run --image` loads
// without the import code and its dependencies.
export default defineConfig({
  ...(library as object),
  entry: ['src/index.ts', 'src/lookup.ts'],
});
