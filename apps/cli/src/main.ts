// The entry of the `m-docker` command. For `run` it spawns the container's
// init first and only then loads the rest of the CLI (cli.ts, a chunk of
// its own), so that the two start-ups overlap.
import { startInitEarly } from './run/early-init.js';

const started = performance.now();
const argv = process.argv.slice(2);
const early = startInitEarly(argv);

const { main } = await import('./cli.js');
process.exit(await main(argv, started, early));
