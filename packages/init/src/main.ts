// The executable entry of the container's init: the CLI spawns
// `node dist/main.js` with the socketpair at fd 3.
import { runInit } from './init.js';

runInit();
