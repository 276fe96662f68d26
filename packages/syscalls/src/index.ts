export * from './calls.js';
export { CAPABILITIES, type CapabilityName, capabilityMask, capabilityNames, isCapabilityName } from './capabilities.js';
export {
  type CapabilitySets,
  clearAmbientCapabilities,
  getCapabilities,
  limitBoundingSet,
  limitCapabilities,
  readBoundingSet,
  setCapabilities,
} from './capability-calls.js';
export * from './constants.js';
export { switchUser } from './credentials.js';
export { descriptorIo, MAX_RECEIVED_DESCRIPTORS, type ReceivedData, receiveDescriptors, sendDescriptors } from './descriptor-passing.js';
export { errnoName, SyscallError, type SyscallErrorDetails } from './errors.js';
export {
  canAccess,
  F_OK,
  fdIo,
  isDirectory,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_RDONLY,
  O_WRONLY,
  openFile,
  readFd,
  readTextFile,
  writeFd,
  X_OK,
} from './fd-io.js';
export { chmod, EEXIST, EINVAL, ENOENT, fchown, makedev, mkdir, mknod, readlink, S_IFBLK, S_IFCHR, S_IFIFO, symlink, UNCHANGED_ID } from './file-calls.js';
export {
  LOCK_EX,
  LOCK_FILE_MODE,
  LOCK_NB,
  LOCK_SH,
  LOCK_UN,
  type LockMode,
  type LockOptions,
  lockFile,
  unlockFile,
  withFileLock,
} from './file-lock.js';
export { type Libc, loadLibc } from './libc.js';
export { getcwd, getDumpable, pidfdOpen, setCloseOnExecFrom, setDumpable } from './process-calls.js';
export {
  CONTAINER_NAMESPACES,
  type ContainerRunOptions,
  type ContainerSpawnOptions,
  runInContainer,
  spawnInContainer,
} from './spawn-in-container.js';
export { type NamespaceSpawnOptions, runInNamespaces, spawnInNamespaces } from './spawn-in-namespaces.js';
export {
  type ChildExit,
  type PreparedSpawn,
  type ProcessSpawnOptions,
  prepareSpawn,
  reapChild,
  type SpawnOutcome,
  type SpawnStdio,
  type SpawnUser,
  spawnProcess,
} from './spawn-process.js';
export {
  cfmakeraw,
  getWindowSize,
  hangUpTerminal,
  isatty,
  O_NOCTTY,
  O_RDWR,
  ptsname,
  setControllingTerminal,
  setWindowSize,
  tcgetattr,
  tcsetattr,
  unlockpt,
  type WindowSize,
} from './terminal-calls.js';
export { ENODATA, lgetxattr, lsetxattr, XATTR_CREATE, XATTR_REPLACE } from './xattr-calls.js';
