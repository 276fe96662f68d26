import { afterEach, describe, expect, it } from 'vitest';

import { hostMounts, killStartedCli, NOT_ROOT, runCli } from './helpers.js';

afterEach(killStartedCli);

describe('m-docker command line', () => {
  it('--help lists run', async () => {
    const result = await runCli(['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout.toString()).toContain('run [options] <COMMAND> [ARG...]');
    expect(result.stdout.toString()).toContain('--log-level <level>');
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
    expect(help).toContain('--env-file <file>');
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
    [['run'], "missing required argument 'COMMAND'"],
    [['run', '--no-such-option', 'true'], "unknown option '--no-such-option'"],
    [['run', '--hostname'], "option '--hostname <name>' argument missing"],
    [['--log-level', 'loud', 'run', 'true'], "option '--log-level <level>' argument 'loud' is invalid"],
    [['no-such-command'], "unknown command 'no-such-command'"],
  ])('usage error %j gives 125', async (args, message) => {
    const result = await runCli(args);
    expect(result.status).toBe(125);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toMatch(/^m-docker: .*\n$/);
  });
});

describe.skipIf(NOT_ROOT)('run options (needs root)', () => {
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
    [['--hostname', '-leading-dash'], 'invalid hostname "-leading-dash"'],
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
      'm-docker: container setup failed at step chdir: chdir /nonexistent-m-docker-dir: ENOENT (no such file or directory)\n',
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
