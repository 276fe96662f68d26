// The commands that `pnpm bench` times, and the differences of medians that
// split a start-up into parts.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Returns the label of a combination's latency row: `m-docker run /bin/true [CLI bun, init bun]`. */
export function runLabel(tag) {
  return `m-docker run /bin/true [${tag}]`;
}

/** Returns the label of the debug runs that feed a combination's timeline. */
export function debugLabel(tag) {
  return `./m-docker --debug run /bin/true [${tag}]`;
}

export const NODE_REFERENCE = 'node -e 0';
export const BUN_REFERENCE = 'bun -e 0';
export const UNSHARE_LABEL = 'unshare --uts --pid --mount --net --ipc --fork --mount-proc /bin/true';
export const RUNC_LABEL = 'runc run /bin/true (busybox bundle)';

const versionLabel = (tag) => `./m-docker --version [${tag}]`;
const directLabel = (runtime, tag) => `${runtime} apps/cli/dist/main.js --version [${tag}]`;
const ffiLabel = (runtime) => `${runtime}: import @m-docker/syscalls, loadLibc()`;

// Run inside node or bun: times the import of the built syscalls package and
// its loadLibc(), which opens libc.so.6 through the runtime's FFI (koffi and
// its native addon under Node, bun:ffi under Bun) and declares the functions.
// Prints the two times as JSON on stderr.
function ffiLoadScript(entryUrl) {
  return [
    'const beforeImport = performance.now();',
    `const syscalls = await import(${JSON.stringify(entryUrl)});`,
    'const beforeLoad = performance.now();',
    'syscalls.loadLibc();',
    'const loaded = performance.now();',
    'process.stderr.write(JSON.stringify({ importMs: beforeLoad - beforeImport, loadLibcMs: loaded - beforeLoad }));',
  ].join(' ');
}

/**
 * Builds the measured commands, all timed in the same interleaved rounds.
 * `main` are the rows of the latency table, which are also measured for
 * peak RSS, and for the CLI and the init apart where `splitMemory` is set.
 * `components` are the start-up parts. `debug` are the `--debug` runs whose
 * stderr feeds the timelines; `onDebugRun(key, run)` receives each of them. `onFfiRun(runtime, run)` receives each run of the
 * in-process FFI timing. `breakdowns` are the differences of medians.
 */
export function buildBenchmarks({ root, launcher, runArgs, combinations, nodePath, bun, bunFlags, runc, workDir, startupVariables, onDebugRun, onFfiRun }) {
  const main = [];
  const components = [{ label: "/bin/true (this script's own spawn cost)", argv: () => ['/bin/true'] }];
  const debug = [];
  const breakdowns = [];
  const without = startupVariables ? `, ${startupVariables.suffix}` : '';

  for (const combination of combinations) {
    main.push({ label: runLabel(combination.tag), argv: () => [launcher, ...runArgs], cwd: root, env: combination.env, splitMemory: true });
  }
  // The same runs with the Node start-up variables unset. The init starts
  // with an empty environment either way, so only the CLI can change.
  if (startupVariables) {
    for (const combination of combinations) {
      const env = startupVariables.strip(combination.env);
      main.push({ label: runLabel(`${combination.tag}${without}`), argv: () => [launcher, ...runArgs], cwd: root, env, splitMemory: true });
    }
  }
  if (runc.available) main.push({ label: RUNC_LABEL, argv: runc.argv });
  main.push({ label: UNSHARE_LABEL, argv: () => ['unshare', '--uts', '--pid', '--mount', '--net', '--ipc', '--fork', '--mount-proc', '/bin/true'] });
  // The references run in an empty directory, so no project file is read.
  main.push({ label: NODE_REFERENCE, argv: () => [nodePath, '-e', '0'], cwd: workDir });
  if (startupVariables) {
    main.push({ label: `${NODE_REFERENCE} [${startupVariables.suffix}]`, argv: () => [nodePath, '-e', '0'], cwd: workDir, env: startupVariables.strip(process.env) });
  }
  if (bun.path) main.push({ label: BUN_REFERENCE, argv: () => [bun.path, '-e', '0'], cwd: workDir });

  for (const combination of combinations) {
    components.push({ label: versionLabel(combination.tag), argv: () => [launcher, '--version'], cwd: root, env: combination.env });
  }
  // The CLI started without the sh launcher, once per CLI runtime, in the
  // combination whose init runs on the same runtime.
  const direct = [];
  for (const combination of combinations.filter((entry) => entry.cli === entry.init)) {
    const runtimePath = combination.cli === 'bun' ? bun.path : nodePath;
    if (!runtimePath) continue;
    const argv = combination.cli === 'bun' ? [runtimePath, ...bunFlags, 'apps/cli/dist/main.js', '--version'] : [runtimePath, '--', 'apps/cli/dist/main.js', '--version'];
    components.push({ label: directLabel(combination.cli, combination.tag), argv: () => argv, cwd: root, env: combination.env });
    direct.push(combination);
  }
  const ffiScript = ffiLoadScript(pathToFileURL(join(root, 'packages/syscalls/dist/index.js')).href);
  const ffiRuns = [{ runtime: 'node', argv: [nodePath, '--input-type=module', '-e', ffiScript] }];
  if (bun.path) ffiRuns.push({ runtime: 'bun', argv: [bun.path, ...bunFlags, '-e', ffiScript] });
  for (const { runtime, argv } of ffiRuns) {
    components.push({ label: ffiLabel(runtime), argv: () => argv, cwd: workDir, onRun: (run) => onFfiRun(runtime, run) });
  }

  for (const combination of combinations) {
    const runs = [{ key: combination.tag, env: combination.env }];
    if (startupVariables && combination.cli === 'node') runs.push({ key: `${combination.tag}${without}`, env: startupVariables.strip(combination.env) });
    for (const { key, env } of runs) {
      debug.push({ label: debugLabel(key), argv: () => [launcher, '--debug', ...runArgs], cwd: root, env, onRun: (run) => onDebugRun(key, run) });
    }
  }

  for (const combination of combinations) {
    const { cli, tag } = combination;
    const group = `[${tag}]`;
    if (direct.includes(combination)) {
      const reference = cli === 'bun' ? BUN_REFERENCE : NODE_REFERENCE;
      breakdowns.push(
        { group, title: 'CLI module loading and option parsing', formula: `main.js --version - ${reference}`, minuend: directLabel(cli, tag), subtrahend: reference },
        { group, title: 'sh launcher (runtime search)', formula: './m-docker --version - main.js --version', minuend: versionLabel(tag), subtrahend: directLabel(cli, tag) },
      );
    }
    breakdowns.push({ group, title: 'run beyond the CLI start-up', formula: 'm-docker run - ./m-docker --version', minuend: runLabel(tag), subtrahend: versionLabel(tag) });
  }
  return { main, components, debug, breakdowns };
}
