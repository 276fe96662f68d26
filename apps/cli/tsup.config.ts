import { defineConfig } from 'tsup';

// One file for the `m-docker` command, with the workspace packages and
// commander inlined so that start-up resolves as few modules as possible.
// koffi stays external because its native addon cannot be bundled.
export default defineConfig({
  entry: { main: 'src/main.ts' },
  format: ['esm'],
  target: 'node20',
  clean: true,
  sourcemap: true,
  noExternal: [/^@m-docker\//, 'commander'],
  external: ['koffi'],
  // commander is CommonJS: its require() calls of Node built-ins need a
  // require function inside the ES module bundle.
  banner: {
    js: "import { createRequire as createRequireForBundle } from 'node:module';\nconst require = createRequireForBundle(import.meta.url);",
  },
});
