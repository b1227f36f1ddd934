/**
 * LocalRunner: a pool of worker threads in this process, one job per thread at a time, one
 * thread per core by default. Jobs wait in submission order for a free thread. A thread that
 * dies (out of memory, a crash in the engine) fails its job and is replaced.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BackendName } from '@descent/engine';
import { JobError, type JobRunner, type RunOptions } from './runner.js';
import type { JobEvent, JobResult, TrainingJobSpec } from './spec.js';

export type ThreadRequest = { type: 'run'; spec: TrainingJobSpec };
export type ThreadReply =
  | { type: 'event'; id: string; event: JobEvent }
  | { type: 'done'; id: string; result: JobResult }
  | { type: 'failed'; id: string; message: string; exitCode: number | null; stack: string | null };

export interface LocalRunnerOptions {
  /** Worker threads (default: one per core). */
  workers?: number;
  backend?: BackendName;
  /**
   * Threads each job's WASM kernels may use (default: its share of the cores, cores / workers,
   * at least 1). Jobs already run side by side, so more would only make them take turns.
   */
  threads?: number;
}

interface Pending {
  spec: TrainingJobSpec;
  options: RunOptions;
  resolve(result: JobResult): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  job?: Pending;
  /** Shared with the thread, which reads it after every batch: 1 = cancel the running job. */
  cancel: Int32Array;
}

const THREAD_FILE = new URL('./thread.js', import.meta.url);

export class LocalRunner implements JobRunner {
  readonly capacity: number;
  /** Threads each job's kernels use. */
  readonly threads: number;
  private readonly backend: BackendName;
  private readonly slots: Slot[] = [];
  private readonly waiting: Pending[] = [];
  private closed = false;

  constructor({ workers = availableParallelism(), backend = 'wasm', threads }: LocalRunnerOptions = {}) {
    this.capacity = Math.max(1, workers);
    this.threads = threads ?? defaultJobThreads(this.capacity);
    this.backend = backend;
  }

  run(spec: TrainingJobSpec, options: RunOptions = {}): Promise<JobResult> {
    if (this.closed) return Promise.reject(new JobError(spec.id, 'the job runner is closed', null));
    let onAbort = (): void => {};
    const result = new Promise<JobResult>((resolve, reject) => {
      const job: Pending = { spec, options, resolve, reject };
      onAbort = () => this.cancel(job);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(job);
      this.dispatch();
    });
    return result.finally(() => options.signal?.removeEventListener('abort', onAbort));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(new JobError(job.spec.id, 'the job runner was closed before the job started', null));
    await Promise.all(this.slots.splice(0).map(async (slot) => {
      slot.job?.reject(new JobError(slot.job.spec.id, 'the job runner was closed while the job ran', null));
      await slot.worker.terminate();
    }));
  }

  private cancel(job: Pending): void {
    const queued = this.waiting.indexOf(job);
    if (queued >= 0) {
      // Never started: nothing to checkpoint.
      this.waiting.splice(queued, 1);
      job.resolve({ id: job.spec.id, status: 'cancelled', history: { epoch: [], loss: [], accuracy: [], val_loss: [], val_accuracy: [], seconds: [] }, best: null, weights: job.spec.initialWeights ?? { shapes: [], values: [] }, seconds: 0, checkpoint: job.spec.resume });
      return;
    }
    const slot = this.slots.find((s) => s.job === job);
    if (slot) Atomics.store(slot.cancel, 0, 1);
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let slot = this.slots.find((s) => s.job === undefined);
      if (!slot && this.slots.length < this.capacity) slot = this.startThread();
      if (!slot) return;
      const job = this.waiting.shift()!;
      slot.job = job;
      Atomics.store(slot.cancel, 0, 0);
      slot.worker.ref();
      slot.worker.postMessage({ type: 'run', spec: job.spec } satisfies ThreadRequest);
    }
  }

  private startThread(): Slot {
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(THREAD_FILE, { workerData: { backend: this.backend, cancel, threads: this.threads } });
    const slot: Slot = { worker, cancel };
    worker.on('message', (message: ThreadReply) => {
      const job = slot.job;
      if (!job || message.id !== job.spec.id) return;
      if (message.type === 'event') {
        job.options.onEvent?.(message.event);
        return;
      }
      slot.job = undefined;
      worker.unref();
      if (message.type === 'done') job.resolve(message.result);
      else job.reject(new JobError(message.id, message.message, message.exitCode, message.stack));
      this.dispatch();
    });
    worker.on('error', (error) => this.threadDied(slot, error.message));
    worker.on('exit', (code) => {
      if (!this.closed) this.threadDied(slot, `the worker thread exited with code ${code}`);
    });
    // Only threads with a job keep the process alive.
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  private threadDied(slot: Slot, why: string): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.slots.splice(index, 1);
    slot.job?.reject(new JobError(slot.job.spec.id, `job ${slot.job.spec.id} failed: ${why}`, null));
    slot.job = undefined;
    void slot.worker.terminate();
    this.dispatch();
  }
}

/** A job's share of the cores when `workers` jobs run side by side (at least one thread). */
export function defaultJobThreads(workers: number): number {
  return Math.max(1, Math.floor(availableParallelism() / Math.max(1, workers)));
}
