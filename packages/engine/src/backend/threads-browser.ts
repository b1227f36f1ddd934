/**
 * A browser's ThreadHost: the pool's workers are Web Workers running thread-worker-browser.js,
 * each posted its WorkerInit (the shared memory, the compiled module, the control block) once.
 * The page must be cross-origin isolated (served with `Cross-Origin-Opener-Policy: same-origin`
 * and `Cross-Origin-Embedder-Policy: require-corp`) to have SharedArrayBuffer; where it is not,
 * the engine runs its kernels on one thread and says so once.
 *
 *   import KernelWorker from '@descent/engine/thread-worker-browser?worker'; // Vite's worker import
 *   setThreadHost(webWorkerThreadHost(() => new KernelWorker()));
 *   setThreads('auto');                                                      // navigator.hardwareConcurrency
 *
 * A page's main thread may not block (Atomics.wait), so there the caller spins while the workers
 * finish their shares; train in a dedicated worker of the page's own to keep the page responsive.
 */
import type { ThreadHost, WorkerInit } from './threads.js';

/** What the host needs of a Web Worker (the DOM's Worker has it). */
export interface WebWorkerLike {
  postMessage(message: WorkerInit): void;
  terminate(): void;
  addEventListener(type: 'error' | 'messageerror', listener: (event: { message?: string }) => void): void;
}

export interface WebWorkerThreadHostOptions {
  /** Cores to count on (default navigator.hardwareConcurrency). */
  cores?: number;
  /** Whether the engine's thread may block: true inside a worker, false on a page's main thread (the default is detected). */
  canBlock?: boolean;
}

/** A ThreadHost that starts each pool worker with `createWorker()` (a worker running thread-worker-browser.js). */
export function webWorkerThreadHost(createWorker: () => WebWorkerLike, options: WebWorkerThreadHostOptions = {}): ThreadHost {
  const scope = globalThis as { WorkerGlobalScope?: unknown; navigator?: { hardwareConcurrency?: number } };
  return {
    cores: () => options.cores ?? Math.max(1, scope.navigator?.hardwareConcurrency ?? 1),
    canBlock: options.canBlock ?? scope.WorkerGlobalScope !== undefined,
    start(init, onError) {
      const worker = createWorker();
      worker.addEventListener('error', (event) => onError(event.message || 'the worker script failed to load'));
      worker.addEventListener('messageerror', () => onError('the worker could not receive the shared memory (is the page cross-origin isolated?)'));
      worker.postMessage(init);
      return { terminate: () => worker.terminate() };
    },
  };
}
