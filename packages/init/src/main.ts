// The executable entry of the container's init: the CLI spawns
// `node dist/main.js` or `bun dist/main.js` with the socketpair at fd 3.
import { loadLibc } from '@m-docker/syscalls';

import { runInit } from './init.js';

// Loading the foreign function interface (koffi's native addon under Node)
// is module loading: it happens here, before the init's own work is timed.
// A failure is left to runInit, whose first system call raises it again and
// reports it to the CLI through node:fs.
try {
  loadLibc();
} catch {
  // Reported by runInit.
}
runInit();
