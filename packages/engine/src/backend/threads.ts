/**
 * The thread pool behind the WASM backend's parallel kernels: one shared WebAssembly memory,
 * one kernels instance per thread, and a small control block of shared integers.
 *
 *   caller                                   worker w, looping in serveKernels
 *   ───────────────────────────────          ────────────────────────────────────────────
 *   write the task and its arguments
 *   next = (generation, shares, 0)
 *   mailbox[w] += 1 for the workers needed ─→ sees its mailbox change (spinning, or woken)
 *   claim shares from `next` and run them    claim shares from `next` and run them
 *   wait until done = shares     ←─────────  done += 1 per share run
 *
 * Shares are claimed, not assigned: each thread takes an unclaimed one (a compare-and-swap on
 * `next`) until none is left. So a worker that the operating system has not scheduled yet, or
 * that sleeps, delays nothing: the caller runs its share too, and a call is never much slower
 * than on one thread, even on a machine whose cores are busy with other work. A call of a few
 * shares marks them claimed in a bitmask, and each thread claims its own share first (share s
 * on thread s, the caller's being 0), then any left: a worker that arrives before the caller
 * does not take the caller's rows, which the caller's core holds in its cache and the cuts
 * sized for the caller's speed. A call of many shares hands them out in order from a counter. Nothing is
 * posted per call: a call costs a few atomic operations and, when a worker had gone to sleep,
 * one notify. Workers spin for a while after each task (training calls kernels every few
 * microseconds) and then sleep in Atomics.wait, so an idle pool costs no CPU.
 *
 * `start` hands out a call as `run` does but returns once the caller's own share is done, and
 * `finish` waits for the rest: an optimizer update finishes on the workers while the caller runs
 * the JavaScript between two training steps. Until `finish`, the call's arguments and buffers
 * are the workers' (the WASM backend waits at its next kernel call).
 *
 * Cores are not always equally fast: on a shared virtual machine a busy neighbour on the same
 * physical core can halve one core's speed for minutes, and hybrid CPUs mix big and small cores.
 * With equal shares the whole call then waits for the slow core's half, and two threads were no
 * faster than one. So when a call has one share per thread, the pool sizes the shares by how
 * fast each thread has been running that task (`shareSpeeds`): every share times itself, and the
 * caller moves its estimates a little after each call. The cuts follow the estimates only when
 * they have moved by a few percent, so on equal cores the shares stay put, and with them which
 * core's cache holds which rows of a weight.
 *
 * Every task splits its output between the shares and each output element is computed by one
 * share exactly as one thread computes it, and a share computes the same whichever thread runs
 * it (it fills its thread's scratch before reading it), so results never depend on the number
 * of threads or on who ran what (see thread-tasks.ts). A share may be empty. A call may have
 * more shares than threads; then a faster thread claims more of them.
 *
 * This module is browser-safe: how workers are started is a ThreadHost's business (Node's is in
 * threads-node.ts; a browser one starts Web Workers that call serveKernels).
 */
import type { KernelExports, KernelVariant } from '@descent/kernels-wasm';
import { DescentError } from '../errors.js';
import { PIPELINED_TASKS, TASK_NAMES, TASKS, shareCuts } from './thread-tasks.js';

// ---- the control block: Int32 words, then float64 arguments, then an error message ----------
// Words that different threads write sit on different 64-byte cache lines.

/**
 * The shares left to claim, packed with the call they belong to: generation (16 bits, counting
 * calls), shares (8 bits), and in the low 8 bits either a bitmask of the claimed shares (a call
 * of at most MASKED_SHARES shares) or the next share to claim. One word, so a claim is one
 * compare-and-swap.
 */
export const NEXT = 0;
/** Calls of at most this many shares claim them through a bitmask, each thread its own share first. */
export const MASKED_SHARES = 8;
/** Shares finished (run, or skipped after a failure) of the current call. */
export const DONE = 16;
export const TASK = 32;
export const STOP = 33;
/** Workers that have joined; a worker's slot is its join number (1, 2, …). */
export const JOINED = 34;
/** Non-zero while the caller sleeps on DONE. */
export const CALLER_WAITING = 35;
/** 1 + the slot of the first thread that failed (0: none; the caller is slot 0), and the byte length of its message. */
export const FAILED = 36;
export const ERROR_LENGTH = 37;
/** Shares run by workers so far (the rest ran on the caller's thread). */
export const WORKER_SHARES = 38;
/**
 * The memory's size in pages when the current call was handed out. A worker learns of growth by
 * another thread lazily (V8 updates its view at some later interrupt), and until then a kernel
 * touching the new pages traps as out of bounds; a worker that sees this number change refreshes
 * its view first with `memory.grow(0)`.
 */
export const MEMORY_PAGES = 39;
/** The number of shares the current call's cuts are for (0: equal shares; see shareCuts). */
export const CUT_SHARES = 40;
/** How long (µs) a worker spins for its next task before it sleeps (see ThreadPool.spinMicros). */
export const SPIN_MICROS = 41;
/** Calls whose longest share ran shorter than this (ms) say little about the threads' speeds. */
const MIN_TIMED_MS = 0.004;
/** How far one call moves the speed estimates towards what it measured. */
const SPEED_LEARNING_RATE = 0.1;
/** No thread's share falls below this fraction of an equal one. */
const MIN_SPEED_SHARE = 0.2;
/** How far (as a fraction of all the work) the estimates move before a task's cuts follow. */
const SPEED_HYSTERESIS = 0.04;
/**
 * How long a worker spins for its next task before it sleeps. Long enough to bridge the gaps of
 * a training step (its JavaScript between two split kernels), short enough that a worker waiting
 * through a longer gap gives its core up: in a fresh process V8 compiles the hot JavaScript on
 * threads of its own, and a spinning worker takes the core they need (see the README's
 * measurements of 200 against 50 µs).
 */
export const WORKER_SPIN_MICROS = 50;
/** The longest spin a pool accepts (1 s): a worker spinning longer holds its core for nothing. */
export const MAX_SPIN_MICROS = 1_000_000;
/** Bounds of the caller's lead (see ThreadPool.start), and how far one call moves it. */
const MIN_LEAD = 0.2;
const MAX_LEAD = 1;
const LEAD_STEP = 0.02;
/** Most call sites whose leads are kept. */
const MAX_LEADS = 256;
/** A wait of the caller for workers' shares longer than this (ms) counts as a stall (see ThreadPool.stalls). */
export const STALL_MS = 0.05;
/** Most shares one call can have (the packing of NEXT). */
export const MAX_SHARES = 255;
/**
 * Each worker's mailbox: a counter the caller bumps to hand it a task (so a worker wakes only
 * for tasks it takes part in), and a flag it sets while asleep on it.
 */
export function mailbox(slot: number): number {
  return 16 * (2 + slot);
}
export const MAX_THREADS = 64;
const CONTROL_INTS = mailbox(MAX_THREADS);
export const ARGS_OFFSET = CONTROL_INTS * 4;
/** Float64 arguments of a task (pointers and sizes are exact in a float64). */
export const ARG_COUNT = 32;
/** Most shares of a call that are sized by speed and timed. */
export const MAX_TIMED_SHARES = 8;
/** Float64 cuts of the current call's shares (see shareCuts): MAX_TIMED_SHARES + 1 of them. */
export const CUTS_OFFSET = ARGS_OFFSET + ARG_COUNT * 8;
/** Per share of the last call: how long it ran (ms) and which thread ran it (float64 pairs). */
export const RUN_TIMES_OFFSET = CUTS_OFFSET + (MAX_TIMED_SHARES + 1) * 8;
export const ERROR_OFFSET = RUN_TIMES_OFFSET + MAX_TIMED_SHARES * 16;
export const ERROR_BYTES = 1024;
const CONTROL_BYTES = ERROR_OFFSET + ERROR_BYTES;

/** What a worker needs to serve kernels: everything is shared, nothing is copied per call. */
export interface WorkerInit {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  variant: KernelVariant;
  control: SharedArrayBuffer;
}

/** What ThreadPool.shareTimings keeps per task. */
export interface ShareTiming {
  /** Split calls timed. */
  calls: number;
  /** Shares the caller's thread ran, and their time in all (ms). */
  callerShares: number;
  callerMs: number;
  /** Shares worker threads ran, and their time in all (ms). */
  workerShares: number;
  workerMs: number;
  /** The caller's waits for the workers' shares after its own, in all (ms). */
  waitMs: number;
  /** Calls whose shares were sized by the threads' speeds, and the fractions of their output the caller computed, summed. */
  sizedCalls: number;
  callerPart: number;
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

/** Writes a one-line message into the control block's error area (the failing thread reports with it). */
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

/**
 * The share thread `slot` should claim next, or -1 when none is left; `low` is the low byte of
 * NEXT. Of a few shares (`low` a bitmask of the claimed ones): the thread's own share, share
 * `slot`, while it is unclaimed, then the lowest unclaimed. Of many (`low` a counter): the next.
 */
export function shareToClaim(low: number, shares: number, slot: number): number {
  if (shares > MASKED_SHARES) return low < shares ? low : -1;
  if (slot < shares && (low & (1 << slot)) === 0) return slot;
  for (let share = 0; share < shares; share++) if ((low & (1 << share)) === 0) return share;
  return -1;
}

/**
 * Claims and runs shares of the current call until none is left (see the header); `slot` names
 * this thread (0: the caller). A share that throws is counted as done, the first failure is
 * recorded for the caller, and later shares are skipped.
 */
export function runShares(ints: Int32Array, wasm: KernelExports, args: Float64Array, slot: number, ownOnly = false): void {
  for (;;) {
    const next = Atomics.load(ints, NEXT);
    const shares = (next >>> 8) & 0xff;
    const share = shareToClaim(next & 0xff, shares, slot);
    if (share < 0 || (ownOnly && share !== slot)) return;
    const claimed = shares <= MASKED_SHARES ? next | (1 << share) : next + 1;
    if (Atomics.compareExchange(ints, NEXT, next, claimed) !== next) continue;
    // This share is ours: the task and its arguments stay put until it is counted done.
    if (slot !== 0) Atomics.add(ints, WORKER_SHARES, 1);
    if (Atomics.load(ints, FAILED) === 0) {
      if (shareCuts.cuts.buffer !== ints.buffer) shareCuts.cuts = new Float64Array(ints.buffer, CUTS_OFFSET, MAX_TIMED_SHARES + 1);
      shareCuts.shares = ints[CUT_SHARES];
      const started = performance.now();
      try {
        TASKS[ints[TASK]](wasm, args, share, shares, slot);
      } catch (caught) {
        if (Atomics.compareExchange(ints, FAILED, 0, slot + 1) === 0) writeError(ints.buffer as SharedArrayBuffer, describeError(caught));
      }
      if (share < MAX_TIMED_SHARES) {
        if (runTimes.buffer !== ints.buffer) runTimes = new Float64Array(ints.buffer, RUN_TIMES_OFFSET, MAX_TIMED_SHARES * 2);
        runTimes[2 * share] = performance.now() - started;
        runTimes[2 * share + 1] = slot;
      }
    }
    if (Atomics.add(ints, DONE, 1) + 1 === shares && Atomics.load(ints, CALLER_WAITING) !== 0) Atomics.notify(ints, DONE);
  }
}

/** This thread's view of the control block's run times. */
let runTimes: Float64Array<ArrayBufferLike> = new Float64Array(0);

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
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
  private readonly memory: WebAssembly.Memory;
  private readonly canBlock: boolean;
  /** Times a call had to wake a worker asleep in Atomics.wait (see wakes). */
  private wakeCount = 0;
  /** What SPIN_MICROS holds (see spinMicros). */
  private spin = 0;
  /** Set when a worker failed outside a task: the next run shuts the pool down and throws. */
  private startFailure: string | undefined;
  private closed = false;
  private readyWaiters: Array<() => void> = [];
  /** Counts calls (in NEXT's top bits), so consecutive calls never publish the same word. */
  private generation = 0;
  /** Whether calls of one share per thread are sized by the threads' speeds (see the header). */
  weightShares = true;
  /**
   * Calls in which the caller, done with its own shares, waited more than STALL_MS for the
   * workers' (a worker slow to start its share, or taken off its core inside it), and how long
   * those waits took in all (ms). For the profile: on an even, quiet machine there are few.
   */
  stalls = 0;
  stalledMs = 0;
  /** By task number: see shareTimings. */
  private readonly timingsByTask: Array<ShareTiming | undefined> = [];
  private readonly speedsByTask = new Map<number, SpeedEstimates>();
  private fixedSpeeds: Float64Array | undefined;
  private readonly cuts = new Float64Array(this.control, CUTS_OFFSET, MAX_TIMED_SHARES + 1);
  private readonly runTimes = new Float64Array(this.control, RUN_TIMES_OFFSET, MAX_TIMED_SHARES * 2);
  /** The call `start` left running, if any. */
  private pending: PoolCall | undefined;
  /** By `start`'s key: the caller's share as a fraction of what its speed gives it. */
  private readonly leads = new Map<number, number>();
  private readonly ledSpeeds = new Float64Array(MAX_TIMED_SHARES);

  constructor({ kernels, memory, module, variant, threads, host: threadHost }: PoolOptions) {
    if (!(threads >= 2 && threads <= MAX_THREADS)) throw new RangeError(`a pool has 2 to ${MAX_THREADS} threads, not ${threads}`);
    this.kernels = kernels;
    this.memory = memory;
    this.threads = threads;
    this.args = new Float64Array(this.control, ARGS_OFFSET, ARG_COUNT);
    this.canBlock = threadHost.canBlock;
    // Spinning pays when every thread has a core; with more threads than cores it steals the
    // caller's time, so workers then sleep at once.
    this.defaultSpinMicros = threads <= threadHost.cores() ? WORKER_SPIN_MICROS : 0;
    this.spinMicros = this.defaultSpinMicros;
    const init: WorkerInit = { memory, module, variant, control: this.control };
    for (let i = 1; i < threads; i++) {
      this.workers.push(threadHost.start(init, (message) => this.workerFailed(message)));
    }
  }

  /**
   * How long (µs) a worker spins for its next task after each one before it sleeps in
   * Atomics.wait, from its next wait on: WORKER_SPIN_MICROS when every thread has a core of its
   * own, else 0 (spinning would then take the caller's time). Tests and the profile change it.
   */
  get spinMicros(): number {
    return this.spin;
  }

  set spinMicros(micros: number) {
    if (micros === this.spin) return;
    if (!(Number.isInteger(micros) && micros >= 0 && micros <= MAX_SPIN_MICROS)) {
      throw new RangeError(`a worker's spin is a whole number of µs from 0 to ${MAX_SPIN_MICROS}, not ${micros}`);
    }
    this.spin = micros;
    Atomics.store(this.ints, SPIN_MICROS, micros);
  }

  /** The spin every thread having a core of its own gives (see spinMicros). */
  readonly defaultSpinMicros: number;

  /**
   * Calls since the pool started that found a worker they hand a share to asleep, and woke it
   * (one per worker woken). A woken worker starts its share tens of µs late (the profile's footer
   * measures a wake's round trip), so it often finds the share already taken.
   */
  get wakes(): number {
    return this.wakeCount;
  }

  /** Workers that have started and take part in tasks. */
  get joined(): number {
    return Atomics.load(this.ints, JOINED);
  }

  /** Shares that workers (not the caller) have run so far. */
  get workerShares(): number {
    return Atomics.load(this.ints, WORKER_SHARES);
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
   * Runs TASKS[task] with `args` as filled in, as `shares` shares, on this thread and the
   * workers that have started (as one share here when none has). Returns when every share is done. If a share
   * failed, on whichever thread ran it, shuts the pool down and throws a ThreadError saying
   * where and why (kernels then run on the caller's thread alone).
   */
  run(task: number, shares: number): void {
    if (this.pending !== undefined) this.finish();
    const call = this.handOut(task, shares, 1);
    if (call === undefined) return;
    runShares(this.ints, this.kernels, this.args, 0);
    this.complete(call);
  }

  /**
   * Starts TASKS[task] as `run` does, but returns once this thread has run its own share,
   * leaving the workers' shares running: the caller goes on with work of its own (the
   * JavaScript between two training steps) while they finish. `finish` waits for them; until
   * then nothing may touch the task's arguments, its outputs or its inputs, and `run` and
   * `start` call `finish` first. `key` names the call site (say, the weight a step updates):
   * the caller's share of each key's calls shrinks while the workers are still busy when the
   * caller comes back to finish, and grows while they were done before it, so that both sides
   * end together.
   */
  start(task: number, shares: number, key: number): void {
    if (this.pending !== undefined) this.finish();
    let lead = this.leads.get(key);
    if (lead === undefined) {
      // Keys are weights' addresses: a long-lived process that trains many models forgets old ones.
      if (this.leads.size >= MAX_LEADS) this.leads.clear();
      lead = 1;
      this.leads.set(key, lead);
    }
    const call = this.handOut(task, shares, lead);
    if (call === undefined) return;
    runShares(this.ints, this.kernels, this.args, 0, true);
    call.key = key;
    this.pending = call;
    // The caller's own share failed: say so now, not at the next call.
    if (Atomics.load(this.ints, FAILED) !== 0) this.finish();
  }

  /** Whether a call from `start` may still be running on workers. */
  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Waits for the call `start` left running (runs its shares no worker took) and reports a failure in it. */
  finish(): void {
    const call = this.pending;
    if (call === undefined) return;
    this.pending = undefined;
    const workersDone = Atomics.load(this.ints, DONE) === call.shares;
    runShares(this.ints, this.kernels, this.args, 0);
    // Workers done before the caller came back (idle meanwhile): give them more next time; still busy: less.
    const lead = this.leads.get(call.key)!;
    this.leads.set(call.key, Math.min(MAX_LEAD, Math.max(MIN_LEAD, lead + (workersDone ? -LEAD_STEP : LEAD_STEP))));
    this.complete(call);
  }

  /** How much of its speed-sized share the caller takes in calls from `start`, by key (1: all of it). */
  get callerLeads(): Map<number, number> {
    return new Map(this.leads);
  }

  /**
   * Publishes a call of `task` in `shares` shares to the workers, the caller's share sized at
   * `lead` times its speed's share. Undefined when there is nothing to split: the task then ran
   * here as one share.
   */
  private handOut(task: number, shares: number, lead: number): PoolCall | undefined {
    if (this.startFailure !== undefined) this.fail(`a worker thread failed to start: ${this.startFailure}`);
    const ints = this.ints;
    const started = 1 + Atomics.load(ints, JOINED);
    const total = Math.min(shares, MAX_SHARES);
    if (total <= 1 || started <= 1) {
      TASKS[task](this.kernels, this.args, 0, 1, 0);
      return undefined;
    }
    ints[TASK] = task;
    Atomics.store(ints, MEMORY_PAGES, this.memory.buffer.byteLength >>> 16);
    Atomics.store(ints, DONE, 0);
    this.generation = (this.generation + 1) & 0xffff;
    // One share per thread, every thread started: size the shares by the threads' speeds.
    const weighted = this.weightShares && total === started && total === this.threads && total <= MAX_TIMED_SHARES;
    if (weighted) this.cutsFor(task, total, lead);
    ints[CUT_SHARES] = weighted ? total : 0;
    Atomics.store(ints, NEXT, (this.generation << 16) | (total << 8));
    for (let slot = 1; slot < Math.min(total, started); slot++) this.post(slot);
    return { task, shares: total, weighted, key: 0 };
  }

  /** Waits for every share of `call`, throws if one failed, and keeps its timings. */
  private complete(call: PoolCall): void {
    const { task, shares: total, weighted } = call;
    const ints = this.ints;
    const waitStarted = performance.now();
    this.awaitShares(total);
    const waitedMs = performance.now() - waitStarted;
    if (waitedMs > STALL_MS) {
      this.stalls++;
      this.stalledMs += waitedMs;
    }
    const failed = Atomics.load(ints, FAILED);
    if (failed !== 0) {
      const length = Atomics.load(ints, ERROR_LENGTH);
      const message = decoder.decode(new Uint8Array(this.control, ERROR_OFFSET, length).slice());
      const where = failed === 1 ? 'the calling thread' : `worker thread ${failed - 1}`;
      this.fail(`${where} (of ${this.threads}) failed in ${TASK_NAMES[task]}: ${message}`);
    }
    if (total <= MAX_TIMED_SHARES) this.timeShares(task, total, waitedMs, weighted);
    if (weighted && this.fixedSpeeds === undefined && !PIPELINED_TASKS.has(task)) this.learnSpeeds(task, total);
  }

  /**
   * By task name, since the pool started: calls of at most MAX_TIMED_SHARES shares, how long their
   * shares ran on the caller's thread and on workers, and how long the caller then waited (a copy).
   * For the profile: a worker's share running longer than the caller's equal one shows a slower core.
   */
  get shareTimings(): Map<string, ShareTiming> {
    const timings = new Map<string, ShareTiming>();
    this.timingsByTask.forEach((timing, task) => {
      if (timing !== undefined) timings.set(TASK_NAMES[task], { ...timing });
    });
    return timings;
  }

  /** Adds a call's share times (each share ran and stamped its time and thread) to its task's timings. */
  private timeShares(task: number, shares: number, waitedMs: number, weighted: boolean): void {
    let timing = this.timingsByTask[task];
    if (timing === undefined) {
      timing = { calls: 0, callerShares: 0, callerMs: 0, workerShares: 0, workerMs: 0, waitMs: 0, sizedCalls: 0, callerPart: 0 };
      this.timingsByTask[task] = timing;
    }
    timing.calls++;
    timing.waitMs += waitedMs;
    if (weighted) timing.sizedCalls++;
    for (let share = 0; share < shares; share++) {
      const ms = this.runTimes[2 * share];
      if (this.runTimes[2 * share + 1] === 0) {
        timing.callerShares++;
        timing.callerMs += ms;
        if (weighted) timing.callerPart += this.cuts[share + 1] - this.cuts[share];
      } else {
        timing.workerShares++;
        timing.workerMs += ms;
      }
    }
  }

  /** Each thread's speed, as a fraction of all of them, that the Adam task's shares are sized by (see the header). */
  get shareSpeeds(): number[] {
    return [...(this.fixedSpeeds ?? this.speedsOf(TASK_NAMES.indexOf('adam')).used)];
  }

  /** Fixes the threads' relative speeds for every task (tests, benchmarks), or, with undefined, learns them again from equal ones. */
  setShareSpeeds(speeds: readonly number[] | undefined): void {
    if (speeds !== undefined && (speeds.length !== this.threads || speeds.some((speed) => !(speed > 0 && Number.isFinite(speed))))) {
      throw new RangeError(`share speeds: ${this.threads} positive numbers, got ${speeds.join(', ')}`);
    }
    this.fixedSpeeds = speeds === undefined ? undefined : Float64Array.from(speeds);
    this.speedsByTask.clear();
  }

  /**
   * A task's speed estimates, one per thread, summing to 1: `learned` moves a little with every
   * call; `used` sizes the shares and takes `learned`'s values only once they differ by more than
   * SPEED_HYSTERESIS. The forward's pipelined slices, whose times include waiting, use the
   * weight gradient's: both split the rows of the same w.
   */
  private speedsOf(task: number): SpeedEstimates {
    const key = PIPELINED_TASKS.has(task) ? TASK_NAMES.indexOf('sparseWeightGradRows') : task;
    let speeds = this.speedsByTask.get(key);
    if (speeds === undefined) {
      speeds = { learned: new Float64Array(this.threads).fill(1 / this.threads), used: new Float64Array(this.threads).fill(1 / this.threads) };
      this.speedsByTask.set(key, speeds);
    }
    return speeds;
  }

  /** Writes the cuts of a call of `task` in `shares` shares into the control block. */
  private cutsFor(task: number, shares: number, lead: number): void {
    const speeds = this.fixedSpeeds ?? this.speedsOf(task).used;
    // Fixed speeds fix the cuts, lead or not (tests and benchmarks set them to know where shares end).
    if (lead === 1 || this.fixedSpeeds !== undefined) {
      cutsFromSpeeds(speeds, shares, this.cuts);
      return;
    }
    const led = this.ledSpeeds;
    for (let s = 0; s < shares; s++) led[s] = s === 0 ? speeds[s] * lead : speeds[s];
    cutsFromSpeeds(led, shares, this.cuts);
  }

  /** Moves the task's estimates towards what the call measured. */
  private learnSpeeds(task: number, shares: number): void {
    learnShareSpeeds(this.speedsOf(task), this.cuts, this.runTimes, shares);
  }

  /** Stops every worker. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    // A worker stopped inside a share would leave its part of the output half written.
    const call = this.pending;
    if (call !== undefined) {
      this.pending = undefined;
      runShares(this.ints, this.kernels, this.args, 0);
      this.awaitShares(call.shares);
    }
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
    if (Atomics.load(this.ints, box + 1) !== 0) {
      this.wakeCount++;
      Atomics.notify(this.ints, box);
    }
  }

  /** Waits until every share of the call is done: spins briefly, then sleeps until the last one notifies. */
  private awaitShares(shares: number): void {
    const ints = this.ints;
    // Shares are about equal, so the others finish soon after this thread's (a browser's main
    // thread may not sleep: it spins).
    let done = Atomics.load(ints, DONE);
    for (let i = 0; done !== shares && (i < 20000 || !this.canBlock); i++) done = Atomics.load(ints, DONE);
    while (done !== shares) {
      Atomics.store(ints, CALLER_WAITING, 1);
      Atomics.wait(ints, DONE, done, 100);
      Atomics.store(ints, CALLER_WAITING, 0);
      done = Atomics.load(ints, DONE);
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

/** A call handed out to the pool. */
interface PoolCall {
  task: number;
  shares: number;
  weighted: boolean;
  /** start's key (0 for run). */
  key: number;
}

/** A task's speed estimates, one per thread, each summing to 1 (see ThreadPool.speedsOf). */
export interface SpeedEstimates {
  learned: Float64Array;
  used: Float64Array;
}

/** cuts[0..shares]: 0, then the running sums of `speeds` over their total, ending at exactly 1. */
export function cutsFromSpeeds(speeds: ArrayLike<number>, shares: number, cuts: Float64Array): void {
  let total = 0;
  for (let s = 0; s < shares; s++) total += speeds[s];
  cuts[0] = 0;
  for (let s = 0, sum = 0; s < shares; s++) {
    sum += speeds[s];
    cuts[s + 1] = s + 1 === shares ? 1 : sum / total;
  }
}

/**
 * Moves `estimates.learned` towards what one call measured: share s covered cuts[s]..cuts[s + 1]
 * of the output in runTimes[2s] ms, run by thread runTimes[2s + 1]. A call where a share ran on
 * another thread than its own, or that was too short to time, changes nothing. `used` takes the
 * learned values once they differ by more than SPEED_HYSTERESIS. Returns whether `used` changed.
 */
export function learnShareSpeeds(estimates: SpeedEstimates, cuts: ArrayLike<number>, runTimes: ArrayLike<number>, shares: number): boolean {
  let longest = 0;
  for (let s = 0; s < shares; s++) {
    if (runTimes[2 * s + 1] !== s) return false;
    longest = Math.max(longest, runTimes[2 * s]);
  }
  if (longest < MIN_TIMED_MS) return false;
  const { learned, used } = estimates;
  // Share size over time: each thread's speed in this call.
  const speedOf = (s: number): number => (cuts[s + 1] - cuts[s]) / Math.max(runTimes[2 * s], MIN_TIMED_MS / 16);
  let total = 0;
  for (let s = 0; s < shares; s++) total += speedOf(s);
  // The estimates stay a distribution (sum 1), and each at least MIN_SPEED_SHARE of an equal share.
  const floor = MIN_SPEED_SHARE / shares;
  let floored = 0;
  let free = 0;
  for (let s = 0; s < shares; s++) {
    learned[s] = (1 - SPEED_LEARNING_RATE) * learned[s] + (SPEED_LEARNING_RATE * speedOf(s)) / total;
    if (learned[s] < floor) {
      learned[s] = floor;
      floored += floor;
    } else {
      free += learned[s];
    }
  }
  let moved = 0;
  for (let s = 0; s < shares; s++) {
    if (learned[s] > floor || floored === 0) learned[s] *= (1 - floored) / free;
    moved = Math.max(moved, Math.abs(learned[s] - used[s]));
  }
  if (moved <= SPEED_HYSTERESIS) return false;
  used.set(learned);
  return true;
}

/** The i-th of `shares` nearly equal parts of [0, units): its first unit. */
export function partStart(units: number, share: number, shares: number): number {
  return Math.floor((units * share) / shares);
}
