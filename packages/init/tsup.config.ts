import { defineConfig } from 'tsup';

// main.js is the process the CLI spawns: one file with the workspace
// packages inlined, so that starting the init resolves no further modules
// except koffi, whose native addon cannot be bundled.
export default defineConfig({
  entry: { index: 'src/index.ts', main: 'src/main.ts' },
  format: ['esm'],
  target: 'node20',
  dts: { entry: { index: 'src/index.ts' } },
  // One file per entry: main.js must not load a shared chunk at start.
  splitting: false,
  clean: true,
  sourcemap: true,
  noExternal: [/^@m-docker\//],
  external: ['koffi'],
});
