import { defineConfig } from 'tsup';

// Two builds of the package:
// - index.js, the library, imports the other workspace packages, so that a
//   bundle such as the CLI's contains one copy of @m-docker/syscalls and loads
//   glibc once. A second copy would load koffi on its first call, which
//   fails while the CLI's main thread is inside a container's root.
// - main.js is the process the CLI spawns: one file with the workspace
//   packages inlined, so that starting the init resolves no further modules
//   except koffi, whose native addon cannot be bundled.
// Neither cleans dist, because tsup builds them at the same time.
export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm'],
    target: 'node20',
    dts: { entry: { index: 'src/index.ts' } },
    clean: false,
    sourcemap: true,
    external: [/^@m-docker\//, 'koffi'],
  },
  {
    entry: { main: 'src/main.ts' },
    format: ['esm'],
    target: 'node20',
    // One file: main.js must not load a shared chunk at start.
    splitting: false,
    clean: false,
    sourcemap: true,
    noExternal: [/^@m-docker\//],
    external: ['koffi'],
  },
]);
