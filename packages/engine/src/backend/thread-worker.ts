/**
 * A worker thread's side of the pool (see threads.ts): instantiate the kernels over the shared
 * memory, join, then run its share of every task posted to its mailbox until told to stop.
 * Browser-safe: a Node worker (thread-worker-node.ts) or a Web Worker calls serveKernels with
 * the WorkerInit it was given.
 */
import { instantiateKernels } from '@descent/kernels-wasm';
import {
  ARG_COUNT, ARGS_OFFSET, CALLER_WAITING, FAILED, PENDING, SHARES, STOP, TASK,
  JOINED, awaitChange, mailbox, writeError, type WorkerInit,
} from './threads.js';
import { TASKS } from './thread-tasks.js';

/** Serves tasks until the pool stops, then returns. Never throws: failures go to the caller. */
export function serveKernels(init: WorkerInit): void {
  const ints = new Int32Array(init.control, 0, ARGS_OFFSET / 4);
  const args = new Float64Array(init.control, ARGS_OFFSET, ARG_COUNT);
  const wasm = instantiateKernels(init.variant, { memory: init.memory, module: init.module });
  const slot = Atomics.add(ints, JOINED, 1) + 1;
  const box = mailbox(slot);
  // The mailbox starts at 0 and is bumped once per task this worker is counted in.
  let received = 0;
  for (;;) {
    received = awaitChange(ints, box, received, init.spinMicros);
    if (Atomics.load(ints, STOP) !== 0) return;
    try {
      TASKS[ints[TASK]](wasm, args, slot, ints[SHARES]);
    } catch (error) {
      // The first failure is reported; the caller shuts the pool down when it sees it.
      if (Atomics.compareExchange(ints, FAILED, 0, slot) === 0) {
        writeError(init.control, error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      }
    }
    if (Atomics.sub(ints, PENDING, 1) === 1 && Atomics.load(ints, CALLER_WAITING) !== 0) Atomics.notify(ints, PENDING);
  }
}
