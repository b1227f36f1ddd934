/**
 * A worker thread's side of the pool (see threads.ts): instantiate the kernels over the shared
 * memory, join, then, each time its mailbox changes, claim and run shares of the current call
 * until none is left, until told to stop.
 * Browser-safe: a Node worker (thread-worker-node.ts) or a Web Worker calls serveKernels with
 * the WorkerInit it was given.
 */
import { instantiateKernels } from '@descent/kernels-wasm';
import { ARG_COUNT, ARGS_OFFSET, JOINED, MEMORY_PAGES, SPIN_MICROS, STOP, awaitChange, mailbox, runShares, type WorkerInit } from './threads.js';

/** Serves calls until the pool stops, then returns. Never throws: failures go to the caller. */
export function serveKernels(init: WorkerInit): void {
  const ints = new Int32Array(init.control, 0, ARGS_OFFSET / 4);
  const args = new Float64Array(init.control, ARGS_OFFSET, ARG_COUNT);
  const wasm = instantiateKernels(init.variant, { memory: init.memory, module: init.module });
  const slot = Atomics.add(ints, JOINED, 1) + 1;
  const box = mailbox(slot);
  // The mailbox starts at 0 and is bumped for each call this worker is asked to help with.
  let received = 0;
  let pages = init.memory.buffer.byteLength >>> 16;
  for (;;) {
    received = awaitChange(ints, box, received, Atomics.load(ints, SPIN_MICROS));
    if (Atomics.load(ints, STOP) !== 0) return;
    // The caller grew the memory since the last call: see the new pages before a kernel touches them.
    const now = Atomics.load(ints, MEMORY_PAGES);
    if (now !== pages) {
      init.memory.grow(0);
      pages = now;
    }
    // A failure is recorded for the caller, which shuts the pool down when it sees it.
    runShares(ints, wasm, args, slot);
  }
}
