/**
 * Entry of a Web Worker of the kernels' pool (started by threads-browser.ts): serves kernels with
 * the WorkerInit it is posted, until the pool stops or terminates it.
 */
import { serveKernels } from './thread-worker.js';
import type { WorkerInit } from './threads.js';

self.addEventListener('message', (event: MessageEvent<WorkerInit>) => serveKernels(event.data), { once: true });
