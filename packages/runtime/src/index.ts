export { currentJsRuntime, type JsRuntime } from './current.js';
export {
  type BunLocation,
  type BunLookup,
  bunPackageNames,
  type FindBunOptions,
  findBun,
  isSupportedVersion,
  MIN_BUN_VERSION,
} from './find-bun.js';
export {
  BUN_FLAGS,
  parseRuntimeChoice,
  RUNTIME_CHOICES,
  type RuntimeChoice,
  RuntimeUnavailableError,
  type SelectedRuntime,
  type SelectRuntimeOptions,
  scriptArguments,
  scriptCommand,
  selectRuntime,
} from './select-runtime.js';
export {
  type ProcessExit,
  type StartedProcess,
  type StartProcessOptions,
  type StdioEntry,
  startProcess,
} from './start-process.js';
