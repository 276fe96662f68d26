import koffi, { type LibraryHandle } from 'koffi';

import { fallbackDescriber, SyscallError } from './errors.js';

/**
 * The libc functions m-docker calls, declared once through koffi. Each
 * returns -1 (or a negative long) on failure with errno set; callers read
 * `koffi.errno()` on the very next line, before any other call can change it.
 */
export interface Libc {
  unshare(flags: number): number;
  setns(fd: number, nstype: number): number;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  sethostname(name: Buffer, length: number): number;
  chdir(path: string): number;
  fchdir(fd: number): number;
  chroot(path: string): number;
  execve(path: string, argv: (string | null)[], envp: (string | null)[]): number;
  fcntl(fd: number, cmd: number, ...typedArgs: unknown[]): number;
  prctl(option: number, ...typedArgs: unknown[]): number;
  getpid(): number;
  close(fd: number): number;
  signal(signum: number, handler: null): unknown;
  sigprocmask(how: number, set: Buffer, oldset: null): number;
  syscall(number: number, ...typedArgs: unknown[]): number;
  _exit(status: number): never;
  strerror(errno: number): string;
}

let libc: Libc | undefined;

/**
 * Reads the calling thread's errno now. koffi does not save errno per
 * synchronous call, so callers read it on the line right after the failing
 * call, before other native code can change it.
 */
export function lastErrno(): number {
  return koffi.errno();
}

/** Loads glibc and declares the functions, once; throws a SyscallError (ENOSYS) outside Linux. */
export function loadLibc(platform: NodeJS.Platform = process.platform): Libc {
  if (platform !== 'linux') {
    throw new SyscallError(
      { syscall: 'dlopen', errno: 0, code: 'ENOSYS' },
      `m-docker needs Linux namespaces, but this platform is ${platform}`,
    );
  }
  if (libc) return libc;

  let lib: LibraryHandle;
  try {
    lib = koffi.load('libc.so.6');
  } catch (error) {
    throw new SyscallError(
      { syscall: 'dlopen', errno: 0, code: 'ENOSYS', path: 'libc.so.6' },
      `cannot load glibc (libc.so.6): ${(error as Error).message}`,
      { cause: error },
    );
  }
  libc = {
    unshare: lib.func('int unshare(int flags)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    mount: lib.func(
      'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
    ),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    sethostname: lib.func('int sethostname(const uint8_t *name, size_t len)'),
    chdir: lib.func('int chdir(const char *path)'),
    fchdir: lib.func('int fchdir(int fd)'),
    chroot: lib.func('int chroot(const char *path)'),
    execve: lib.func('int execve(const char *path, const char **argv, const char **envp)'),
    fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
    prctl: lib.func('int prctl(int option, ...)'),
    getpid: lib.func('int getpid(void)'),
    close: lib.func('int close(int fd)'),
    signal: lib.func('void *signal(int signum, void *handler)'),
    sigprocmask: lib.func('int sigprocmask(int how, const uint8_t *set, uint8_t *oldset)'),
    syscall: lib.func('long syscall(long number, ...)'),
    _exit: lib.func('void _exit(int status)'),
    strerror: lib.func('const char *strerror(int errnum)'),
  } as unknown as Libc;
  const loaded = libc;
  fallbackDescriber.describe = (errno) => loaded.strerror(errno);
  return libc;
}
