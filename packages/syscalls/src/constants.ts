// Values from the Linux UAPI headers (<linux/sched.h>, <linux/mount.h>,
// <linux/prctl.h>, <fcntl.h>); they are the same on x86_64 and aarch64.

/** Namespace flags for unshare(2), clone(2) and setns(2). */
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_FS = 0x00000200;

/** Mount flags for mount(2). */
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;

/** Flags for umount2(2). */
export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;

/** prctl(2) option that sets the signal sent to this process when its parent thread exits. */
export const PR_SET_PDEATHSIG = 1;
export const PR_GET_PDEATHSIG = 2;

/** prctl(2) options for the dumpable flag, which guards /proc/PID access and core dumps. */
export const PR_GET_DUMPABLE = 3;
export const PR_SET_DUMPABLE = 4;

/** fcntl(2) commands and flags. */
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;

/** socket(2) values for socketpair. */
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;

/** The namespaces m-docker creates, with their clone flag and their name under /proc/PID/ns. */
export const NAMESPACES = {
  uts: { flag: CLONE_NEWUTS, procName: 'uts' },
  ipc: { flag: CLONE_NEWIPC, procName: 'ipc' },
  net: { flag: CLONE_NEWNET, procName: 'net' },
  mnt: { flag: CLONE_NEWNS, procName: 'mnt' },
  // unshare(CLONE_NEWPID) changes the namespace of the caller's next child,
  // which /proc/PID/ns/pid_for_children shows.
  pid: { flag: CLONE_NEWPID, procName: 'pid_for_children' },
  cgroup: { flag: CLONE_NEWCGROUP, procName: 'cgroup' },
} as const;

export type NamespaceName = keyof typeof NAMESPACES;

// Numbers for calls that glibc 2.36 has no wrapper for, or whose wrapper
// changes every thread of the process (asm/unistd.h).
const SYSCALL_NUMBERS = {
  x64: { pivot_root: 155, close_range: 436, pidfd_open: 434, setresuid: 117, setresgid: 119, setgroups: 116 },
  arm64: { pivot_root: 41, close_range: 436, pidfd_open: 434, setresuid: 147, setresgid: 149, setgroups: 159 },
} as const;

export type SyscallName = keyof (typeof SYSCALL_NUMBERS)['x64'];

/** Returns the number of a raw system call on this CPU, or undefined on an architecture m-docker does not know. */
export function syscallNumber(name: SyscallName, arch: string = process.arch): number | undefined {
  const table = SYSCALL_NUMBERS[arch as keyof typeof SYSCALL_NUMBERS];
  return table?.[name];
}
