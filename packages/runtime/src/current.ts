/**
 * The JavaScript runtime this process runs on. m-docker runs on Node and on
 * Bun from the same bundles; code that must differ between them checks here.
 */
export type JsRuntime = 'node' | 'bun';

/** Returns 'bun' under Bun (which sets process.versions.bun) and 'node' otherwise. */
export function currentJsRuntime(): JsRuntime {
  return typeof process.versions.bun === 'string' ? 'bun' : 'node';
}
