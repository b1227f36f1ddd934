/**
 * Recording a training step's kernel calls, and replaying them for the batches after it.
 *
 * Every step of `fit` does the same work: the same kernels, with the same sizes, on buffers that
 * only change their values. Working that out again each batch is the JavaScript of a step: ops
 * making tensors, the graph and its topological order, scopes freeing buffers. Replaying the
 * calls skips it. The floats are the same: a replay calls the same kernels with the same
 * arguments, in the same order, as the step would have.
 *
 *   record  (one step, the usual way)          replay  (each later step)
 *   ─────────────────────────────────           ──────────────────────────────────
 *   ops call kernels() = a recorder that       the calls again, on the same buffers;
 *   passes every call on and logs it;          JavaScript the ops marked (hostStep)
 *   alloc(zeroed) is logged as fill(0);        runs again as it is
 *   free is put off: the recording keeps
 *   every buffer the step used
 *
 * What a replay cannot see is an op's own JavaScript between kernel calls. An op that writes a
 * per-step value into a buffer (a loss it computed, a dropout mask) or reads one into a kernel's
 * argument (the gradient of a scalar) wraps that code in `hostStep`, and a replay runs it again.
 * Anything else an op does in JavaScript must be the same every step (shapes, constants).
 * Which is why a recording serves one fit call, one batch size and one set of buffers only;
 * tests check that models trained with and without replay end with the same weights, to the bit.
 */
import { kernels, withKernels } from './backend/index.js';
import type { ByteStorage, Kernels, Storage } from './backend/kernels.js';

/** A logged kernel call, or an op's JavaScript (hostStep). */
type Action = { kernel: (...args: unknown[]) => unknown; args: unknown[] } | { run: () => void };

/** Backend methods that are not work on buffers: passed on, never logged. */
const NOT_LOGGED = new Set(['memoryBytes', 'reservedBytes']);

let recorder: StepRecorder | undefined;

/**
 * Runs `run`, an op's JavaScript that reads or writes per-step values in buffers; while a step is
 * being recorded, the recording runs it again at every replay (the kernels it calls included).
 */
export function hostStep(run: () => void): void {
  if (recorder === undefined || recorder.paused > 0) {
    run();
    return;
  }
  recorder.paused++;
  try {
    run();
  } finally {
    recorder.paused--;
  }
  recorder.actions.push({ run });
}

/** Runs `fn` live and leaves it out of the recording being made (a batch's copy-in, metrics). */
export function unrecorded<T>(fn: () => T): T {
  if (recorder === undefined) return fn();
  recorder.paused++;
  try {
    return fn();
  } finally {
    recorder.paused--;
  }
}

/** A recorded step: replay it, and dispose it to give its buffers back. */
export class StepRecording {
  private disposed = false;

  constructor(
    /** The kernels the calls were made on. */
    readonly backend: Kernels,
    private readonly actions: readonly Action[],
    private readonly buffers: readonly Storage[],
    private readonly byteBuffers: readonly ByteStorage[],
  ) {}

  /** Kernel calls and op steps, in order. */
  get length(): number {
    return this.actions.length;
  }

  /** Does again what the recorded step did, from `from` up to (not including) `to`. */
  replay(from = 0, to = this.actions.length): void {
    if (this.disposed) throw new Error('replay of a disposed step recording');
    const backend = this.backend;
    for (let i = from; i < to; i++) {
      const action = this.actions[i];
      if ('run' in action) action.run();
      else action.kernel.apply(backend, action.args);
    }
  }

  /** Frees every buffer the recorded step used. Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const storage of this.buffers) this.backend.free(storage);
    for (const storage of this.byteBuffers) this.backend.freeBytes(storage);
  }
}

/** Position markers a step sets while it is recorded (see StepRecorder.mark). */
export interface RecordedStep<T> {
  result: T;
  recording: StepRecording;
  /** Where each mark was set: how many actions came before it. */
  marks: Map<string, number>;
}

/**
 * Runs `step` with every kernel call logged (see the header) and returns what it returned with
 * the recording. If `step` throws, the buffers it kept are freed and the error passes on.
 */
export function recordStep<T>(step: (mark: (name: string) => void) => T): RecordedStep<T> {
  if (recorder !== undefined) throw new Error('a step is already being recorded');
  const backend = kernels();
  const current = new StepRecorder(backend);
  const marks = new Map<string, number>();
  recorder = current;
  let result: T;
  try {
    result = withKernels(current.kernels, () => step((name) => marks.set(name, current.actions.length)));
  } catch (error) {
    recorder = undefined;
    new StepRecording(backend, [], current.buffers, current.byteBuffers).dispose();
    throw error;
  }
  recorder = undefined;
  current.finished = true;
  return { result, recording: new StepRecording(backend, current.actions, current.buffers, current.byteBuffers), marks };
}

/** The kernels ops see while a step is recorded: the backend's, each call logged. */
class StepRecorder {
  readonly actions: Action[] = [];
  /** Buffers the step freed: kept until the recording is disposed, since a replay uses them. */
  readonly buffers: Storage[] = [];
  readonly byteBuffers: ByteStorage[] = [];
  paused = 0;
  /** Once recorded, the kernels only pass calls on (an op's closure may still hold them). */
  finished = false;
  readonly kernels: Kernels;

  constructor(backend: Kernels) {
    const logging = (): boolean => !this.finished && this.paused === 0;
    const wrapped = new Map<PropertyKey, unknown>();
    const methods: Record<string, (...args: never[]) => unknown> = {
      alloc: (length: number, zeroed = true) => {
        const storage = backend.alloc(length, zeroed);
        // A replay hands out no memory: the buffer is the recording's, and zeroing it is part of the step.
        if (zeroed && logging()) this.actions.push({ kernel: backend.fill as (...args: unknown[]) => unknown, args: [storage, 0] });
        return storage;
      },
      free: (storage: Storage) => {
        if (logging()) this.buffers.push(storage);
        else backend.free(storage);
      },
      freeBytes: (storage: ByteStorage) => {
        if (logging()) this.byteBuffers.push(storage);
        else backend.freeBytes(storage);
      },
    };
    this.kernels = new Proxy(backend, {
      get: (target, property, receiver) => {
        const value: unknown = Reflect.get(target, property, receiver === this.kernels ? target : receiver);
        if (typeof value !== 'function') return value;
        let method = wrapped.get(property);
        if (method === undefined) {
          const name = String(property);
          const own = methods[name];
          const kernel = value as (...args: unknown[]) => unknown;
          method = own ?? (NOT_LOGGED.has(name) || name === 'allocBytes'
            ? (...args: unknown[]) => kernel.apply(target, args)
            : (...args: unknown[]) => {
              const result = kernel.apply(target, args);
              if (logging()) this.actions.push({ kernel, args });
              return result;
            });
          wrapped.set(property, method);
        }
        return method;
      },
    });
  }
}
