import { createRequire } from 'node:module';

import type { Libc } from './libc.js';

// The Bun backend, through bun:ffi. bun:ffi has no variadic functions, so
// fcntl(2), prctl(2) and syscall(2) are declared with fixed integer
// arguments. On x86_64 and aarch64 Linux, integer and pointer arguments of
// a variadic call travel in the same registers as fixed ones. Strings go
// in as NUL-terminated buffers, and errno is read through glibc's
// __errno_location(), the address of the calling thread's errno.

interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: readonly string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => unknown>;
  };
  ptr(value: ArrayBufferView): number;
  read: { i32(pointer: unknown, offset: number): number };
  CString: new (pointer: unknown) => { toString(): string };
}

const int = 'i32';
const pointer = 'ptr';

// The C signatures, in bun:ffi's type names.
const DECLARATIONS = {
  __errno_location: { args: [], returns: pointer },
  unshare: { args: [int], returns: int },
  setns: { args: [int, int], returns: int },
  mount: { args: [pointer, pointer, pointer, 'u64', pointer], returns: int },
  umount2: { args: [pointer, int], returns: int },
  sethostname: { args: [pointer, 'u64'], returns: int },
  chdir: { args: [pointer], returns: int },
  fchdir: { args: [int], returns: int },
  chroot: { args: [pointer], returns: int },
  execve: { args: [pointer, pointer, pointer], returns: int },
  fcntl: { args: [int, int, int], returns: int },
  prctl: { args: [int, 'u64', 'u64', 'u64', 'u64'], returns: int },
  getpid: { args: [], returns: int },
  capget: { args: [pointer, pointer], returns: int },
  capset: { args: [pointer, pointer], returns: int },
  close: { args: [int], returns: int },
  read: { args: [int, pointer, 'u64'], returns: 'i64' },
  write: { args: [int, pointer, 'u64'], returns: 'i64' },
  open: { args: [pointer, int, int], returns: int },
  access: { args: [pointer, int], returns: int },
  flock: { args: [int, int], returns: int },
  dup2: { args: [int, int], returns: int },
  setsid: { args: [], returns: int },
  socketpair: { args: [int, int, int, pointer], returns: int },
  sendmsg: { args: [int, pointer, int], returns: 'i64' },
  recvmsg: { args: [int, pointer, int], returns: 'i64' },
  ioctl: { args: [int, 'u64', pointer], returns: int },
  fchown: { args: [int, 'u32', 'u32'], returns: int },
  signal: { args: [int, pointer], returns: pointer },
  sigprocmask: { args: [int, pointer, pointer], returns: int },
  syscall: { args: ['i64', 'i64', 'i64', 'i64'], returns: 'i64' },
  mkdir: { args: [pointer, 'u32'], returns: int },
  chmod: { args: [pointer, 'u32'], returns: int },
  mknod: { args: [pointer, 'u32', 'u64'], returns: int },
  symlink: { args: [pointer, pointer], returns: int },
  readlink: { args: [pointer, pointer, 'u64'], returns: 'i64' },
  setgroups: { args: ['u64', pointer], returns: int },
  setgid: { args: ['u32'], returns: int },
  setuid: { args: ['u32'], returns: int },
  lsetxattr: { args: [pointer, pointer, pointer, 'u64', int], returns: int },
  lgetxattr: { args: [pointer, pointer, pointer, 'u64'], returns: 'i64' },
  _exit: { args: [int], returns: 'void' },
  strerror: { args: [int], returns: pointer },
  getcwd: { args: [pointer, 'u64'], returns: pointer },
  posix_spawn: { args: [pointer, pointer, pointer, pointer, pointer, pointer], returns: int },
  posix_spawnattr_init: { args: [pointer], returns: int },
  posix_spawnattr_destroy: { args: [pointer], returns: int },
  posix_spawnattr_setflags: { args: [pointer, 'i16'], returns: int },
  posix_spawnattr_setsigmask: { args: [pointer, pointer], returns: int },
  posix_spawnattr_setsigdefault: { args: [pointer, pointer], returns: int },
  posix_spawn_file_actions_init: { args: [pointer], returns: int },
  posix_spawn_file_actions_destroy: { args: [pointer], returns: int },
  posix_spawn_file_actions_addopen: { args: [pointer, int, pointer, int, 'u32'], returns: int },
  posix_spawn_file_actions_adddup2: { args: [pointer, int, int], returns: int },
  waitpid: { args: [int, pointer, int], returns: int },
  getgroups: { args: [int, pointer], returns: int },
};

const cString = (value: string) => Buffer.from(`${value}\0`, 'utf8');
const cStringOrNull = (value: string | null) => (value === null ? null : cString(value));

/** Loads glibc with bun:ffi and declares the functions m-docker calls. */
export function openBunLibc(): Libc {
  const ffi = createRequire(import.meta.url)('bun:ffi') as BunFfi;
  const { symbols } = ffi.dlopen('libc.so.6', DECLARATIONS);
  const call = symbols as Record<keyof typeof DECLARATIONS, (...args: unknown[]) => number>;

  // execve needs char *argv[]: an array of pointers ending in NULL. The
  // buffers stay referenced from `strings` until the call returns.
  const pointerArray = (values: readonly string[]) => {
    const strings = values.map(cString);
    const array = new BigUint64Array(strings.length + 1);
    strings.forEach((item, index) => {
      array[index] = BigInt(ffi.ptr(item));
    });
    return { array, strings };
  };

  return {
    backend: 'bun:ffi',
    errno: () => ffi.read.i32(call.__errno_location(), 0),
    unshare: (flags) => call.unshare(flags),
    setns: (fd, nstype) => call.setns(fd, nstype),
    mount: (source, target, fstype, flags, data) =>
      call.mount(cStringOrNull(source), cString(target), cStringOrNull(fstype), flags, cStringOrNull(data)),
    umount2: (target, flags) => call.umount2(cString(target), flags),
    sethostname: (name, length) => call.sethostname(name, length),
    chdir: (path) => call.chdir(cString(path)),
    fchdir: (fd) => call.fchdir(fd),
    chroot: (path) => call.chroot(cString(path)),
    execve: (path, argv, envp) => {
      const args = pointerArray(argv);
      const env = pointerArray(envp);
      return call.execve(cString(path), args.array, env.array);
    },
    execvePrepared: (path, argv, envp) => call.execve(path, argv, envp),
    fcntl: (fd, command, argument) => call.fcntl(fd, command, argument),
    prctl: (option, argument) => call.prctl(option, argument, 0, 0, 0),
    prctlReadInt: (option, result) => call.prctl(option, BigInt(ffi.ptr(result)), 0, 0, 0),
    getpid: () => call.getpid(),
    capget: (header, data) => call.capget(header, data),
    capset: (header, data) => call.capset(header, data),
    close: (fd) => call.close(fd),
    read: (fd, buffer) => Number(call.read(fd, buffer, buffer.byteLength)),
    write: (fd, buffer) => Number(call.write(fd, buffer, buffer.byteLength)),
    open: (path, flags, mode) => call.open(cString(path), flags, mode),
    access: (path, mode) => call.access(cString(path), mode),
    flock: (fd, operation) => call.flock(fd, operation),
    dup2: (oldFd, newFd) => call.dup2(oldFd, newFd),
    setsid: () => call.setsid(),
    socketpair: (domain, type, protocol, fds) => call.socketpair(domain, type, protocol, fds),
    sendmsg: (fd, message, flags) => Number(call.sendmsg(fd, message, flags)),
    recvmsg: (fd, message, flags) => Number(call.recvmsg(fd, message, flags)),
    ioctl: (fd, request, argument) => call.ioctl(fd, request, argument),
    address: (buffer) => BigInt(ffi.ptr(buffer)),
    fchown: (fd, uid, gid) => call.fchown(fd, uid, gid),
    signalDefault: (signum) => {
      call.signal(signum, null);
    },
    sigprocmask: (how, set) => call.sigprocmask(how, set, null),
    pivotRoot: (number, newRoot, putOld) => {
      // Both buffers stay in local variables, so they outlive the call.
      const newRootBytes = cString(newRoot);
      const putOldBytes = cString(putOld);
      return Number(call.syscall(number, ffi.ptr(newRootBytes), ffi.ptr(putOldBytes), 0));
    },
    mkdir: (path, mode) => call.mkdir(cString(path), mode),
    chmod: (path, mode) => call.chmod(cString(path), mode),
    mknod: (path, mode, device) => call.mknod(cString(path), mode, device),
    symlink: (target, linkPath) => call.symlink(cString(target), cString(linkPath)),
    readlink: (path, buffer) => Number(call.readlink(cString(path), buffer, buffer.byteLength)),
    setgroups: (groups) => call.setgroups(groups.length, groups),
    setgid: (gid) => call.setgid(gid),
    setuid: (uid) => call.setuid(uid),
    // bun:ffi rejects a pointer to an empty buffer (ERR_INVALID_ARG_TYPE),
    // so NULL goes in instead. With size 0 the calls touch no bytes.
    lsetxattr: (path, name, value, flags) =>
      call.lsetxattr(cString(path), cString(name), value.byteLength === 0 ? null : value, value.byteLength, flags),
    lgetxattr: (path, name, buffer) =>
      Number(call.lgetxattr(cString(path), cString(name), buffer.byteLength === 0 ? null : buffer, buffer.byteLength)),
    closeRange: (number, first, last, flags) => Number(call.syscall(number, first, last, flags)),
    pidfdOpen: (number, pid, flags) => Number(call.syscall(number, pid, flags, 0)),
    // getcwd(3) returns NULL on failure, which bun:ffi gives as null.
    getcwd: (buffer) => (call.getcwd(buffer, buffer.byteLength) === null ? -1 : 0),
    posixSpawn: (pid, path, fileActions, attributes, argv, envp) => call.posix_spawn(pid, path, fileActions, attributes, argv, envp),
    posixSpawnattrInit: (attributes) => call.posix_spawnattr_init(attributes),
    posixSpawnattrDestroy: (attributes) => call.posix_spawnattr_destroy(attributes),
    posixSpawnattrSetflags: (attributes, flags) => call.posix_spawnattr_setflags(attributes, flags),
    posixSpawnattrSetsigmask: (attributes, set) => call.posix_spawnattr_setsigmask(attributes, set),
    posixSpawnattrSetsigdefault: (attributes, set) => call.posix_spawnattr_setsigdefault(attributes, set),
    posixSpawnFileActionsInit: (fileActions) => call.posix_spawn_file_actions_init(fileActions),
    posixSpawnFileActionsDestroy: (fileActions) => call.posix_spawn_file_actions_destroy(fileActions),
    posixSpawnFileActionsAddopen: (fileActions, fd, path, flags, mode) =>
      call.posix_spawn_file_actions_addopen(fileActions, fd, cString(path), flags, mode),
    posixSpawnFileActionsAdddup2: (fileActions, fd, newFd) => call.posix_spawn_file_actions_adddup2(fileActions, fd, newFd),
    waitpid: (pid, status, options) => call.waitpid(pid, status, options),
    setThreadIds: (number, real, effective, saved) => Number(call.syscall(number, real, effective, saved)),
    getgroups: (groups) => call.getgroups(groups.length, groups.length === 0 ? null : groups),
    // An empty list goes in as NULL, which bun:ffi's ptr() refuses to give.
    setThreadGroups: (number, groups) =>
      Number(call.syscall(number, groups.length, groups.length === 0 ? 0 : ffi.ptr(groups), 0)),
    _exit: (status) => call._exit(status) as never,
    strerror: (errno) => new ffi.CString(call.strerror(errno)).toString(),
  };
}
