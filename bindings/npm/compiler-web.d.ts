// Type declarations for `rolescope/compiler/web`: the same API as `rolescope/compiler`
// (compiler.d.ts), loaded explicitly: `await init()` (fetches `compiler/web/rolescope_wasm_bg.wasm`
// next to the module) or `initSync({ module })` before the first call.

export * from "./compiler.js";

/** Where to load the module from: a URL or path, a `Response`, the bytes, or a compiled module. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/** The bytes or a compiled module, for `initSync`. */
export type SyncInitInput = BufferSource | WebAssembly.Module;

/** The instantiated module's exports (its memory; the rest is internal). */
export interface InitOutput {
  readonly memory: WebAssembly.Memory;
}

/**
 * Load and instantiate the module; resolves once the API is ready. Without an argument it
 * fetches `rolescope_wasm_bg.wasm` from beside this file (`new URL(..., import.meta.url)`).
 */
export default function init(
  module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<InitOutput>;

/** Instantiate the module synchronously from its bytes or a compiled module. */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;
