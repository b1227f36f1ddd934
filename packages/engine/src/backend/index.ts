/**
 * Which Kernels the engine runs on. 'wasm' (SIMD) is the default; 'ts' is the readable
 * reference. If the runtime cannot run WASM SIMD, the engine falls back to 'ts' and says so once.
 *
 * Threads: the WASM kernels use up to `setThreads(n)` threads (default 'auto': one per core),
 * each call as many as its work pays for. Results are the same for any number of threads. Where
 * threads cannot run (no SharedArrayBuffer, e.g. a browser page without cross-origin isolation,
 * or no ThreadHost installed), kernels run on one thread and, if more were asked for, say so once.
 */
import type { Kernels } from './kernels.js';
import { createReferenceKernels } from './reference.js';
import { threadHost } from './threads.js';
import { createWasmKernels, type WasmKernels } from './wasm.js';

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

/** Runs `fn` with `k` as the kernels every op calls (a step being recorded), then restores them. */
export function withKernels<T>(k: Kernels, fn: () => T): T {
  const before = active;
  active = k;
  try {
    return fn();
  } finally {
    active = before;
  }
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

/** 'auto', or a positive whole number of threads. */
export type ThreadCount = number | 'auto';

let requestedThreads: ThreadCount = 'auto';
let threadsNoticeGiven = false;

/**
 * How many threads the WASM kernels may use: 'auto' (the default) is one per core. 1 keeps every
 * kernel on the calling thread. Returns the number the active backend uses now (1 for the 'ts'
 * backend, or where threads cannot run). Pool workers start in the background; kernels use
 * those that have started (see threadsReady).
 */
export function setThreads(count: ThreadCount): number {
  if (count !== 'auto' && !(Number.isInteger(count) && count >= 1)) {
    throw new RangeError(`threads must be 'auto' or a positive whole number, got ${String(count)}`);
  }
  requestedThreads = count;
  const wasm = created.get('wasm');
  if (wasm?.name === 'wasm') applyThreads(wasm as WasmKernels);
  return threadCount();
}

/** Threads the active backend's kernels may use. */
export function threadCount(): number {
  const active = kernels();
  return active.name === 'wasm' && 'threads' in active ? (active as WasmKernels).threads : 1;
}

/** Resolves once every worker thread of the active backend has started. */
export function threadsReady(): Promise<void> {
  const active = kernels();
  return active.name === 'wasm' && 'threadsReady' in active ? (active as WasmKernels).threadsReady() : Promise.resolve();
}

/** The number 'auto' stands for here: the cores of this machine, or 1 where threads cannot start. */
export function defaultThreads(): number {
  return threadHost()?.cores() ?? 1;
}

function applyThreads(backend: WasmKernels): void {
  const wanted = requestedThreads === 'auto' ? defaultThreads() : requestedThreads;
  const got = backend.setThreads(wanted);
  if (got < wanted && backend.threadsUnavailable && !threadsNoticeGiven) {
    threadsNoticeGiven = true;
    warn(`descent: kernels run on one thread (${backend.threadsUnavailable})`);
  }
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
    const backend = createWasmKernels();
    applyThreads(backend);
    return backend;
  } catch (error) {
    fallbackReason = error instanceof Error ? error.message : String(error);
    warn(`descent: WebAssembly SIMD kernels unavailable (${fallbackReason}); using the reference TypeScript kernels`);
    return created.get('ts') ?? createBackend('ts');
  }
}

export type { Kernels, Storage, ByteStorage, FloatArray, Window2d } from './kernels.js';
export { createReferenceKernels } from './reference.js';
export { createWasmKernels, type WasmKernels, type WasmKernelsOptions } from './wasm.js';
export { MAX_SPIN_MICROS, setThreadHost, ThreadError, type ShareTiming, type ThreadHost, type WorkerInit, type WorkerHandle } from './threads.js';
export { serveKernels } from './thread-worker.js';
export { webWorkerThreadHost, type WebWorkerLike, type WebWorkerThreadHostOptions } from './threads-browser.js';
