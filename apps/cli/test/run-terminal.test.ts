import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import {
  CLI,
  childPids,
  cliEnvironment,
  HAS_BUSYBOX,
  hostMounts,
  isAlive,
  killStartedCli,
  makeTempDir,
  NOT_ROOT,
  runCli,
  waitFor,
  writeBusyboxRootfs,
} from './helpers.js';
import { HAS_TMUX, shellQuote, TmuxTerminal } from './tmux.js';

// `run -t`: the container gets a pseudo-terminal from its own devpts, and
// the CLI relays between it and its own terminal. The tests in a real
// terminal run the CLI in a tmux pane on a socket of their own, type with
// send-keys and read the screen. Every run uses its own store (--root), and
// the host's mount table must be unchanged afterwards.

/** Applets the terminal tests need besides those of writeBusyboxRootfs. */
const TERMINAL_APPLETS = ['tty', 'stty', 'cut', 'readlink', 'seq'];

let base: { path: string; remove: () => void };
let rootfs: string;
let store: string;
let mountsBefore: string;

beforeAll(() => {
  if (NOT_ROOT) return;
  base = makeTempDir('terminal');
  store = join(base.path, 'store');
  mountsBefore = hostMounts();
  if (!HAS_BUSYBOX) return;
  rootfs = join(base.path, 'rootfs');
  writeBusyboxRootfs(rootfs);
  for (const applet of TERMINAL_APPLETS) symlinkSync('busybox', join(rootfs, 'bin', applet));
});

afterEach(() => {
  killStartedCli();
  if (mountsBefore !== undefined) expect(hostMounts()).toBe(mountsBefore);
});

afterAll(() => base?.remove());

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** The lines of pty output, whose line ends are \r\n. */
const ptyLines = (output: Buffer) => output.toString().split('\r\n');

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX || !HAS_TMUX)('run -it and exec -it in a real terminal (needs root, busybox and tmux)', () => {
  let terminal: TmuxTerminal;
  let scratch: { path: string; remove: () => void };
  let dir: string;

  beforeEach(() => {
    terminal = new TmuxTerminal(`m-docker-test-${process.pid}`);
    scratch = makeTempDir('tmux');
    dir = scratch.path;
  });

  // Ending the server hangs up the pane's terminal; a CLI that still runs
  // then is killed by pid, and its container dies with it.
  afterEach(async () => {
    const running = runningCliPid();
    if (running !== undefined) cliPids.add(running);
    terminal.kill();
    for (const cli of cliPids) {
      if (!isAlive(cli)) continue;
      process.kill(cli, 'SIGKILL');
      await waitFor(() => !isAlive(cli), 'the CLI to die');
    }
    cliPids.clear();
    scratch.remove();
  });

  /** Every CLI that a test looked up, for afterEach. */
  const cliPids = new Set<number>();

  function runningCliPid(): number | undefined {
    try {
      return childPids(terminal.panePid())[0];
    } catch {
      return undefined;
    }
  }

  // Runs m-docker in the pane from a script that saves `stty -g` of the
  // pane's terminal before and after, and the CLI's status, in `dir`.
  function startCli(args: string[], size = { columns: 100, rows: 30 }): void {
    const env = Object.entries(cliEnvironment())
      .map(([name, value]) => shellQuote(`${name}=${value}`))
      .join(' ');
    const script = join(dir, 'run.sh');
    writeFileSync(
      script,
      [
        `stty -g > ${dir}/stty-before`,
        `env -i ${env} ${shellQuote(CLI)} --root ${shellQuote(store)} ${args.map(shellQuote).join(' ')}`,
        'status=$?',
        `stty -g > ${dir}/stty-after`,
        `echo "$status" > ${dir}/status`,
        'echo "m-docker exited with $status"',
      ].join('\n'),
    );
    terminal.start(`sh ${script}`, size);
  }

  async function cliStatus(): Promise<number> {
    await waitFor(() => existsSync(join(dir, 'status')) && readFileSync(join(dir, 'status'), 'utf8').endsWith('\n'), 'm-docker to exit', 15_000);
    return Number(readFileSync(join(dir, 'status'), 'utf8'));
  }

  function sttyUnchanged(): void {
    expect(readFileSync(join(dir, 'stty-after'), 'utf8')).toBe(readFileSync(join(dir, 'stty-before'), 'utf8'));
  }

  async function startShell(size?: { columns: number; rows: number }): Promise<void> {
    startCli(['run', '-it', '--rm', '--rootfs', rootfs, 'sh'], size);
    await terminal.waitForScreen(/^\/ #$/m, 'the container shell prompt');
  }

  it('tty names the container pty', async () => {
    await startShell();
    terminal.typeLine('echo "name: $(tty)"');

    const [, name] = await terminal.waitForScreen(/^name: (.*)$/m, 'the output of tty');
    expect(name).toBe('/dev/pts/0');
    terminal.typeLine('exit');
    expect(await cliStatus()).toBe(0);
  });

  it('stty size follows the window', async () => {
    await startShell({ columns: 100, rows: 30 });
    terminal.typeLine('echo "size: $(stty size)"');
    const [, first] = await terminal.waitForScreen(/^size: (.*)$/m, 'the first stty size');
    expect(first).toBe('30 100');

    terminal.resize({ columns: 72, rows: 21 });
    terminal.typeLine('echo "resized: $(stty size)"');
    const [, second] = await terminal.waitForScreen(/^resized: (.*)$/m, 'the second stty size');
    expect(second).toBe('21 72');
    terminal.typeLine('exit');
    expect(await cliStatus()).toBe(0);
  });

  // A SIGINT forwarded by the CLI would go to PID 1 (the shell), which
  // ignores it. Only the pty's line discipline sends it to sleep, because
  // sleep is the foreground process group.
  it('Ctrl-C interrupts the foreground job', async () => {
    await startShell();
    terminal.typeLine('sleep 100');
    await waitFor(() => containerProcesses().includes('sleep'), 'sleep to run');

    terminal.press('C-c');
    await waitFor(() => !containerProcesses().includes('sleep'), 'sleep to end');
    terminal.typeLine('echo "sleep ended with $?"');
    const [, status] = await terminal.waitForScreen(/^sleep ended with (\d+)$/m, 'the status of sleep');
    expect(status).toBe('130');
    terminal.typeLine('exit');
    expect(await cliStatus()).toBe(0);
  });

  it('exit restores the terminal mode', async () => {
    await startShell();
    terminal.typeLine('exit 3');

    expect(await cliStatus()).toBe(3);
    sttyUnchanged();
  });

  it('killed container restores the terminal mode', async () => {
    await startShell();
    const pid1 = containerPid1();
    process.kill(pid1, 'SIGKILL');

    expect(await cliStatus()).toBe(137);
    sttyUnchanged();
  });

  it('forwarded signal restores the terminal mode', async () => {
    startCli(['run', '-it', '--rm', '--rootfs', rootfs, 'sh', '-c', 'trap "exit 5" TERM; echo trap set; while :; do sleep 1; done']);
    await terminal.waitForScreen(/^trap set$/m, 'the trap');
    process.kill(cliPid(), 'SIGTERM');

    expect(await cliStatus()).toBe(5);
    sttyUnchanged();
  });

  it('failed start leaves the terminal mode', async () => {
    startCli(['run', '-it', '--rm', '--rootfs', rootfs, '-u', 'nobody-here', 'sh']);

    expect(await cliStatus()).toBe(125);
    expect(terminal.screen()).toContain('m-docker: ');
    sttyUnchanged();
  });

  // As when a terminal window closes: the CLI's terminal hangs up, and the
  // CLI hangs up the container's, whose shell reads end of file and exits.
  it('closed terminal ends the container', async () => {
    await startShell();
    const cli = cliPid();
    const pid1 = containerPid1();
    terminal.kill();

    await waitFor(() => !isAlive(pid1), 'the container to end');
    await waitFor(() => !isAlive(cli), 'the CLI to end');
    expect(isAlive(cli)).toBe(false);
  });

  it('killed CLI takes the container along', async () => {
    await startShell();
    const pid1 = containerPid1();
    process.kill(cliPid(), 'SIGKILL');

    await waitFor(() => !isAlive(pid1), 'the container to die with the CLI');
    expect(isAlive(pid1)).toBe(false);
  });

  describe('exec -it', () => {
    beforeAll(async () => {
      const started = await runCli(['--root', store, 'run', '-d', '--name', 'exec-target', '--rootfs', rootfs, 'sleep', '1000']);
      if (started.status !== 0) throw new Error(`run -d failed: ${started.stderr}`);
    });

    afterAll(() => runCli(['--root', store, 'rm', '-f', 'exec-target']));

    async function startExecShell(size?: { columns: number; rows: number }): Promise<void> {
      startCli(['exec', '-it', 'exec-target', 'sh'], size);
      await terminal.waitForScreen(/^\/ #$/m, 'the exec shell prompt');
    }

    it('exec -it shell runs commands on a container pty', async () => {
      await startExecShell();
      terminal.typeLine('echo "name: $(tty) host: $(hostname)"');

      const [, name, host] = await terminal.waitForScreen(/^name: (\S+) host: (\S+)$/m, 'the output of tty');
      expect(name).toMatch(/^\/dev\/pts\/\d+$/);
      expect(host).not.toBe(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim());
      terminal.typeLine('exit 4');
      expect(await cliStatus()).toBe(4);
      sttyUnchanged();
    });

    // The pty has the window's size before the command starts, as full-screen
    // programs read it first.
    it('exec -it command starts with the window size', async () => {
      startCli(['exec', '-it', 'exec-target', 'stty', 'size'], { columns: 90, rows: 25 });

      expect(await cliStatus()).toBe(0);
      expect(terminal.screen()).toMatch(/^25 90$/m);
    });

    it('exec -it stty size follows the window', async () => {
      await startExecShell({ columns: 90, rows: 25 });
      terminal.typeLine('echo "size: $(stty size)"');
      const [, first] = await terminal.waitForScreen(/^size: (.*)$/m, 'the first stty size');
      expect(first).toBe('25 90');

      terminal.resize({ columns: 64, rows: 19 });
      terminal.typeLine('echo "resized: $(stty size)"');
      const [, second] = await terminal.waitForScreen(/^resized: (.*)$/m, 'the second stty size');
      expect(second).toBe('19 64');
      terminal.typeLine('exit');
      expect(await cliStatus()).toBe(0);
    });

    it('exec -it Ctrl-C interrupts the foreground job', async () => {
      await startExecShell();
      terminal.typeLine('sleep 100');
      // The exec'd shell is a child of the CLI, and sleep a child of the shell.
      const execShell = () => childPids(cliPid())[0] as number;
      await waitFor(() => commandsOf(childPids(execShell())).includes('sleep'), 'sleep to run');

      terminal.press('C-c');
      await waitFor(() => !commandsOf(childPids(execShell())).includes('sleep'), 'sleep to end');
      terminal.typeLine('echo "sleep ended with $?"');
      const [, status] = await terminal.waitForScreen(/^sleep ended with (\d+)$/m, 'the status of sleep');
      expect(status).toBe('130');
      terminal.typeLine('exit');
      expect(await cliStatus()).toBe(0);
      sttyUnchanged();
    });
  });

  // The pane runs sh, which runs the launcher, which execs the CLI.
  function cliPid(): number {
    const pid = runningCliPid();
    if (pid === undefined) throw new Error('the pane runs no m-docker');
    cliPids.add(pid);
    return pid;
  }

  function containerPid1(): number {
    const [pid] = childPids(cliPid());
    if (pid === undefined) throw new Error('m-docker has no container');
    return pid;
  }

  function containerProcesses(): string[] {
    return commandsOf(childPids(containerPid1()));
  }

  function commandsOf(pids: number[]): string[] {
    return pids.map((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
  }
});

describe.skipIf(NOT_ROOT || !HAS_BUSYBOX)('run -t without a terminal (needs root and busybox)', () => {
  const rootfsRun = (args: string[], options: Parameters<typeof runCli>[1] = {}) =>
    runCli(['--root', store, 'run', '-t', '--rm', '--rootfs', rootfs, ...args], options);

  it('tty names the pty with piped input', async () => {
    const result = await rootfsRun(['sh', '-c', 'tty; echo done'], { input: 'not read\n' });

    expect(result.status).toBe(0);
    expect(ptyLines(result.stdout)).toEqual(['/dev/pts/0', 'done', '']);
  });

  it('standard input is the pty', async () => {
    const result = await rootfsRun(['sh', '-c', 'for fd in 0 1 2; do readlink /proc/self/fd/$fd; done']);
    expect(ptyLines(result.stdout)).toEqual(['/dev/pts/0', '/dev/pts/0', '/dev/pts/0', '']);
  });

  it('PID 1 leads a session with the pty', async () => {
    // Field 6 of /proc/1/stat is the session, field 7 the terminal's device number.
    const result = await rootfsRun(['sh', '-c', 'cut -d" " -f6,7 /proc/1/stat; ls -ln /dev/console /dev/pts/0']);
    const [session, console, pts] = ptyLines(result.stdout);

    expect(session).toBe(`1 ${(136 << 8) | 0}`);
    expect(pts).toMatch(/^crw--w---- +1 0 +5 +136, +0 .* \/dev\/pts\/0$/);
    expect(console).toMatch(/^crw--w---- +1 0 +5 +136, +0 .* \/dev\/console$/);
  });

  it('pty belongs to the user', async () => {
    const result = await rootfsRun(['-u', 'app', 'sh', '-c', 'id -u; ls -ln $(tty)']);
    const [uid, pts] = ptyLines(result.stdout);

    expect(uid).toBe('1000');
    expect(pts).toMatch(/^crw--w---- +1 1000 +5 /);
  });

  it('all output arrives before the exit', async () => {
    const result = await rootfsRun(['sh', '-c', 'seq 1 50000; echo last']);
    const lines = ptyLines(result.stdout);

    expect(result.status).toBe(0);
    expect(lines).toHaveLength(50002);
    expect(lines[49999]).toBe('50000');
    expect(lines.at(-2)).toBe('last');
  });

  it.each([
    { name: 'own status', args: ['sh', '-c', 'exit 3'], status: 3 },
    { name: 'missing command', args: ['no-such-command'], status: 127 },
  ])('exit status stays docker\'s: $name', async ({ args, status }) => {
    const result = await rootfsRun(args);
    expect(result.status).toBe(status);
  });

  it('-it with piped input gives 125', async () => {
    const result = await runCli(['--root', store, 'run', '-it', '--rm', '--rootfs', rootfs, 'true'], { input: 'x\n' });

    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      'm-docker: the input device is not a TTY: run -it from a terminal, or drop -t to pass input through a pipe or file\n',
    );
  });

  it('host root gets a devpts of its own', async () => {
    const result = await runCli(['--root', store, 'run', '-t', '/bin/sh', '-c', 'tty; ls /dev/pts']);
    const [name, entries] = ptyLines(result.stdout);

    expect(result.status).toBe(0);
    expect(name).toBe('/dev/pts/0');
    expect(entries?.split(/\s+/).sort()).toEqual(['0', 'ptmx']);
  });
});

// Each blocking read of the CLI while it waits for the pty must end with a
// clear error when the init dies or misbehaves.
describe.skipIf(NOT_ROOT)('run -t with a failing init (needs root)', () => {
  const runWithInit = (name: string) =>
    runCli(['--root', store, 'run', '-t', '/bin/true'], { env: { M_DOCKER_INIT_PATH: fixture(name) } });

  it('init gone before the terminal gives 125', async () => {
    const result = await runWithInit('init-exits-before-terminal.mjs');

    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(
      /^m-docker: (the container's init exited before it sent the terminal|lost contact with the container's init while waiting for terminal: .*ECONNRESET.*)\n$/,
    );
  });

  it('init gone after the terminal gives 125', async () => {
    const result = await runWithInit('init-sends-terminal-and-exits.mjs');

    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(/^m-docker: (the container's init exited before it was ready|lost contact with the container's init while waiting for ready: .*)\n$/);
  });

  it('ready without terminal gives 125', async () => {
    const result = await runWithInit('init-sends-ready-without-terminal.mjs');

    expect(result.status).toBe(125);
    expect(result.stderr).toBe("m-docker: the container's init sent ready without the terminal that -t needs\n");
  });
});
