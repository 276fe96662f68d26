import {
  close,
  dup2,
  fchown,
  MS_BIND,
  MS_NOEXEC,
  MS_NOSUID,
  mount,
  O_NOCTTY,
  O_RDWR,
  openFile,
  ptsname,
  setControllingTerminal,
  UNCHANGED_ID,
  unlockpt,
} from '@m-docker/syscalls';

// The container's pseudo-terminal (`m-docker run -t`), set up as runc does
// for an OCI process with `terminal: true`:
//
//   1. a devpts instance of the container's own is mounted on /dev/pts (in
//      the container's root by rootfs.ts, on the host's root here), with
//      /dev/ptmx leading to it
//   2. the init opens /dev/ptmx after pivot_root, unlocks the slave and
//      opens it; the slave is bound onto /dev/console in a root of the
//      container's own
//   3. the master goes to the CLI over fd 3 as SCM_RIGHTS data, and the
//      init closes its copy
//   4. after the user switch and setsid(2), the slave becomes the init's
//      controlling terminal, and at execve it is fds 0, 1 and 2
//
// The CLI copies between its own stdio and the master. When the last
// descriptor of the slave closes, with the container's last process, reads
// of the master fail with EIO, which the CLI takes as the end of output.

/** Options of the devpts instance: everyone may open ptmx, slaves belong to the tty group. */
export const DEVPTS_OPTIONS = 'newinstance,ptmxmode=0666,mode=0620,gid=5';

/** The container's pty: the master, which the CLI gets, and the slave, which the command gets. */
export interface ContainerTerminal {
  master: number;
  slave: number;
  /** The slave's path inside the container, such as /dev/pts/0. */
  path: string;
}

/**
 * Mounts a devpts instance of the container's own on /dev/pts of the host's
 * root file system and binds its ptmx over /dev/ptmx. The init's mount
 * namespace is private by then, so the host's /dev/pts and /dev/ptmx stay
 * as they are, and the container sees none of the host's terminals.
 */
export function mountDevptsOnHostRoot(): void {
  mount('devpts', '/dev/pts', 'devpts', MS_NOSUID | MS_NOEXEC, DEVPTS_OPTIONS);
  mount('/dev/pts/ptmx', '/dev/ptmx', null, MS_BIND);
}

/**
 * Allocates a pseudo-terminal from the container's /dev/ptmx (pty(7)):
 * opens the master, unlocks the slave and opens it. Neither open makes it
 * the controlling terminal (O_NOCTTY); both descriptors are close-on-exec.
 */
export function openTerminal(): ContainerTerminal {
  const master = openFile('/dev/ptmx', O_RDWR | O_NOCTTY);
  try {
    unlockpt(master);
    const path = ptsname(master);
    const slave = openFile(path, O_RDWR | O_NOCTTY);
    return { master, slave, path };
  } catch (error) {
    close(master);
    throw error;
  }
}

/**
 * Binds the slave onto /dev/console, which rootfs.ts created as an empty
 * file in the container's /dev, as runc does for a container with a
 * terminal.
 */
export function bindConsole(terminal: ContainerTerminal): void {
  mount(terminal.path, '/dev/console', null, MS_BIND);
}

/**
 * Gives the slave to the command's user, as runc does for the command's
 * stdio, so that the user may open it again by its path. The group stays
 * the tty group that devpts gave it.
 */
export function giveTerminalTo(terminal: ContainerTerminal, uid: number): void {
  fchown(terminal.slave, uid, UNCHANGED_ID);
}

/** Makes the slave the controlling terminal of the init, which leads a new session by then. */
export function takeControllingTerminal(terminal: ContainerTerminal): void {
  setControllingTerminal(terminal.slave);
}

/**
 * Makes the slave fds 0 and 1. fd 2 follows last, right before execve, so
 * the init's own log lines still reach the CLI's stderr until then; the
 * slave's own descriptor is closed with the others above fd 3.
 */
export function attachStdio(terminal: ContainerTerminal): void {
  dup2(terminal.slave, 0);
  dup2(terminal.slave, 1);
}

/** Makes fd 2 the terminal too, as the last step before execve. */
export function attachStderr(): void {
  dup2(0, 2);
}
