/**
 * Which Kernels the engine runs on. 'wasm' (SIMD) is the default; 'ts' is the readable
 * reference. If the runtime cannot run WASM SIMD, the engine falls back to 'ts' and says so once.
 */
import type { Kernels } from './kernels.js';
import { createReferenceKernels } from './reference.js';
import { createWasmKernels } from './wasm.js';

export type BackendName = 'wasm' | 'ts';

let active: Kernels | undefined;
/** One instance per name: tensors made on a backend stay valid when it is selected again. */
const created = new Map<BackendName, Kernels>();
let fallbackReason: string | undefined;
let warn: (message: string) => void = (message) => console.warn(message);

/** The kernels every op calls. */
export function kernels(): Kernels {
  return (active ??= createBackend('wasm'));
}

/**
 * Switch backend by name, or install a specific Kernels object (e.g. float64 reference kernels
 * for gradient checks). Returns the backend now active.
 */
export function setBackend(backend: BackendName | Kernels): Kernels {
  active = typeof backend === 'string' ? createBackend(backend) : backend;
  return active;
}

export function backendName(): BackendName {
  return kernels().name;
}

/** Why 'wasm' was asked for but 'ts' is running, if it happened. */
export function backendFallbackReason(): string | undefined {
  return fallbackReason;
}

/** Where the one-line fallback notice goes (the CLI routes it to stderr; tests capture it). */
export function onBackendWarning(handler: (message: string) => void): void {
  warn = handler;
}

function createBackend(name: BackendName): Kernels {
  let backend = created.get(name);
  if (!backend) {
    backend = name === 'ts' ? createReferenceKernels('float32') : createWasmOrFallBack();
    created.set(name, backend);
  }
  return backend;
}

function createWasmOrFallBack(): Kernels {
  try {
    return createWasmKernels();
  } catch (error) {
    fallbackReason = error instanceof Error ? error.message : String(error);
    warn(`descent: WebAssembly SIMD kernels unavailable (${fallbackReason}); using the reference TypeScript kernels`);
    return created.get('ts') ?? createBackend('ts');
  }
}

export type { Kernels, Storage, ByteStorage, FloatArray, Window2d } from './kernels.js';
export { createReferenceKernels } from './reference.js';
