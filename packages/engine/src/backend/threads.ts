/**
 * The thread pool behind the WASM backend's parallel kernels: one shared WebAssembly memory,
 * one kernels instance per thread, and a small control block of shared integers.
 *
 *   caller (share 0)                         worker w (share w), looping in serveKernels
 *   ───────────────────────────────          ────────────────────────────────────────────
 *   write task id, shares, arguments
 *   pending = shares - 1
 *   mailbox[w] += 1 for w < shares  ───────→ sees its mailbox change (spinning, or woken)
 *   run share 0 of the task                  run share w of the task
 *   wait until pending = 0  ←──────────────  pending -= 1
 *
 * Nothing is posted per call: a call costs a few atomic operations and, when a worker had gone
 * to sleep, one notify. Workers spin for a while after each task (training calls kernels every
 * few microseconds) and then sleep in Atomics.wait, so an idle pool costs no CPU.
 *
 * Every task splits its output between the shares and each output element is computed by one
 * thread exactly as one thread computes it, so results never depend on the number of threads
 * (see thread-tasks.ts). A share may be empty.
 *
 * This module is browser-safe: how workers are started is a ThreadHost's business (Node's is in
 * threads-node.ts; a browser one starts Web Workers that call serveKernels).
 */
import type { KernelExports, KernelVariant } from '@descent/kernels-wasm';
import { DescentError } from '../errors.js';
import { TASK_NAMES, TASKS } from './thread-tasks.js';

// ---- the control block: Int32 words, then float64 arguments, then an error message ----------
// Words that different threads write sit on different 64-byte cache lines.

/** Workers still running the current task. */
export const PENDING = 0;
export const TASK = 16;
/** Threads taking part in the current task: the caller (share 0) and workers of slot < SHARES. */
export const SHARES = 17;
export const STOP = 18;
/** Workers that have joined; a worker's slot is its join number (1, 2, …). */
export const JOINED = 19;
/** Non-zero while the caller sleeps on PENDING. */
export const CALLER_WAITING = 20;
/** Slot of the first worker that failed (0: none), and the byte length of its message. */
export const FAILED = 21;
export const ERROR_LENGTH = 22;
/**
 * Each worker's mailbox: a counter the caller bumps to hand it a task (so a worker wakes only
 * for tasks it takes part in), and a flag it sets while asleep on it.
 */
export function mailbox(slot: number): number {
  return 16 * (1 + slot);
}
export const MAX_THREADS = 64;
const CONTROL_INTS = mailbox(MAX_THREADS);
export const ARGS_OFFSET = CONTROL_INTS * 4;
/** Float64 arguments of a task (pointers and sizes are exact in a float64). */
export const ARG_COUNT = 32;
export const ERROR_OFFSET = ARGS_OFFSET + ARG_COUNT * 8;
export const ERROR_BYTES = 1024;
const CONTROL_BYTES = ERROR_OFFSET + ERROR_BYTES;

/** What a worker needs to serve kernels: everything is shared, nothing is copied per call. */
export interface WorkerInit {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  variant: KernelVariant;
  control: SharedArrayBuffer;
  /** How long a worker spins for the next task before it sleeps. */
  spinMicros: number;
}

/** A started worker. */
export interface WorkerHandle {
  terminate(): void;
}

/**
 * How threads are started where the engine runs: worker_threads in Node (threads-node.ts),
 * Web Workers in a browser. A worker calls serveKernels(init) from thread-worker.ts.
 */
export interface ThreadHost {
  /** Logical cores of this machine. */
  cores(): number;
  /** Whether the calling thread may block in Atomics.wait (a browser's main thread may not). */
  readonly canBlock: boolean;
  /** Starts a worker; `onError` reports a worker that failed outside any task (e.g. while starting). */
  start(init: WorkerInit, onError: (message: string) => void): WorkerHandle;
}

let host: ThreadHost | undefined;

/** Installs the way workers are started (the Node entry does it on import). */
export function setThreadHost(threadHost: ThreadHost | undefined): void {
  host = threadHost;
}

export function threadHost(): ThreadHost | undefined {
  return host;
}

/** A worker failed while running a kernel (or could not start); the pool has been shut down. */
export class ThreadError extends DescentError {
  override name = 'ThreadError';
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes a one-line message into the control block's error area (workers report with it). */
export function writeError(control: SharedArrayBuffer, message: string): void {
  const ints = new Int32Array(control, 0, CONTROL_INTS);
  const bytes = encoder.encode(message.split('\n')[0].slice(0, ERROR_BYTES / 4));
  new Uint8Array(control, ERROR_OFFSET, ERROR_BYTES).set(bytes.subarray(0, ERROR_BYTES));
  Atomics.store(ints, ERROR_LENGTH, Math.min(bytes.length, ERROR_BYTES));
}

/**
 * Spins until `ints[index]` differs from `value`, for about `spinMicros`, then sleeps in
 * Atomics.wait with `ints[index + 1]` set, so a notifier knows to wake it. Returns the new value.
 */
export function awaitChange(ints: Int32Array, index: number, value: number, spinMicros: number): number {
  let current = Atomics.load(ints, index);
  if (current !== value) return current;
  if (spinMicros > 0) {
    const until = performance.now() + spinMicros / 1000;
    do {
      for (let i = 0; i < 256; i++) {
        current = Atomics.load(ints, index);
        if (current !== value) return current;
      }
    } while (performance.now() < until);
  }
  for (;;) {
    Atomics.store(ints, index + 1, 1);
    Atomics.wait(ints, index, value);
    Atomics.store(ints, index + 1, 0);
    current = Atomics.load(ints, index);
    if (current !== value) return current;
  }
}

export interface PoolOptions {
  /** The caller's kernels instance, over `memory`. */
  kernels: KernelExports;
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  variant: KernelVariant;
  /** Threads in all, the caller's included (≥ 2). */
  threads: number;
  host: ThreadHost;
}

/**
 * Workers over one shared memory, and the caller's side of the control block. Tasks run on
 * the caller plus the workers that have started (a worker that has not started yet just misses
 * the task; the result is the same).
 */
export class ThreadPool {
  readonly threads: number;
  /** Arguments of the next task: the caller fills them, then calls run. */
  readonly args: Float64Array;
  private readonly control = new SharedArrayBuffer(CONTROL_BYTES);
  private readonly ints = new Int32Array(this.control, 0, CONTROL_INTS);
  private readonly workers: WorkerHandle[] = [];
  private readonly kernels: KernelExports;
  private readonly canBlock: boolean;
  private readonly spinMicros: number;
  /** Set when a worker failed outside a task: the next run shuts the pool down and throws. */
  private startFailure: string | undefined;
  private closed = false;
  private readyWaiters: Array<() => void> = [];

  constructor({ kernels, memory, module, variant, threads, host: threadHost }: PoolOptions) {
    if (!(threads >= 2 && threads <= MAX_THREADS)) throw new RangeError(`a pool has 2 to ${MAX_THREADS} threads, not ${threads}`);
    this.kernels = kernels;
    this.threads = threads;
    this.args = new Float64Array(this.control, ARGS_OFFSET, ARG_COUNT);
    this.canBlock = threadHost.canBlock;
    // Spinning pays when every thread has a core; with more threads than cores it steals the
    // caller's time, so workers then sleep at once.
    this.spinMicros = threads <= threadHost.cores() ? 200 : 0;
    const init: WorkerInit = { memory, module, variant, control: this.control, spinMicros: this.spinMicros };
    for (let i = 1; i < threads; i++) {
      this.workers.push(threadHost.start(init, (message) => this.workerFailed(message)));
    }
  }

  /** Workers that have started and take part in tasks. */
  get joined(): number {
    return Atomics.load(this.ints, JOINED);
  }

  /** Resolves once every worker has started (or the pool failed or closed). */
  ready(): Promise<void> {
    if (this.joined >= this.workers.length || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.readyWaiters.push(resolve);
      const poll = (): void => {
        if (this.joined >= this.workers.length || this.closed || this.startFailure) {
          this.readyWaiters = this.readyWaiters.filter((waiter) => waiter !== resolve);
          resolve();
        } else {
          setTimeout(poll, 1);
        }
      };
      setTimeout(poll, 1);
    });
  }

  /**
   * Runs TASKS[task] with `args` as filled in, on up to `shares` threads, the caller's thread
   * taking share 0. Returns when every share is done. Throws ThreadError, after shutting the
   * pool down, if a worker failed.
   */
  run(task: number, shares: number): void {
    if (this.startFailure !== undefined) this.fail(`a worker thread failed to start: ${this.startFailure}`);
    const ints = this.ints;
    const total = Math.min(shares, 1 + Atomics.load(ints, JOINED));
    if (total <= 1) {
      TASKS[task](this.kernels, this.args, 0, 1);
      return;
    }
    ints[TASK] = task;
    ints[SHARES] = total;
    Atomics.store(ints, PENDING, total - 1);
    for (let slot = 1; slot < total; slot++) this.post(slot);
    let ownError: unknown;
    try {
      TASKS[task](this.kernels, this.args, 0, total);
    } catch (error) {
      ownError = error; // the workers still use the memory: wait for them before throwing
    }
    this.awaitWorkers();
    const failedSlot = Atomics.load(ints, FAILED);
    if (failedSlot !== 0) {
      const length = Atomics.load(ints, ERROR_LENGTH);
      const message = decoder.decode(new Uint8Array(this.control, ERROR_OFFSET, length).slice());
      this.fail(`worker thread ${failedSlot} of ${this.threads} failed in ${TASK_NAMES[task]}: ${message}`);
    }
    if (ownError !== undefined) throw ownError;
  }

  /** Stops every worker. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ints, STOP, 1);
    for (let slot = 1; slot <= this.workers.length; slot++) {
      Atomics.add(this.ints, mailbox(slot), 1);
      Atomics.notify(this.ints, mailbox(slot));
    }
    for (const worker of this.workers) worker.terminate();
    for (const waiter of this.readyWaiters) waiter();
    this.readyWaiters = [];
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Hands the current task to the worker of `slot`, waking it if it sleeps. */
  private post(slot: number): void {
    const box = mailbox(slot);
    Atomics.add(this.ints, box, 1);
    if (Atomics.load(this.ints, box + 1) !== 0) Atomics.notify(this.ints, box);
  }

  private awaitWorkers(): void {
    const ints = this.ints;
    // The caller's share is about as long as a worker's: spin briefly, then sleep until the
    // last worker notifies (a browser's main thread may not sleep: it spins).
    let pending = Atomics.load(ints, PENDING);
    for (let i = 0; pending !== 0 && (i < 20000 || !this.canBlock); i++) pending = Atomics.load(ints, PENDING);
    while (pending !== 0) {
      Atomics.store(ints, CALLER_WAITING, 1);
      Atomics.wait(ints, PENDING, pending, 100);
      Atomics.store(ints, CALLER_WAITING, 0);
      pending = Atomics.load(ints, PENDING);
    }
  }

  private workerFailed(message: string): void {
    this.startFailure ??= message;
  }

  private fail(message: string): never {
    this.close();
    throw new ThreadError(message);
  }
}

/** The i-th of `shares` nearly equal parts of [0, units): its first unit. */
export function partStart(units: number, share: number, shares: number): number {
  return Math.floor((units * share) / shares);
}
