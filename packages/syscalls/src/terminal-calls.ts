import { errnoName, SyscallError } from './errors.js';
import { lastErrno, loadLibc } from './libc.js';

// Terminal calls, all through ioctl(2) (ioctl_tty(2), pty(7)): the
// container's init allocates a pseudo-terminal with them, and the CLI puts
// its own terminal in raw mode and passes window sizes on.
//
// The terminal attributes are the kernel's struct termios (TCGETS and
// TCSETS), not glibc's larger one, so they round-trip without conversion:
//
//    0 c_iflag  u32     8 c_cflag  u32     16 c_line  u8
//    4 c_oflag  u32    12 c_lflag  u32     17 c_cc    u8[19]   (36 bytes)
//
// The request numbers and flag values come from asm-generic/ioctls.h and
// asm-generic/termbits.h, which x86_64 and aarch64 both use.

/** open(2) flags for terminals: read and write, and no controlling terminal from the open itself. */
export const O_RDWR = 0o2;
export const O_NOCTTY = 0o400;

const TCGETS = 0x5401;
const TCSETS = 0x5402;
const TIOCSCTTY = 0x540e;
const TIOCGWINSZ = 0x5413;
const TIOCSWINSZ = 0x5414;
const TIOCVHANGUP = 0x5437;
const TIOCGPTN = 0x80045430;
const TIOCSPTLCK = 0x40045431;

const TERMIOS_SIZE = 36;
const WINSIZE_SIZE = 8;

// Flags that cfmakeraw(3) clears or sets (asm-generic/termbits.h).
const IGNBRK = 0x001;
const BRKINT = 0x002;
const PARMRK = 0x008;
const ISTRIP = 0x020;
const INLCR = 0x040;
const IGNCR = 0x080;
const ICRNL = 0x100;
const IXON = 0x400;
const OPOST = 0x01;
const ISIG = 0x00001;
const ICANON = 0x00002;
const ECHO = 0x00008;
const ECHONL = 0x00040;
const IEXTEN = 0x08000;
const CSIZE = 0x30;
const CS8 = 0x30;
const PARENB = 0x100;
const C_CC = 17;
const VTIME = 5;
const VMIN = 6;

/** A terminal's size in character cells (struct winsize without the pixel fields). */
export interface WindowSize {
  rows: number;
  columns: number;
}

function ioctl(fd: number, request: number, name: string, argument: Uint8Array | null): void {
  if (loadLibc().ioctl(fd, request, argument) === -1) {
    const errno = lastErrno();
    throw new SyscallError({ syscall: 'ioctl', errno, code: errnoName(errno), args: `fd=${fd} ${name}` });
  }
}

/** Unlocks the slave of the pseudo-terminal master `master` (unlockpt(3), TIOCSPTLCK), so it can be opened. */
export function unlockpt(master: number): void {
  ioctl(master, TIOCSPTLCK, 'TIOCSPTLCK', new Uint8Array(4));
}

/**
 * Returns the path of the slave of `master` in the devpts instance mounted
 * at /dev/pts (ptsname(3), TIOCGPTN): `/dev/pts/0` for number 0.
 */
export function ptsname(master: number): string {
  const number = new Uint8Array(4);
  ioctl(master, TIOCGPTN, 'TIOCGPTN', number);
  return `/dev/pts/${new DataView(number.buffer).getUint32(0, true)}`;
}

/**
 * Makes the terminal `fd` the controlling terminal of the calling process
 * (TIOCSCTTY), which must lead a session without one, as after setsid(2).
 * Throws EPERM otherwise.
 */
export function setControllingTerminal(fd: number): void {
  ioctl(fd, TIOCSCTTY, 'TIOCSCTTY', null);
}

/**
 * Hangs up the terminal open at `fd` (TIOCVHANGUP), as if its line dropped:
 * every open file of it, in any process, stops working, and a read blocked
 * on it returns end of file. On a pseudo-terminal master, a read that
 * another thread has in flight would otherwise keep the master open after
 * close(2), and the slave is hung up only once the master is released.
 * Needs CAP_SYS_ADMIN (EPERM).
 */
export function hangUpTerminal(fd: number): void {
  ioctl(fd, TIOCVHANGUP, 'TIOCVHANGUP', null);
}

/** Returns the window size of the terminal `fd` (TIOCGWINSZ). Throws ENOTTY when `fd` is not a terminal. */
export function getWindowSize(fd: number): WindowSize {
  const size = new Uint8Array(WINSIZE_SIZE);
  ioctl(fd, TIOCGWINSZ, 'TIOCGWINSZ', size);
  const view = new DataView(size.buffer);
  return { rows: view.getUint16(0, true), columns: view.getUint16(2, true) };
}

/**
 * Sets the window size of the terminal `fd` (TIOCSWINSZ). On a
 * pseudo-terminal master, the kernel sends SIGWINCH to the foreground
 * process group of the slave when the size changes.
 */
export function setWindowSize(fd: number, size: WindowSize): void {
  const bytes = new Uint8Array(WINSIZE_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, size.rows, true);
  view.setUint16(2, size.columns, true);
  ioctl(fd, TIOCSWINSZ, 'TIOCSWINSZ', bytes);
}

/** Returns whether `fd` is a terminal (isatty(3)): TCGETS succeeds only on one. */
export function isatty(fd: number): boolean {
  return loadLibc().ioctl(fd, TCGETS, new Uint8Array(TERMIOS_SIZE)) === 0;
}

/** Returns the attributes of the terminal `fd` as the kernel's struct termios (tcgetattr(3), TCGETS). */
export function tcgetattr(fd: number): Uint8Array {
  const termios = new Uint8Array(TERMIOS_SIZE);
  ioctl(fd, TCGETS, 'TCGETS', termios);
  return termios;
}

/** Sets the attributes of the terminal `fd` at once (tcsetattr(3) with TCSANOW, TCSETS). */
export function tcsetattr(fd: number, termios: Uint8Array): void {
  if (termios.byteLength !== TERMIOS_SIZE) {
    throw new RangeError(`termios must have ${TERMIOS_SIZE} bytes, got ${termios.byteLength}`);
  }
  ioctl(fd, TCSETS, 'TCSETS', Uint8Array.from(termios));
}

/**
 * Returns a copy of `termios` in raw mode, as cfmakeraw(3) makes it: no
 * line editing, echo, signal characters or output processing, 8-bit
 * characters, and a read returns as soon as one byte arrives.
 */
export function cfmakeraw(termios: Uint8Array): Uint8Array {
  const raw = Uint8Array.from(termios);
  const view = new DataView(raw.buffer);
  const update = (offset: number, change: (flags: number) => number) => {
    view.setUint32(offset, change(view.getUint32(offset, true)) >>> 0, true);
  };
  update(0, (iflag) => iflag & ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON));
  update(4, (oflag) => oflag & ~OPOST);
  update(12, (lflag) => lflag & ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN));
  update(8, (cflag) => (cflag & ~(CSIZE | PARENB)) | CS8);
  raw[C_CC + VMIN] = 1;
  raw[C_CC + VTIME] = 0;
  return raw;
}
