import { defineConfig } from 'tsup';

// The build of every library package: one ES module entry with its .d.ts.
// The init and the CLI have entries of their own and their own configs.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  clean: true,
  sourcemap: true,
});
