import { createRequire } from 'node:module';

import type * as Koffi from 'koffi';

import type { Libc } from './libc.js';

// The Node backend. koffi is required here, on first use, and not imported
// at the top of the module: under Bun it is never loaded, and its native
// addon costs about 9 ms to load.

/** Loads glibc with koffi and declares the functions m-docker calls. */
export function openKoffiLibc(): Libc {
  // koffi finds its native addon relative to its own folder, which must be
  // the real one: seen through pnpm's node_modules symlink, the addon's path
  // does not resolve, and Node 20 sometimes keeps that symlinked path.
  const require = createRequire(import.meta.url);
  const { realpathSync } = require('node:fs') as typeof import('node:fs');
  const koffi = require(realpathSync(require.resolve('koffi'))) as typeof Koffi;
  const lib = koffi.load('libc.so.6');

  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
  const prctl = lib.func('int prctl(int option, ...)');
  const syscall = lib.func('long syscall(long number, ...)');
  const signal = lib.func('void *signal(int signum, void *handler)');
  const sigprocmask = lib.func('int sigprocmask(int how, const uint8_t *set, uint8_t *oldset)');
  const execve = lib.func('int execve(const char *path, const char **argv, const char **envp)');
  const execvePrepared = lib.func('int execve(const uint8_t *path, const uint64_t *argv, const uint64_t *envp)');
  const read = lib.func('long read(int fd, _Out_ uint8_t *buf, size_t count)');
  const write = lib.func('long write(int fd, const uint8_t *buf, size_t count)');
  const readlink = lib.func('long readlink(const char *path, _Out_ uint8_t *buf, size_t size)');
  const setgroups = lib.func('int setgroups(size_t size, const uint32_t *list)');
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)');
  const lsetxattr = lib.func(
    'int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)',
  );
  const lgetxattr = lib.func('long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)');
  const getcwd = lib.func('void *getcwd(_Out_ uint8_t *buf, size_t size)');
  const posixSpawn = lib.func(
    'int posix_spawn(_Out_ int *pid, const uint8_t *path, const uint8_t *actions, const uint8_t *attributes, const uint64_t *argv, const uint64_t *envp)',
  );
  const getgroups = lib.func('int getgroups(int size, _Out_ uint32_t *list)');
  const addopen = lib.func(
    'int posix_spawn_file_actions_addopen(uint8_t *actions, int fd, const char *path, int flags, uint32_t mode)',
  );

  return {
    backend: 'koffi',
    errno: () => koffi.errno(),
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
    // koffi converts each array of strings to a NULL-terminated char *[].
    execve: (path, argv, envp) => execve(path, [...argv, null], [...envp, null]),
    execvePrepared: (path, argv, envp) => execvePrepared(path, argv, envp),
    fcntl: (fd, command, argument) => fcntl(fd, command, 'int', argument),
    prctl: (option, argument) =>
      prctl(option, 'unsigned long', argument, 'unsigned long', 0, 'unsigned long', 0, 'unsigned long', 0),
    prctlReadInt: (option, result) => prctl(option, 'int *', result),
    getpid: lib.func('int getpid(void)'),
    capget: lib.func('int capget(uint32_t *header, _Inout_ uint32_t *data)'),
    capset: lib.func('int capset(uint32_t *header, const uint32_t *data)'),
    close: lib.func('int close(int fd)'),
    read: (fd, buffer) => read(fd, buffer, buffer.byteLength),
    write: (fd, buffer) => write(fd, buffer, buffer.byteLength),
    open: lib.func('int open(const char *path, int flags, int mode)'),
    access: lib.func('int access(const char *path, int mode)'),
    flock: lib.func('int flock(int fd, int operation)'),
    dup2: lib.func('int dup2(int oldfd, int newfd)'),
    setsid: lib.func('int setsid(void)'),
    socketpair: lib.func('int socketpair(int domain, int type, int protocol, int *sv)'),
    sendmsg: lib.func('long sendmsg(int fd, const uint8_t *msg, int flags)'),
    recvmsg: lib.func('long recvmsg(int fd, _Inout_ uint8_t *msg, int flags)'),
    ioctl: (fd, request, argument) => ioctl(fd, request, 'uint8_t *', argument),
    address: (buffer) => koffi.address(buffer),
    fchown: lib.func('int fchown(int fd, uint32_t owner, uint32_t group)'),
    signalDefault: (signum) => {
      signal(signum, null);
    },
    sigprocmask: (how, set) => sigprocmask(how, set, null),
    pivotRoot: (number, newRoot, putOld) => syscall(number, 'const char *', newRoot, 'const char *', putOld),
    mkdir: lib.func('int mkdir(const char *path, uint32_t mode)'),
    chmod: lib.func('int chmod(const char *path, uint32_t mode)'),
    mknod: lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
    symlink: lib.func('int symlink(const char *target, const char *linkpath)'),
    readlink: (path, buffer) => readlink(path, buffer, buffer.byteLength),
    setgroups: (groups) => setgroups(groups.length, groups),
    setgid: lib.func('int setgid(uint32_t gid)'),
    setuid: lib.func('int setuid(uint32_t uid)'),
    lsetxattr: (path, name, value, flags) => lsetxattr(path, name, value, value.byteLength, flags),
    // An empty buffer goes in as NULL, so lgetxattr(2) returns only the length.
    lgetxattr: (path, name, buffer) =>
      lgetxattr(path, name, buffer.byteLength === 0 ? null : buffer, buffer.byteLength),
    closeRange: (number, first, last, flags) =>
      syscall(number, 'unsigned int', first, 'unsigned int', last, 'unsigned int', flags),
    pidfdOpen: (number, pid, flags) => syscall(number, 'int', pid, 'unsigned int', flags),
    // getcwd(3) returns NULL on failure and `buf` on success.
    getcwd: (buffer) => (getcwd(buffer, buffer.byteLength) === null ? -1 : 0),
    posixSpawn: (pid, path, fileActions, attributes, argv, envp) => posixSpawn(pid, path, fileActions, attributes, argv, envp),
    posixSpawnattrInit: lib.func('int posix_spawnattr_init(uint8_t *attributes)'),
    posixSpawnattrDestroy: lib.func('int posix_spawnattr_destroy(uint8_t *attributes)'),
    posixSpawnattrSetflags: lib.func('int posix_spawnattr_setflags(uint8_t *attributes, short flags)'),
    posixSpawnattrSetsigmask: lib.func('int posix_spawnattr_setsigmask(uint8_t *attributes, const uint8_t *set)'),
    posixSpawnattrSetsigdefault: lib.func('int posix_spawnattr_setsigdefault(uint8_t *attributes, const uint8_t *set)'),
    posixSpawnFileActionsInit: lib.func('int posix_spawn_file_actions_init(uint8_t *actions)'),
    posixSpawnFileActionsDestroy: lib.func('int posix_spawn_file_actions_destroy(uint8_t *actions)'),
    posixSpawnFileActionsAddopen: (fileActions, fd, path, flags, mode) => addopen(fileActions, fd, path, flags, mode),
    posixSpawnFileActionsAdddup2: lib.func('int posix_spawn_file_actions_adddup2(uint8_t *actions, int fd, int newfd)'),
    waitpid: lib.func('int waitpid(int pid, _Out_ int *status, int options)'),
    setThreadIds: (number, real, effective, saved) =>
      syscall(number, 'unsigned int', real, 'unsigned int', effective, 'unsigned int', saved),
    getgroups: (groups) => getgroups(groups.length, groups.length === 0 ? null : groups),
    setThreadGroups: (number, groups) => syscall(number, 'size_t', groups.length, 'const uint32_t *', groups),
    _exit: lib.func('void _exit(int status)') as unknown as (status: number) => never,
    strerror: lib.func('const char *strerror(int errnum)'),
  };
}
