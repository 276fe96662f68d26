import {
  type ContainerConfig,
  type InitFailure,
  type InitStage,
  type Message,
  readMessageSync,
  WireFormatError,
  writeMessageSync,
} from '@m-docker/ipc';
import { createLogger, type Logger } from '@m-docker/log';
import {
  capabilityMask,
  chdir,
  clearCloseOnExec,
  clearNonBlocking,
  close,
  closeFrom,
  descriptorIo,
  dup2,
  errnoName,
  exitNow,
  fdIo,
  isCapabilityName,
  limitBoundingSet,
  limitCapabilities,
  loadLibc,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_REC,
  mount,
  O_RDONLY,
  openFile,
  type PreparedExecve,
  prepareExecve,
  resetSignals,
  SyscallError,
  setCloseOnExec,
  sethostname,
  setParentDeathSignal,
  setsid,
  switchUser,
  writeFd,
} from '@m-docker/syscalls';

import { resolveUser, UserError, withHome } from './container-user.js';
import { PathInRootError } from './path-in-root.js';
import { ResolveError, resolveExecutable } from './resolve-executable.js';
import { setUpRoot } from './rootfs.js';
import {
  attachStderr,
  attachStdio,
  bindConsole,
  type ContainerTerminal,
  giveTerminalTo,
  mountDevptsOnHostRoot,
  openTerminal,
  takeControllingTerminal,
} from './terminal.js';

// The init is PID 1 of the container's new namespaces until it execs the
// command. It talks to the parent (the CLI) over fd 3, a socketpair:
//
//   parent                         init
//     |-- config ------------------>|  mounts, hostname
//     |-- pidsLimit (pids.max fd) ->|  only with a pids limit, read
//     |                             |  after ready
//     |<---- terminal (master fd) --|  only with a terminal (-t)
//     |                             |  bounding set, user, working
//     |                             |  directory, session, executable
//     |                             |  resolved
//     |<------------------- ready --|
//     |-- start ------------------->|  fds closed, stdio cleaned,
//     |                             |  capabilities limited, pids
//     |                             |  limit written, execve
//     |<-------- EOF (exec worked) -|  fd 3 is close-on-exec
//     |<------ error (exec failed) -|
//
// Any failure is sent as an error message and the init exits with status 1.
// End of stream on fd 3, or a read or write on it that fails (ECONNRESET,
// EPIPE), means the parent died: the init exits with status 2 at once, and
// the parent-death signal covers a later death.

// The init does its file I/O through libc (fdIo, openFile) rather than
// node:fs, whose import costs about 3 ms under Bun, on every start.

/** The descriptor of the init's end of the socketpair. */
export const INIT_PIPE_FD = 3;

/** The status the init exits with after it reported a failure. */
export const INIT_FAILURE_STATUS = 1;

/** Status when the parent is gone, so no report can be sent. */
export const PARENT_GONE_STATUS = 2;

/** The descriptor that the container's pids.max moves to after start, so that closing the others keeps it. */
const PIDS_MAX_FD = INIT_PIPE_FD + 1;

const SIGKILL = 9;

/** A failure in one step of the init, ready to be sent to the parent. */
class StageError extends Error {
  constructor(
    readonly failure: InitFailure,
    options?: ErrorOptions,
  ) {
    super(failure.message, options);
  }
}

/** Runs the init's steps in order and execs the command; it returns only by exiting. */
export function runInit(): never {
  const started = performance.now();
  let log: Logger | undefined;
  try {
    setParentDeathSignal(SIGKILL);
    clearNonBlocking(INIT_PIPE_FD);

    const config = receiveConfig();
    log = createLogger({
      level: config.logLevel,
      component: 'init',
      fields: { id: config.id.slice(0, 12) },
      write: writeToStderr,
    });
    log.debug('config received', { argc: config.argv.length, envc: config.env.length });

    const { executable, env, terminal, capabilities } = setUpContainer(config, log);
    log.debug('ready sent, waiting for start');
    const pidsLimit = waitForStart();
    log.debug('start received', pidsLimit ? { pidsLimit: pidsLimit.limit } : undefined);

    execCommand({ executable, argv: config.argv, env, terminal, pidsLimit, capabilities }, log, started);
  } catch (error) {
    reportAndExit(error, log);
  }
}

function receiveConfig(): ContainerConfig {
  const message = receive('config');
  if (message.type !== 'config') {
    throw stageError('config', `expected a config message, got ${message.type}`);
  }
  return message.config;
}

/** The executable, argv, environment and terminal that execve needs once the parent sends start. */
interface Command {
  executable: string;
  argv: string[];
  env: string[];
  /** The container's pty, whose slave becomes fds 0-2 (-t). */
  terminal: ContainerTerminal | undefined;
  /** The capabilities the command may have, as a set (bit N for capability N). */
  capabilities: bigint;
  /** The container's pids.max and the limit to write there (--pids-limit). */
  pidsLimit: PidsLimit | undefined;
}

/** The container's pids.max, open for writing, and the limit that the parent sent with it. */
interface PidsLimit {
  fd: number;
  limit: number;
}

// Mounts, hostname, terminal, working directory and user, then the PATH
// search: every step that can fail before the parent sends start.
function setUpContainer(config: ContainerConfig, log: Logger): Omit<Command, 'argv' | 'pidsLimit'> {
  const started = performance.now();
  step('mount', () => mount(null, '/', null, MS_REC | MS_PRIVATE));
  const root = config.root;
  if (root === null) {
    step('mount', () => mount('proc', '/proc', 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC));
    if (config.terminal) step('terminal', mountDevptsOnHostRoot);
  } else {
    step('rootfs', () => setUpRoot(root, config.mounts, config));
  }
  step('hostname', () => sethostname(config.hostname));
  const terminal = config.terminal ? step('terminal', () => sendTerminal(root !== null, log)) : undefined;

  // The bounding set shrinks while the init is still root with every
  // capability: PR_CAPBSET_DROP needs CAP_SETPCAP, which a switch to
  // another user takes away. The effective set stays whole until right
  // before execve, because the user switch needs CAP_SETUID and CAP_SETGID
  // and the terminal's fchown needs CAP_CHOWN.
  const capabilities = step('capabilities', () => {
    const keep = capabilitySet(config.capabilities);
    limitBoundingSet(keep);
    return keep;
  });
  log.debug('bounding set limited', { capabilities: `0x${capabilities.toString(16)}` });

  // The user is switched before chdir, so that a directory the user may not
  // enter fails here as it would for the command. The kernel clears the
  // parent-death signal on the change of credentials, so it is set again.
  let env = config.env;
  const user = config.user;
  if (user !== null) {
    step('user', () => {
      const resolved = resolveUser(user);
      if (terminal) giveTerminalTo(terminal, resolved.uid);
      switchUser(resolved.uid, resolved.gid, resolved.groups);
      setParentDeathSignal(SIGKILL);
      if (user.setHome) env = withHome(env, resolved.home);
    });
  }
  step('chdir', () => chdir(config.cwd));
  // With a terminal, the command reads the pty even without -i, as with
  // docker; the CLI then passes no input on.
  step('fds', () => {
    if (!config.interactive && !terminal) replaceStdinWithDevNull();
  });
  // The CLI spawns the init before it has parsed its options, so the init
  // is still in the caller's session and leaves it here. The pty can only
  // become the controlling terminal of a session leader.
  step('session', () => {
    setsid();
    if (terminal) takeControllingTerminal(terminal);
  });

  const command = config.argv[0] as string;
  const executable = step('resolve', () => resolveExecutable(command, env));
  log.debug('container set up', { executable, ms: (performance.now() - started).toFixed(2) });

  send({ type: 'ready' });
  return { executable, env, terminal, capabilities };
}

// ipc checked the names for their form only. A name that is not in this
// build's table fails here, before anything runs.
function capabilitySet(names: readonly string[]): bigint {
  const unknown = names.find((name) => !isCapabilityName(name));
  if (unknown !== undefined) {
    throw new Error(`unknown capability ${JSON.stringify(unknown)}: use a name from capabilities(7), such as CAP_CHOWN`);
  }
  return capabilityMask(names.filter(isCapabilityName));
}

// Allocates the pty in the container's devpts and sends the master to the
// parent, which then owns the only copy.
function sendTerminal(ownRoot: boolean, log: Logger): ContainerTerminal {
  const terminal = openTerminal();
  if (ownRoot) bindConsole(terminal);
  send({ type: 'terminal', fd: terminal.master });
  close(terminal.master);
  log.debug('terminal sent', { path: terminal.path });
  return terminal;
}

// Without -i the command reads /dev/null, as with docker.
function replaceStdinWithDevNull(): void {
  const devNull = openFile('/dev/null', O_RDONLY);
  dup2(devNull, 0);
  close(devNull);
}

// With a pids limit, the parent sends pidsLimit before start, and possibly
// before ready. The reads go through recvmsg(2), which keeps the
// descriptor that comes with pidsLimit.
function waitForStart(): PidsLimit | undefined {
  let pidsLimit: PidsLimit | undefined;
  for (;;) {
    const message = receive('exec', descriptorIo);
    if (message.type === 'start') return pidsLimit;
    if (message.type === 'pidsLimit' && pidsLimit === undefined) {
      pidsLimit = { fd: message.fd, limit: message.limit };
      continue;
    }
    if (message.type === 'pidsLimit') close(message.fd);
    throw stageError('exec', `expected a start message, got ${message.type}`);
  }
}

// The init, not the parent, writes the pids limit, as its last step
// before execve. The pids controller counts threads: the runtime has
// several when the parent moves the init into the cgroup, and Bun starts
// more while it runs (the first garbage collection starts a helper
// thread). The kernel moves the init whatever its thread count, but then
// refuses every new thread with EAGAIN, and Bun aborts. So the cgroup's
// pids.max stays at max until this write. Everything that allocates runs
// before it, execve's arguments included (prepareExecve), so no garbage
// collection is due between the write and execve. execve ends the other
// threads, and the command starts as the only task under the limit.
//
// NOTE: the write's result (a number, or a BigInt under Bun) is still an
// allocation after the limit is in force. A garbage collection at that
// allocation could start a thread, which the limit would refuse.

// After start: only fds 0-2 and the pipe may reach the command, the pipe is
// closed by a successful execve, and the stdio flags that Node set are
// cleared so the command gets ordinary blocking descriptors.
function execCommand(command: Command, log: Logger, started: number): never {
  const { executable, argv, env, terminal, pidsLimit, capabilities } = command;
  const prepared = step('exec', () => prepareExecve(executable, argv, env));
  const pidsMax = pidsLimit ? pidsMaxWrites(pidsLimit) : undefined;
  step('fds', () => {
    if (terminal) attachStdio(terminal);
    if (pidsLimit) keepPidsMax(pidsLimit);
    closeFrom(pidsLimit ? PIDS_MAX_FD + 1 : INIT_PIPE_FD + 1);
    setCloseOnExec(INIT_PIPE_FD);
    for (const fd of [0, 1, 2]) {
      clearCloseOnExec(fd);
      clearNonBlocking(fd);
    }
    resetSignals();
  });
  // Root's effective and permitted sets shrink to the container's, and
  // another user's are empty since the switch. The inheritable and ambient
  // sets are emptied, as docker does, so execve gives root exactly the
  // bounding set. Lowering the permitted set keeps the parent-death signal.
  step('capabilities', () => limitCapabilities(capabilities));
  // The init's own work: from its first line after module loading to execve.
  log.debug('execve', { executable, initMs: (performance.now() - started).toFixed(2) });
  if (terminal) step('exec', attachStderr);

  pidsMax?.limit();
  const errno = prepared.call();
  pidsMax?.lift(log);
  throw execveFailed(prepared, errno);
}

// Moves pids.max to PIDS_MAX_FD, close-on-exec, so that closing the
// descriptors above it keeps it and the command never gets it.
function keepPidsMax(pidsLimit: PidsLimit): void {
  if (pidsLimit.fd !== PIDS_MAX_FD) {
    dup2(pidsLimit.fd, PIDS_MAX_FD);
    close(pidsLimit.fd);
  }
  setCloseOnExec(PIDS_MAX_FD);
}

// The two writes to pids.max at PIDS_MAX_FD, with their bytes allocated in
// advance. `lift` writes max back after a failed execve: the report of the
// failure allocates, and under Bun a thread that the limit refuses would
// abort the init before the report is sent.
function pidsMaxWrites(pidsLimit: PidsLimit): { limit(): void; lift(log: Logger): void } {
  const limitBytes = Buffer.from(String(pidsLimit.limit));
  const maxBytes = Buffer.from('max');
  return {
    limit: () => {
      try {
        const written = writeFd(PIDS_MAX_FD, limitBytes);
        if (written !== limitBytes.byteLength) throw new Error(`${written} of ${limitBytes.byteLength} bytes written`);
      } catch (error) {
        const syscall = SyscallError.isInstance(error) ? error : undefined;
        const message = `cannot write the pids limit ${pidsLimit.limit} to the container's pids.max: ${(error as Error).message}`;
        throw new StageError({ stage: 'cgroup', code: syscall?.code ?? '', errno: syscall?.errno ?? 0, message }, { cause: error });
      }
    },
    lift: (log) => {
      try {
        writeFd(PIDS_MAX_FD, maxBytes);
      } catch (error) {
        log.warn('cannot lift the pids limit after execve failed, so the report of the failure may not arrive', { error: (error as Error).message });
      }
    },
  };
}

function execveFailed(prepared: PreparedExecve, errno: number): StageError {
  const error = new SyscallError({ syscall: 'execve', errno, code: errnoName(errno), path: prepared.path });
  const failure: InitFailure = { stage: 'exec', code: error.code, errno, message: error.message, path: prepared.path };
  return new StageError(failure, { cause: error });
}

// Reads the next message from the parent. End of stream, also inside a
// frame, or a failed read means the parent died. No one is left to receive
// a report, so the init exits at once.
function receive(stage: InitStage, descriptors?: typeof descriptorIo): Message {
  let message: Message | undefined;
  try {
    message = readMessageSync(INIT_PIPE_FD, descriptors ? { io: fdIo, descriptors } : { io: fdIo });
  } catch (error) {
    if (isParentGone(error)) exitNow(PARENT_GONE_STATUS);
    throw stageError(stage, `cannot read from the parent: ${(error as Error).message}`, error);
  }
  if (message === undefined) exitNow(PARENT_GONE_STATUS);
  return message;
}

// Writes a message to the parent. A failed write (EPIPE once the parent
// closed its end) means the parent died, as in receive().
function send(message: Message): void {
  try {
    writeMessageSync(INIT_PIPE_FD, message, { io: fdIo, descriptors: descriptorIo });
  } catch (error) {
    if (isParentGone(error)) exitNow(PARENT_GONE_STATUS);
    throw error;
  }
}

function isParentGone(error: unknown): boolean {
  return WireFormatError.isInstance(error) && (error.code === 'TRUNCATED' || error.code === 'CHANNEL_CLOSED');
}

function step<T>(stage: InitStage, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (SyscallError.isInstance(error)) {
      const failure: InitFailure = { stage, code: error.code, errno: error.errno, message: error.message };
      if (error.path !== undefined) failure.path = error.path;
      throw new StageError(failure, { cause: error });
    }
    if (error instanceof UserError || error instanceof PathInRootError) {
      throw stageError(stage, error.message, error);
    }
    if (error instanceof ResolveError) {
      const failure = { stage, code: error.code, errno: error.errno, message: error.message, path: error.path };
      throw new StageError(failure, { cause: error });
    }
    throw stageError(stage, (error as Error).message, error);
  }
}

function stageError(stage: InitStage, message: string, cause?: unknown): StageError {
  return new StageError({ stage, code: '', errno: 0, message }, { cause });
}

function reportAndExit(error: unknown, log: Logger | undefined): never {
  const failure =
    error instanceof StageError
      ? error.failure
      : { stage: 'config' as const, code: '', errno: 0, message: (error as Error)?.message ?? String(error) };
  log?.debug('failed', { stage: failure.stage, code: failure.code, message: failure.message });

  // When glibc itself cannot be loaded, the report goes through node:fs and
  // the exit through process.exit, since fdIo and exitNow need glibc.
  if (!isLibcUsable()) {
    try {
      writeMessageSync(INIT_PIPE_FD, { type: 'error', error: failure });
    } catch {
      // The parent is gone too.
    }
    process.exit(INIT_FAILURE_STATUS);
  }

  try {
    send({ type: 'error', error: failure });
  } catch (sendError) {
    log?.error('cannot send the failure to the parent', { stage: failure.stage, error: (sendError as Error).message });
  }
  exitNow(INIT_FAILURE_STATUS);
}

function isLibcUsable(): boolean {
  try {
    loadLibc();
    return true;
  } catch {
    return false;
  }
}

// Log lines go to fd 2 with write(2); a full or closed stderr loses the line.
function writeToStderr(line: string): void {
  try {
    writeFd(2, Buffer.from(line));
  } catch {
    // Nothing else can report it.
  }
}
