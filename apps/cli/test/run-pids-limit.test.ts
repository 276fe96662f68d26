import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeStaleCgroups } from '@m-docker/cgroups';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { buildTestImages } from '../../../scripts/test-images/build-test-images.mjs';
import { isCliAlive } from '../src/run/container-cgroup.js';
import { cgroupsBelow, LAYOUT, removeParentDirectories, suiteParent } from './cgroup-helpers.js';
import { HAS_BUSYBOX, killStartedCli, makeTempDir, NOT_ROOT, runCli } from './helpers.js';

// `m-docker run --pids-limit N` with limits below the thread count of the
// init's runtime. The init writes pids.max as its last step before execve,
// so the runtime's threads never meet the limit, and COMMAND does from its
// first instruction on. Each case runs under both runtimes, whatever the
// suite's run forces: Bun starts threads while the init runs, and aborts
// when the kernel refuses one, and Node starts its threads at start-up.

const CAN_RUN = !NOT_ROOT && HAS_BUSYBOX && LAYOUT !== undefined;
const SKIP_REASON = 'needs root, /bin/busybox and a cgroup file system';
const PARENT = `${suiteParent()}/run-pids-limit-${process.pid}`;
const SUITE_DEPTH = suiteParent().split('/').length;
const RUNTIMES = ['bun', 'node'] as const;
const FORK_FAILED = "sh: can't fork: Resource temporarily unavailable\n";

// Where the pids controller is mounted and the line of /proc/self/cgroup
// that names its cgroup. A hierarchy mounted from below its root (inside
// another container) would need the mount's root removed from the path,
// so that case is left out.
const PIDS_MOUNT = pidsMountPoint();
const CGROUP_LINE = LAYOUT?.version === 2 ? '^0::' : ':pids:';

let base: { path: string; remove: () => void } | undefined;
let store = '';

beforeAll(async () => {
  if (!CAN_RUN) return;
  base = makeTempDir('pids-limit');
  const images = await buildTestImages(join(base.path, 'images'));
  store = join(base.path, 'store');
  const imported = await runCli(['--root', store, 'image', 'import', images.dockerArchive]);
  if (imported.status !== 0) throw new Error(`import failed: ${imported.stderr}`);
}, 60_000);

afterEach(killStartedCli);

afterAll(() => {
  base?.remove();
  if (!CAN_RUN) return;
  removeStaleCgroups({ parent: PARENT, isAlive: isCliAlive });
  const left = [...cgroupsBelow(PARENT), ...removeParentDirectories(PARENT, SUITE_DEPTH)];
  expect(left).toEqual([]);
});

function pidsMountPoint(): string | undefined {
  if (LAYOUT?.version === 1) return (LAYOUT.mountRoots?.pids ?? '/') === '/' ? LAYOUT.controllers.pids : undefined;
  if (LAYOUT?.version === 2) return (LAYOUT.mountRoot ?? '/') === '/' ? LAYOUT.root : undefined;
  return undefined;
}

function run(runtime: (typeof RUNTIMES)[number], args: string[]) {
  return runCli(['--root', store, 'run', '--rm', ...args], {
    env: { M_DOCKER_JS_RUNTIME: runtime, M_DOCKER_INIT_RUNTIME: runtime, M_DOCKER_CGROUP_PARENT: PARENT },
  });
}

describe.skipIf(!CAN_RUN)(`run --pids-limit below the runtime's threads (${SKIP_REASON})`, () => {
  describe.each(RUNTIMES)('under %s', (runtime) => {
    it('--pids-limit 1 runs echo', async () => {
      const result = await run(runtime, ['--pids-limit', '1', '--image', 'busybox', 'sh', '-c', 'echo hi']);

      expect(result.stderr).toBe('');
      expect(result.stdout.toString()).toBe('hi\n');
      expect(result.status).toBe(0);
    });

    it('--pids-limit 3 stops the third sleep', async () => {
      // sh and two sleeps are the 3 tasks, so the third fork fails.
      const result = await run(runtime, ['--pids-limit', '3', '--image', 'busybox', 'sh', '-c', 'sleep 1 & sleep 1 & sleep 1 & wait']);

      expect(result.stderr).toBe(FORK_FAILED);
      expect(result.stdout.toString()).toBe('');
      expect(result.status).toBe(2);
    });

    it('--pids-limit 2 allows exactly one fork', async () => {
      // Only `sleep` forks. The limit applies from COMMAND's start, so exactly
      // one gets through.
      const script = 'n=0; while [ $n -lt 5 ]; do sleep 5 2>/dev/null & n=$((n+1)); echo $n; done';
      const result = await run(runtime, ['--pids-limit', '2', '--image', 'busybox', 'sh', '-c', script]);

      expect(result.stdout.toString()).toBe('1\n');
      expect(result.stderr).toBe(FORK_FAILED);
      expect(result.status).toBe(2);
    });

    it.skipIf(PIDS_MOUNT === undefined)('pids.max holds the limit and stays closed', async () => {
      // The container runs on the host's root, so it can read the host's
      // cgroup file system. No pids.max descriptor may reach COMMAND,
      // which could lift the limit through it.
      // busybox runs ls in the shell's own process, so the shell's fds are
      // checked by number (the init keeps pids.max at 4) and by target.
      const script = [
        `p=$(grep -E '${CGROUP_LINE}' /proc/self/cgroup | cut -d: -f3)`,
        `read max < ${PIDS_MOUNT}$p/pids.max`,
        'echo $max',
        'for fd in 3 4 5; do [ -e /proc/$$/fd/$fd ] || echo $fd closed; done',
        'ls -l /proc/$$/fd | grep -c pids.max',
        'true',
      ].join('; ');
      const result = await run(runtime, ['--pids-limit', '4', '/bin/busybox', 'sh', '-c', script]);

      expect(result.stderr).toBe('');
      expect(result.stdout.toString()).toBe('4\n3 closed\n4 closed\n5 closed\n0\n');
      expect(result.status).toBe(0);
    });

    it('execve failure under the limit is reported', async () => {
      // execve fails after the limit is written, and the init must still
      // send its report, which under Bun may start a thread.
      const script = join(base?.path ?? '', `missing-interpreter-${runtime}.sh`);
      writeFileSync(script, '#!/nonexistent/m-docker-interpreter\n');
      chmodSync(script, 0o755);
      const result = await run(runtime, ['--pids-limit', '1', script]);

      expect(result.stderr).toBe(
        `m-docker: cannot run ${JSON.stringify(script)}: execve ${script}: ENOENT (no such file or directory): the file exists, so the interpreter named on its '#!' line is missing\n`,
      );
      expect(result.status).toBe(127);
    });

    it('failure before ready leaves no cgroup', async () => {
      // The init never reads the pidsLimit message, whose descriptor closes with the socket.
      const result = await run(runtime, ['--pids-limit', '1', '--image', 'busybox', 'no-such-command-m-docker']);

      expect(result.status).toBe(127);
      expect(cgroupsBelow(PARENT)).toEqual([]);
    });
  });
});
