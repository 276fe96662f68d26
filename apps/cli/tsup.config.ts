import { defineConfig } from 'tsup';

// The `m-docker` command: main.js plus chunks that main.js imports on
// demand, with the workspace packages and arg inlined so that start-up
// resolves as few modules as possible. koffi stays external because its
// native addon cannot be bundled.
export default defineConfig({
  entry: { main: 'src/main.ts' },
  format: ['esm'],
  target: 'node20',
  splitting: true,
  clean: true,
  sourcemap: true,
  noExternal: [/^@m-docker\//, 'arg'],
  external: ['koffi'],
});
