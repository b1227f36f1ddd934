/** Entry of a Node worker thread of the kernels' pool (started by threads-node.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { serveKernels } from './thread-worker.js';
import type { WorkerInit } from './threads.js';

serveKernels(workerData as WorkerInit);
parentPort?.close();
