export * from './calls.js';
export * from './constants.js';
export { errnoName, SyscallError, type SyscallErrorDetails } from './errors.js';
export { type Libc, loadLibc } from './libc.js';
export { type NamespaceSpawnOptions, runInNamespaces, spawnInNamespaces } from './spawn-in-namespaces.js';
