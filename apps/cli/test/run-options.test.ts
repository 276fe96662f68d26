import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';

import { hostMounts, killStartedCli, makeTempDir, NOT_ROOT, runCli } from './helpers.js';

afterEach(killStartedCli);

describe('m-docker command line', () => {
  it('--help lists run', async () => {
    const result = await runCli(['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toContain('run [OPTIONS] [COMMAND [ARG...]]');
    expect(result.stdout.toString()).toContain('--log-level LEVEL');
  });

  it('no arguments prints help', async () => {
    const result = await runCli([]);
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toContain('Usage: m-docker');
  });

  it('run --help shows examples', async () => {
    const result = await runCli(['run', '--help']);
    expect(result.status).toBe(0);
    const help = result.stdout.toString();
    expect(help).toContain("m-docker run /bin/sh -c 'echo $$; hostname; ps -e -o pid,comm'");
    expect(help).toContain('--env-file FILE');
    expect(help).toContain('126 if COMMAND cannot be executed');
  });

  it('--version names both runtimes', async () => {
    const result = await runCli(['--version']);
    expect(result.status).toBe(0);
    const runtime = /(node v\d+\.\d+\.\d+|bun \d+\.\d+\.\d+)/.source;
    expect(result.stdout.toString()).toMatch(new RegExp(`^m-docker \\d+\\.\\d+\\.\\d+ \\(cli: ${runtime}, init: ${runtime}\\)\n$`));

    const forced = process.env.M_DOCKER_JS_RUNTIME;
    if (forced) expect(result.stdout.toString()).toMatch(new RegExp(`cli: ${forced} .*, init: ${forced} `));
  });

  it.each([
    [['run'], "missing COMMAND: give the program to run, or --image NAME to run an image's command: see 'm-docker run --help'"],
    [['run', '--no-such-option', 'true'], "unknown option '--no-such-option': see 'm-docker run --help'"],
    [['run', '--hostname'], "option '--hostname' needs a value: see 'm-docker run --help'"],
    [['run', '-e'], "option '-e' needs a value: see 'm-docker run --help'"],
    [['--log-level', 'loud', 'run', 'true'], 'invalid --log-level "loud": use one of error, warn, info, debug'],
    [['--no-such-global', 'run', 'true'], "unknown option '--no-such-global': see 'm-docker --help'"],
    [['no-such-command'], "unknown command 'no-such-command': see 'm-docker --help'"],
    [['run', '--debug', 'true'], "--debug is an option of m-docker itself: put it before 'run', as in 'm-docker --debug run ...'"],
    [['run', '--tty=maybe', 'true'], 'invalid value "maybe" for --tty: use true or false, or give --tty alone'],
  ])('usage error %j gives 125', async (args, message) => {
    const result = await runCli(args);
    expect(result.status).toBe(125);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toMatch(/^m-docker: .*\n$/);
  });
});

describe.skipIf(NOT_ROOT)('run options (needs root)', () => {
  it.each([
    [['-w/tmp', 'pwd'], '/tmp\n'],
    [['-w=/tmp', 'pwd'], '/tmp\n'],
    [['-eA=1', '-e=B=2', '/bin/sh', '-c', 'echo $A$B'], '12\n'],
    [['-iw', '/tmp', 'pwd'], '/tmp\n'],
    [['-tw', '/tmp', 'pwd'], '/tmp\r\n'],
    [['--tty=false', '/bin/sh', '-c', 'echo ${TERM:-none}'], 'none\n'],
    [['--tty=true', '/bin/sh', '-c', 'echo ${TERM:-none}'], 'xterm\r\n'],
    [['-t=false', '/bin/sh', '-c', 'echo ${TERM:-none}'], 'none\n'],
    [['--tty=False', '/bin/sh', '-c', 'echo ${TERM:-none}'], 'none\n'],
  ])('docker spelling %j is accepted', async (options, stdout) => {
    const result = await runCli(['run', ...options]);
    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toBe(stdout);
  });

  // -it needs a terminal on standard input, which these runs lack, so the
  // spelling is accepted and the run then refused, as docker refuses it.
  it.each([[['-itw', '/tmp', 'pwd']], [['-it=1', '/bin/sh', '-c', 'echo ${TERM:-none}']]])(
    'docker spelling %j reaches the terminal check',
    async (options) => {
      const result = await runCli(['run', ...options]);
      expect(result.status).toBe(125);
      expect(result.stderr).toBe(
        'm-docker: the input device is not a TTY: run -it from a terminal, or drop -t to pass input through a pipe or file\n',
      );
    },
  );

  it('value starting with a dash is a value', async () => {
    const result = await runCli(['run', '--hostname', '-x', 'true']);
    expect(result.status).toBe(125);
    expect(result.stderr).toContain('invalid hostname "-x"');
  });

  it('-w sets the working directory', async () => {
    const result = await runCli(['run', '-w', '/tmp', 'pwd']);
    expect(result.stdout.toString()).toBe('/tmp\n');
  });

  it('working directory defaults to /', async () => {
    const result = await runCli(['run', 'pwd']);
    expect(result.stdout.toString()).toBe('/\n');
  });

  it.each([
    [['-w', 'relative/dir'], 'invalid working directory "relative/dir": -w needs an absolute path'],
    [['--hostname', 'has space'], 'invalid hostname "has space"'],
    [['--hostname', 'x'.repeat(65)], 'invalid hostname'],
    [['--hostname', 'a_b'], 'invalid hostname "a_b"'],
    [['--hostname=-leading-dash'], 'invalid hostname "-leading-dash"'],
    [['--', ''], 'invalid command "": the command name is empty'],
  ])('bad value %j gives 125', async (options, message) => {
    const result = await runCli(['run', ...options, ...(options[0] === '--' ? [] : ['true'])]);
    expect(result.status).toBe(125);
    expect(result.stderr).toContain(`m-docker: ${message}`);
  });

  it('missing working directory gives 125', async () => {
    const result = await runCli(['run', '-w', '/nonexistent-m-docker-dir', 'pwd']);
    expect(result.status).toBe(125);
    expect(result.stderr).toBe(
      'm-docker: cannot use working directory "/nonexistent-m-docker-dir": chdir /nonexistent-m-docker-dir: ENOENT (no such file or directory): give -w an existing folder\n',
    );
  });

  it('-i attaches standard input', async () => {
    const result = await runCli(['run', '-i', 'cat'], { input: 'hello from stdin\n' });
    expect(result.stdout.toString()).toBe('hello from stdin\n');
  });

  it('standard input is empty without -i', async () => {
    const result = await runCli(['run', 'cat'], { input: 'not passed\n' });
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toBe('');
  });

  // Field 6 of /proc/PID/stat is the session id; 0 would mean a session
  // outside the container's PID namespace, the CLI's. With -t, PID 1 leads
  // the session of the container's pty, whose line ends are \r\n.
  it.each([
    [[], '1\n'],
    [['-t'], '1\r\n'],
  ])('run %j puts PID 1 in session 1', async (options, output) => {
    const result = await runCli(['run', ...options, '/bin/sh', '-c', 'cut -d" " -f6 /proc/1/stat']);
    expect(result.stdout.toString()).toBe(output);
  });

  // The init starts before the options are parsed. An init that waits for
  // ever, found by its unique path, must be gone once the CLI has exited.
  it('usage error leaves no init running', async () => {
    const dir = makeTempDir('early-init');
    try {
      const init = `${dir.path}/waiting-init.mjs`;
      writeFileSync(init, 'setInterval(() => {}, 1000);\n');
      const result = await runCli(['run', '--no-such-option', 'true'], { env: { M_DOCKER_INIT_PATH: init } });
      expect(result.status).toBe(125);
      expect(result.stderr).toBe("m-docker: unknown option '--no-such-option': see 'm-docker run --help'\n");
      expect(processesRunning(init)).toEqual([]);
    } finally {
      dir.remove();
    }
  });

  it('--debug logs each protocol step', async () => {
    const result = await runCli(['--debug', 'run', '/bin/true']);
    expect(result.status).toBe(0);
    for (const step of ['cli started', 'init spawned', 'config sent', 'config received', 'ready received', 'start sent', 'execve', 'container exited']) {
      expect(result.stderr).toMatch(new RegExp(`^m-docker\\[(cli|init)\\] debug \\+\\d+\\.\\dms ${step}`, 'm'));
    }
  });

  it('non-root user gives 125 and creates nothing', async () => {
    const mountsBefore = hostMounts();
    const result = await runCli(['run', '/bin/true'], {
      prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
    });
    expect(result.status).toBe(125);
    expect(result.stderr).toBe('m-docker: m-docker run needs root, but it runs as uid 65534: run it as root, for example with sudo\n');
    expect(hostMounts()).toBe(mountsBefore);
  });

  it('root without CAP_SYS_ADMIN gives 125', async () => {
    const result = await runCli(['run', '/bin/true'], {
      prefix: ['setpriv', '--inh-caps=-all', '--bounding-set=-sys_admin', '--'],
    });
    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(/^m-docker: cannot create namespaces: unshare .*EPERM.*: run m-docker as root with CAP_SYS_ADMIN\n$/);
  });
});

// The pids of processes whose command line contains `text`, from /proc.
function processesRunning(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(text)) pids.push(Number(name));
    } catch {
      // The process ended while /proc was read.
    }
  }
  return pids;
}
