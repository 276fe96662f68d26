// The commands that `pnpm bench` times, and the differences of medians that
// split a start-up into parts.
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** The latency row of `m-docker run` for a combination: `m-docker run /bin/true [CLI bun, init bun]`. */
export function runLabel(tag) {
  return `m-docker run /bin/true [${tag}]`;
}

/** The debug-run row that feeds a combination's timeline. */
export function debugLabel(tag) {
  return `./m-docker --debug run /bin/true [${tag}]`;
}

export const NODE_REFERENCE = 'node -e 0';
export const BUN_REFERENCE = 'bun -e 0';
export const UNSHARE_LABEL = 'unshare --uts --pid --mount --net --ipc --fork --mount-proc /bin/true';
export const RUNC_LABEL = 'runc run /bin/true (busybox bundle)';

const versionLabel = (tag) => `./m-docker --version [${tag}]`;
const directLabel = (runtime, tag) => `${runtime} apps/cli/dist/main.js --version [${tag}]`;
const KOFFI_LABEL = 'node -e "require(koffi)"';

// koffi is the FFI library that the syscalls package loads under Node (Bun
// uses bun:ffi). Returns its entry file, or undefined when it is not installed.
function resolveKoffi(root) {
  try {
    return createRequire(join(root, 'packages/syscalls/package.json')).resolve('koffi');
  } catch {
    return undefined;
  }
}

/**
 * Builds the measured commands, all timed in the same interleaved rounds.
 * `main` are the rows of the latency table, which are also measured for
 * peak RSS, and for the CLI and the init apart where `splitMemory` is set. `components` are the start-up parts. `debug` are the
 * `--debug` runs whose stderr feeds the timelines; `onDebugRun(key, run)`
 * receives each of them. `breakdowns` are the differences of medians.
 */
export function buildBenchmarks({ root, launcher, runArgs, combinations, nodePath, bun, bunFlags, runc, workDir, startupVariables, onDebugRun }) {
  const main = [];
  const components = [{ label: "/bin/true (this script's own spawn cost)", argv: () => ['/bin/true'] }];
  const debug = [];
  const breakdowns = [];
  const without = startupVariables ? `, ${startupVariables.suffix}` : '';

  // `splitMemory` marks the rows whose CLI and init are measured apart.
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
  const koffi = resolveKoffi(root);
  if (koffi) {
    components.push({ label: KOFFI_LABEL, argv: () => [nodePath, '-e', `require(${JSON.stringify(koffi)})`], cwd: workDir });
    breakdowns.push({ group: '[node]', title: 'koffi and its native addon', formula: 'require(koffi) - node -e 0', minuend: KOFFI_LABEL, subtrahend: NODE_REFERENCE });
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
        { group, title: 'sh launcher (runtime search, readlink)', formula: './m-docker --version - main.js --version', minuend: versionLabel(tag), subtrahend: directLabel(cli, tag) },
      );
    }
    breakdowns.push({ group, title: 'run beyond the CLI start-up', formula: 'm-docker run - ./m-docker --version', minuend: runLabel(tag), subtrahend: versionLabel(tag) });
  }
  return { main, components, debug, breakdowns };
}
