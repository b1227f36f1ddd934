/**
 * Node's ThreadHost: pool workers are worker_threads running thread-worker-node.js. They are
 * unref'd, so a process whose work is done exits without closing the pool first.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ThreadHost, WorkerHandle, WorkerInit } from './threads.js';

/**
 * The worker's script, next to this module once compiled. When this module runs from its
 * TypeScript source (the test runner), workers run the compiled copy in dist/.
 */
const WORKER_SCRIPT = ((): URL => {
  const sibling = new URL('./thread-worker-node.js', import.meta.url);
  return existsSync(fileURLToPath(sibling)) ? sibling : new URL('../../dist/backend/thread-worker-node.js', import.meta.url);
})();

export const nodeThreadHost: ThreadHost = {
  cores: () => availableParallelism(),
  canBlock: true,
  start(init: WorkerInit, onError: (message: string) => void): WorkerHandle {
    // No inherited Node options: workers only run kernels, and some options (--input-type) stop a worker from starting.
    const worker = new Worker(WORKER_SCRIPT, { workerData: init, execArgv: [] });
    let stopping = false;
    worker.on('error', (error) => onError(error instanceof Error ? `${error.name}: ${error.message}` : String(error)));
    worker.on('exit', (code) => {
      if (!stopping && code !== 0) onError(`exited with code ${code}`);
    });
    worker.unref();
    return {
      terminate() {
        stopping = true;
        void worker.terminate();
      },
    };
  },
};
