/**
 * The WASM backend: the Kernels interface over the SIMD kernels of @descent/kernels-wasm.
 *
 * Every buffer lives in the kernels' linear memory, so a kernel call passes pointers and
 * sizes and nothing is copied. The engine owns the allocator:
 *   - a bump pointer from the module's heap base, in 16-byte aligned blocks;
 *   - free lists per block size, so a training step that frees and re-allocates the same
 *     shapes gets the same blocks back and, once warm, takes no new memory;
 *   - `memory.grow` when the bump pointer passes the end. Growing replaces `memory.buffer`,
 *     so each Storage re-creates its typed-array view when it sees a new buffer.
 * Each method below is one call into WASM (gemm first makes sure its packing scratch fits).
 *
 * Inputs with many exact zeros (pixels: half of Fashion-MNIST's are 0) take zero-skipping
 * kernels for the forward X·W and the weight gradient Xᵀ·dZ, which give the same floats (see
 * kernels-wasm/assembly/dense_sparse_input.ts). Whether a call takes them is decided from the
 * zeros in its first rows; `sparseInput` holds the thresholds and counts the calls.
 *
 * Threads: where SharedArrayBuffer exists and a ThreadHost is installed (threads.ts), the
 * memory is shared and the big kernels (products, optimizer updates, pixel scaling, softmax over
 * many rows, ReLU's gradient, and the convolution and pooling kernels of
 * wasm-conv.ts) are split between a pool of workers and the caller (thread-tasks.ts). Small calls
 * stay on the caller's thread: `parallel` gives a call as many threads as its work pays for.
 * The split never changes a float, so results are the same for any number of threads.
 */
import {
  createSharedMemory, instantiateKernels, kernelsModule, preferredVariant, sharedMemoryUnavailableReason, simdSupported,
  type KernelExports, type KernelVariant,
} from '@descent/kernels-wasm';
import type { ByteStorage, Kernels, Storage } from './kernels.js';
import { TASK } from './thread-tasks.js';
import { MAX_SHARES, MAX_THREADS, ThreadPool, threadHost, type ShareTiming } from './threads.js';
import {
  createWasmConvKernels, type DirectConvPolicy, type DirectFilterGradPolicy, type SparseGradientPolicy, type WinogradPolicy,
} from './wasm-conv.js';

const ALIGN = 16;
const PAGE = 65536;

/** Block size for `bytes` bytes: a multiple of 16, never 0 (every buffer has its own address). */
function blockSize(bytes: number): number {
  return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
}

/** Bump allocator with per-size free lists over a WebAssembly.Memory. */
export class WasmHeap {
  private top: number;
  private readonly base: number;
  private readonly freeLists = new Map<number, number[]>();
  /** Bytes in blocks currently handed out as buffers (GEMM scratch is not counted). */
  liveBytes = 0;

  constructor(readonly memory: WebAssembly.Memory, heapBase: number) {
    this.base = blockSize(heapBase);
    this.top = this.base;
  }

  /** A buffer block of at least `bytes` bytes, zero-filled. */
  alloc(bytes: number, zero: (ptr: number, size: number) => void): number {
    const size = blockSize(bytes);
    const reused = this.freeLists.get(size)?.pop();
    let ptr: number;
    if (reused !== undefined) {
      zero(reused, size); // fresh memory is zero already; a reused block is not
      ptr = reused;
    } else {
      ptr = this.bump(size, bytes);
    }
    this.liveBytes += size;
    return ptr;
  }

  free(ptr: number, bytes: number): void {
    this.release(ptr, bytes);
    this.liveBytes -= blockSize(bytes);
  }

  /** A block for the backend's own use (contents undefined), not counted as a buffer. */
  reserve(bytes: number): number {
    const size = blockSize(bytes);
    return this.freeLists.get(size)?.pop() ?? this.bump(size, bytes);
  }

  /** Gives back a block from `reserve` (or, via `free`, a buffer). */
  release(ptr: number, bytes: number): void {
    const size = blockSize(bytes);
    let list = this.freeLists.get(size);
    if (!list) {
      list = [];
      this.freeLists.set(size, list);
    }
    list.push(ptr);
  }

  /** Bytes carved out of linear memory so far (live blocks, free blocks and scratch). */
  reservedBytes(): number {
    return this.top - this.base;
  }

  private bump(size: number, bytes: number): number {
    const ptr = this.top;
    const end = ptr + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      // Grow by at least half the current size (up to 64 MiB extra), so a growing model does
      // not grow, and detach every view, page by page.
      const pages = Math.max(Math.ceil((end - have) / PAGE), Math.min(Math.ceil(have / PAGE / 2), 1024));
      try {
        this.memory.grow(pages);
      } catch (error) {
        throw new Error(
          `WASM memory is full: cannot grow from ${have} to ${have + pages * PAGE} bytes for a ${bytes}-byte buffer (${String(error)})`,
        );
      }
    }
    this.top = end;
    return ptr;
  }
}

/**
 * An optimizer update that may still be running on worker threads (see ThreadPool.start): the
 * buffers it reads and writes, and how to wait for it. Every kernel call waits for it first, and
 * so does JavaScript reading or writing one of its buffers.
 */
interface UpdateInFlight {
  busy: boolean;
  uses(ptr: number): boolean;
  settle(): void;
}

class WasmStorage implements Storage {
  /** Made when first read: most buffers of a step are only ever passed to kernels. */
  private view: Float32Array | undefined;
  freed = false;

  constructor(readonly memory: WebAssembly.Memory, readonly ptr: number, readonly length: number, private readonly inFlight: UpdateInFlight) {}

  get data(): Float32Array {
    const inFlight = this.inFlight;
    if (inFlight.busy && inFlight.uses(this.ptr)) inFlight.settle();
    // memory.grow detaches the old buffer: re-create the view over the new one.
    let view = this.view;
    if (view === undefined || view.buffer !== this.memory.buffer) view = this.view = new Float32Array(this.memory.buffer, this.ptr, this.length);
    return view;
  }
}

class WasmByteStorage implements ByteStorage {
  private view: Uint8Array;
  freed = false;

  constructor(readonly memory: WebAssembly.Memory, readonly ptr: number, readonly length: number) {
    this.view = new Uint8Array(memory.buffer, ptr, length);
  }

  get data(): Uint8Array {
    if (this.view.buffer !== this.memory.buffer) this.view = new Uint8Array(this.memory.buffer, this.ptr, this.length);
    return this.view;
  }
}

/**
 * When the zero-skipping kernels run. A call takes them when the output has at least
 * `minColumns` columns and the first rows of its input hold at least the given fraction of
 * exact zeros. Break-even points measured on V8 (x86-64) against the dense kernels, batch 32,
 * 784 → 128: the forward at about 0.41 zeros (0.88 of the dense time at 0.5), the weight
 * gradient at about 0.5 for zeros at random places but 0.8 of the dense time at 0.5 on
 * Fashion-MNIST images, whose border pixels are zero in every image of a batch. Narrow outputs
 * (the 10 classes) are twice as slow sparse, so the second layer stays dense.
 */
export interface SparseInputPolicy {
  /** Off makes every call dense (tests and benchmarks compare the two paths). */
  enabled: boolean;
  minZeroFractionForward: number;
  minZeroFractionGradient: number;
  minColumns: number;
  /**
   * Inputs with fewer features (x's columns) stay dense: a first convolution's 3×3 patches (9
   * features) ran 7% (forward) and 12% (weight gradient) slower on the zero-skipping kernels.
   */
  minFeatures: number;
  /** Calls that took the zero-skipping forward and weight gradient. */
  forwardCalls: number;
  gradientCalls: number;
}

/** Rows sampled to decide: enough for a stable fraction, few enough to cost nothing. */
const SAMPLE_ROWS = 16;

/**
 * How much work pays for another thread: a share of a split call does at least this much.
 * Handing a task to a spinning worker costs about a microsecond (see the bench's profile), so a
 * share should be worth several: about 10 µs of multiply-adds, or of Adam's elements.
 */
export interface ThreadPolicy {
  /** Multiply-adds per share of a matrix product. */
  minProductWork: number;
  /** Elements per share of an optimizer update. */
  minUpdateElements: number;
  /** Bytes per share of pixel scaling. */
  minBytes: number;
  /** Row elements per share of a row-wise softmax. */
  minRowElements: number;
  /**
   * Floats written per share of a kernel that moves or transforms data: ReLU's gradient,
   * patches (im2col, col2im), max pooling and Winograd's transforms.
   */
  minMovedFloats: number;
  /**
   * Batches of at most this many rows (training) split a zero-skipping forward by rows of the
   * weight, as the weight gradient and the optimizer step split it (see sparseForward).
   */
  maxSlicedRows: number;
  /**
   * Shares per thread of a zero-skipping forward split by rows (batches over maxSlicedRows:
   * inference): rows are independent and read the weight only, so finer shares cost nothing
   * in locality, and a thread on a faster or less busy core claims more of them.
   */
  rowSharesPerThread: number;
  /** Calls that were split between threads (for tests and the profile). */
  splitCalls: number;
  /** Whether calls of one share per thread are sized by the threads' measured speeds (see threads.ts). */
  weightedShares: boolean;
  /**
   * Whether a split optimizer update returns once the caller's share is done, its workers'
   * shares finishing beside the JavaScript that follows (see startUpdate). Off: it returns when
   * every share is done, as other calls do (tests and benchmarks compare the two).
   */
  overlapUpdates: boolean;
  /**
   * How long (µs) a worker spins for its next task before it sleeps; undefined: 50 µs when every
   * thread has a core of its own, else 0 (see threads.ts). The profile compares spins with it.
   */
  workerSpinMicros: number | undefined;
}

/** The WASM Kernels plus what tests and benchmarks need to look inside. */
export interface WasmKernels extends Kernels {
  readonly name: 'wasm';
  /** The linear memory every Storage of this backend lives in. */
  readonly memory: WebAssembly.Memory;
  /** Which build runs: 'simd', or 'relaxed-simd' where the runtime accepts it. */
  readonly variant: 'simd' | 'relaxed-simd';
  /** Bytes taken from linear memory so far, including free blocks and GEMM scratch. */
  reservedBytes(): number;
  /** When the zero-skipping kernels run, and how often they did. */
  readonly sparseInput: SparseInputPolicy;
  /** When 3×3 convolutions take Winograd's algorithm, and how often they did. */
  readonly winograd: WinogradPolicy;
  /** When a convolution's gradients skip the zeros of its output gradient, and how often they did. */
  readonly sparseGradient: SparseGradientPolicy;
  /** When convolutions' forward runs the direct kernel (small patches), and how often it did. */
  readonly directConv: DirectConvPolicy;
  /** When convolutions' filter gradient runs the direct kernel (small patches), and how often it did. */
  readonly directFilterGrad: DirectFilterGradPolicy;
  /** Threads kernels may use now (1: only the caller's). */
  readonly threads: number;
  /**
   * Use up to `count` threads (the caller's included). Returns the number now in use: 1 when
   * this backend's memory is not shared (see `threadsUnavailable`).
   */
  setThreads(count: number): number;
  /** Resolves when every worker of the pool has started (kernels run on those that have). */
  threadsReady(): Promise<void>;
  /** Why this backend cannot use more than one thread, if it cannot. */
  readonly threadsUnavailable: string | undefined;
  /** When a call is split between threads. */
  readonly threadPolicy: ThreadPolicy;
  /** µs per empty task handed to every thread and waited for, over `calls` in a row (0 on one thread). */
  measureDispatch(calls: number): number;
  /** Shares of split calls that worker threads (not the caller's) ran, since the pool started. */
  readonly workerShares: number;
  /**
   * Split calls, since the pool started, in which the calling thread, done with its own shares,
   * waited more than 50 µs for the workers' shares, and those waits in all (ms).
   */
  readonly stalls: { calls: number; ms: number };
  /**
   * Split calls, since the pool started, that found a worker they handed a share to asleep and
   * woke it (one per worker woken).
   */
  readonly wakes: number;
  /**
   * By task, since the pool started: how long split calls' shares ran on the calling thread and
   * on workers, and how long the caller waited for the workers' (a copy; empty on one thread).
   */
  readonly shareTimings: Map<string, ShareTiming>;
  /**
   * Each thread's speed, as a fraction of all of them, as the pool has measured it: a call of one
   * share per thread gives each thread that much of the output ([1] on one thread).
   */
  readonly shareSpeeds: number[];
  /** Fixes the threads' relative speeds (one positive number per thread), or, with undefined, learns them again. */
  setShareSpeeds(speeds: readonly number[] | undefined): void;
  /**
   * Whether an optimizer update may still be running on workers (see threadPolicy.overlapUpdates):
   * the next kernel call, or reading or writing one of its buffers, waits for it.
   */
  readonly updateInFlight: boolean;
  /**
   * By the pointer of the weight an overlapped update writes: the caller's share of it, as a
   * fraction of what its speed gives it (1 at first; lower while workers were still busy when the
   * caller came back for them). A copy; empty on one thread.
   */
  readonly callerLeads: Map<number, number>;
}

export interface WasmKernelsOptions {
  /** Threads to start with (default 1). */
  threads?: number;
  /**
   * The build: 'simd', or 'relaxed-simd' (fused multiply-adds: other floats than 'simd', and
   * only where the runtime accepts it). Default: relaxed where accepted, else simd.
   */
  variant?: KernelVariant;
}

/** Why the memory cannot be shared between threads here, or undefined if it can. */
function threadsUnavailableReason(): string | undefined {
  if (!threadHost()) return 'no way to start threads is installed in this runtime';
  return sharedMemoryUnavailableReason();
}

/**
 * Kernels over WebAssembly SIMD. Throws if the runtime has no WASM SIMD; the caller then
 * falls back to the reference kernels (and says so).
 */
export function createWasmKernels({ threads: initialThreads = 1, variant = preferredVariant() }: WasmKernelsOptions = {}): WasmKernels {
  if (!simdSupported()) {
    throw new Error('this JavaScript runtime does not support WebAssembly SIMD');
  }
  // Shared memory wherever threads can run, so the thread count can change without moving a tensor.
  const threadsUnavailable = threadsUnavailableReason();
  const sharedMemory = threadsUnavailable === undefined ? createSharedMemory() : undefined;
  const wasm: KernelExports = instantiateKernels(variant, { memory: sharedMemory });
  const memory = wasm.memory;
  const heap = new WasmHeap(memory, wasm.heapBase());
  const zero = (ptr: number, size: number): void => wasm.fill(ptr, size >> 2, 0);
  const leaveAsIs = (): void => {};

  let pool: ThreadPool | undefined;
  let threads = 1;
  function setThreads(count: number): number {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`threads must be a positive integer, got ${count}`);
    const wanted = sharedMemory ? Math.min(count, MAX_THREADS) : 1;
    if (wanted === threads && (wanted === 1 || (pool && !pool.isClosed))) return threads;
    pool?.close();
    pool = undefined;
    threads = wanted;
    if (wanted > 1) {
      pool = new ThreadPool({
        kernels: wasm, memory, module: kernelsModule(variant, { shared: true }), variant, threads: wanted, host: threadHost()!,
      });
    }
    return threads;
  }
  const threadPolicy: ThreadPolicy = {
    minProductWork: 1 << 17,
    minUpdateElements: 1 << 14,
    minBytes: 1 << 16,
    minRowElements: 1 << 12,
    minMovedFloats: 1 << 14,
    maxSlicedRows: 256,
    rowSharesPerThread: 4,
    splitCalls: 0,
    weightedShares: true,
    overlapUpdates: true,
    workerSpinMicros: undefined,
  };
  /**
   * Shares a call of `work` units gets, when each share should do at least `minWork` and the
   * output has `units` independent pieces: one per thread, or up to `perThread` per thread, so
   * that a faster thread claims more of them. 1 means: run it here, now, without the pool.
   */
  function sharesFor(work: number, minWork: number, units: number, perThread = 1): number {
    if (pool === undefined) return 1;
    if (pool.isClosed) {
      // A worker failed and the pool shut itself down: carry on with the caller's thread.
      pool = undefined;
      threads = 1;
      return 1;
    }
    return Math.max(1, Math.min(threads * perThread, MAX_SHARES, Math.floor(work / minWork), units));
  }
  function parallel(task: number, shares: number): void {
    threadPolicy.splitCalls++;
    pool!.weightShares = threadPolicy.weightedShares;
    pool!.spinMicros = threadPolicy.workerSpinMicros ?? pool!.defaultSpinMicros;
    pool!.run(task, shares);
  }

  /**
   * An optimizer update of the weight `w` (and its slots), split, returning once the caller's
   * share is done: the workers finish theirs while the caller goes on with the step's
   * JavaScript (after the last update, the largest, that is freeing the step's buffers and
   * copying in the next batch). The next kernel call, or JavaScript touching one of `buffers`,
   * waits for them first (settle).
   */
  function startUpdate(task: number, shares: number, w: Storage, ...buffers: Array<Storage | null>): void {
    if (!threadPolicy.overlapUpdates) {
      parallel(task, shares);
      return;
    }
    threadPolicy.splitCalls++;
    pool!.weightShares = threadPolicy.weightedShares;
    pool!.spinMicros = threadPolicy.workerSpinMicros ?? pool!.defaultSpinMicros;
    pool!.start(task, shares, w.ptr);
    if (!pool!.busy) return;
    inFlight.busy = true;
    inFlightBuffers.length = 0;
    inFlightBuffers.push(w.ptr);
    for (const buffer of buffers) if (buffer !== null) inFlightBuffers.push(buffer.ptr);
  }
  const inFlightBuffers: number[] = [];
  /** Buffers freed while an update was in flight (pointer, bytes): freed once it is done. */
  const laterFrees: number[] = [];
  const inFlight: UpdateInFlight = {
    busy: false,
    uses: (ptr) => inFlightBuffers.includes(ptr),
    settle() {
      if (!inFlight.busy) return;
      inFlight.busy = false;
      try {
        pool?.finish();
      } finally {
        for (let i = 0; i < laterFrees.length; i += 2) heap.release(laterFrees[i], laterFrees[i + 1]);
        laterFrees.length = 0;
      }
    },
  };

  // GEMM packing scratch, one block per thread, kept at the largest size asked for so far.
  let scratchPtr = 0;
  let scratchBytes = 0;
  /** Bytes of one thread's block. */
  let scratchStride = 0;
  const scratch = (n: number, k: number): number => ensureScratch(wasm.gemmScratchBytes(n, k));
  const sparseScratch = (n: number, k: number, m: number): number => ensureScratch(wasm.sparseInputScratchBytes(n, k, m));
  function ensureScratch(need: number): number {
    const stride = Math.max(scratchStride, Math.ceil(need / ALIGN) * ALIGN);
    // Shares find their blocks `scratchStride` apart: the block must hold one per thread at that
    // stride, also after the thread count has grown since it was reserved.
    if (stride > scratchStride || stride * threads > scratchBytes) {
      if (scratchBytes > 0) heap.release(scratchPtr, scratchBytes);
      scratchStride = stride;
      scratchBytes = scratchStride * threads;
      scratchPtr = heap.reserve(scratchBytes);
    }
    return scratchPtr;
  }
  setThreads(initialThreads);

  const sparseInput: SparseInputPolicy = {
    enabled: true,
    minZeroFractionForward: 0.42,
    minZeroFractionGradient: 0.45,
    minColumns: 24,
    minFeatures: 32,
    forwardCalls: 0,
    gradientCalls: 0,
  };
  /** Whether the first rows of x[rows, cols] hold at least `fraction` zeros. */
  const mostlyZeros = (x: Storage, rows: number, cols: number, fraction: number): boolean => {
    const sampled = Math.min(rows, SAMPLE_ROWS) * cols;
    return sampled > 0 && wasm.countZeros(x.ptr, sampled) >= fraction * sampled;
  };

  /**
   * out[m,n] = act(x[m,k]·w[k,n] + bias[n]) skipping x's zeros (pointers), split between threads
   * by rows of w for a training batch, else by rows of x.
   *
   * Why by rows of w: each training step, the weight gradient and the optimizer write w and its
   * gradient split by rows of w, so what a thread wrote sits in its own core's cache. A forward
   * split by rows of x has every thread read all of w, and so fetch the other thread's half of
   * it (200 KB for the default model's first layer) from the other core's cache. Measured here
   * (AMD EPYC, 2 vCPUs) on the first layer's update and forward alone: 232 µs on 2 threads split
   * by rows of x, 165 µs on 1 thread, 107 µs on 2 threads split by rows of w. Inference batches
   * read a w nobody writes, and keep the row split.
   * Why not by columns of w (the forward, the weight gradient and Adam alike, which also keeps
   * each thread on its own part of w, with no pipeline): every thread must then list the
   * nonzeros of the whole batch, each feature's list serves half as many columns, and Adam runs
   * over rows of 64 floats instead of one long run. Measured on the Zen 3 EPYC, a two-thread
   * training step of the default model took 420 µs that way against 349 µs by rows (medians of
   * 16 passes of 1,000 steps, the two in turns in one process).
   */
  function sparseForward(m: number, n: number, k: number, x: number, w: number, bias: number, out: number, relu: boolean): void {
    const s = sparseScratch(n, k, m);
    const bySlices = m <= threadPolicy.maxSlicedRows;
    const shares = bySlices
      ? sharesFor(m * n * k, threadPolicy.minProductWork, Math.floor(k / 64))
      : sharesFor(m * n * k, threadPolicy.minProductWork, m, threadPolicy.rowSharesPerThread);
    if (shares <= 1) {
      wasm.denseSparseInput(m, n, k, x, w, bias, out, relu, s);
      return;
    }
    const args = pool!.args;
    args[0] = m; args[1] = n; args[2] = k; args[3] = x; args[4] = w; args[5] = bias; args[6] = out;
    args[7] = relu ? 1 : 0; args[8] = s; args[9] = scratchStride;
    if (!bySlices) {
      parallel(TASK.sparseForwardRows, shares);
      return;
    }
    args[10] = sliceFlags(m);
    sliceStamp = (sliceStamp + 256) | 0;
    args[11] = sliceStamp;
    parallel(TASK.sparseForwardSlices, shares);
  }
  // The flags the forward's slices hand blocks of rows on with (see denseSparseInputSlice).
  let sliceFlagsPtr = 0;
  let sliceFlagsSize = 0;
  /** Changes by 256 a call, so no flag left from an earlier call matches (a call has < 256 slices). */
  let sliceStamp = 0;
  function sliceFlags(m: number): number {
    const need = wasm.sliceFlagsBytes(m);
    if (need > sliceFlagsSize) {
      if (sliceFlagsSize > 0) heap.release(sliceFlagsPtr, sliceFlagsSize);
      sliceFlagsSize = need;
      sliceFlagsPtr = heap.reserve(need);
      wasm.fill(sliceFlagsPtr, need >> 2, 0);
    }
    return sliceFlagsPtr;
  }

  const winograd: WinogradPolicy = { enabled: true, minChannels: 4, byChunks: true, chunkBytes: 1 << 19, calls: 0 };
  const sparseGradient: SparseGradientPolicy = { enabled: true, minZeroFraction: 0.5, minPatch: 32, direct: true, byImages: true, calls: 0, directCalls: 0 };
  const directConv: DirectConvPolicy = { enabled: true, maxPatch: 27, calls: 0 };
  const directFilterGrad: DirectFilterGradPolicy = { enabled: true, maxPatch: 27, calls: 0 };
  /** The product C = op(A)·op(B) (+ bias, ReLU for dense) split by rows or columns of C. */
  function productInParallel(
    dense: boolean, m: number, n: number, k: number, a: Storage, transposeA: boolean, b: Storage, transposeB: boolean,
    c: Storage, accumulate: boolean, bias: Storage | null, relu: boolean,
  ): boolean {
    // Splitting rows makes every thread pack all of op(B) (k·n); splitting columns, all of
    // op(A) (m·k): split the longer side.
    const byRows = n <= m;
    const shares = sharesFor(m * n * k, threadPolicy.minProductWork, byRows ? Math.ceil(m / 4) : Math.ceil(n / 8));
    if (shares <= 1) return false;
    const s = scratch(n, k);
    const args = pool!.args;
    args[0] = dense ? 1 : 0;
    args[1] = m; args[2] = n; args[3] = k;
    args[4] = a.ptr; args[5] = transposeA ? 1 : 0;
    args[6] = b.ptr; args[7] = transposeB ? 1 : 0;
    args[8] = c.ptr; args[9] = accumulate ? 1 : 0;
    args[10] = bias === null ? 0 : bias.ptr; args[11] = relu ? 1 : 0;
    args[12] = s; args[13] = scratchStride;
    parallel(byRows ? TASK.productRows : TASK.productColumns, shares);
    return true;
  }

  const kernels: WasmKernels = {
    name: 'wasm',
    precision: 'float32',
    memory,
    variant: wasm.relaxedSimd() ? 'relaxed-simd' : 'simd',
    reservedBytes: () => heap.reservedBytes(),
    sparseInput,
    winograd,
    sparseGradient,
    directConv,
    directFilterGrad,
    get threads() {
      return pool?.isClosed ? 1 : threads;
    },
    setThreads,
    threadsReady: () => pool?.ready() ?? Promise.resolve(),
    threadsUnavailable,
    threadPolicy,
    get workerShares() {
      inFlight.settle();
      return pool?.workerShares ?? 0;
    },
    get stalls() {
      inFlight.settle();
      return { calls: pool?.stalls ?? 0, ms: pool?.stalledMs ?? 0 };
    },
    get wakes() {
      inFlight.settle();
      return pool?.wakes ?? 0;
    },
    get shareTimings() {
      inFlight.settle();
      return pool?.shareTimings ?? new Map();
    },
    get shareSpeeds() {
      inFlight.settle();
      return pool && !pool.isClosed ? pool.shareSpeeds : [1];
    },
    setShareSpeeds(speeds) {
      pool?.setShareSpeeds(speeds);
    },
    get updateInFlight() {
      return inFlight.busy;
    },
    get callerLeads() {
      return pool?.callerLeads ?? new Map();
    },
    measureDispatch(calls) {
      if (pool === undefined || pool.isClosed) return 0;
      const started = performance.now();
      for (let i = 0; i < calls; i++) pool.run(TASK.nothing, threads);
      return ((performance.now() - started) * 1000) / calls;
    },

    alloc(length, zeroed = true) {
      return new WasmStorage(memory, heap.alloc(length * 4, zeroed ? zero : leaveAsIs), length, inFlight);
    },
    free(storage) {
      if (!(storage instanceof WasmStorage) || storage.memory !== memory) {
        throw new Error('free: this buffer was not allocated by this WASM backend');
      }
      const s = storage;
      if (s.freed) throw new Error(`buffer at ${s.ptr} (${s.length} floats) freed twice`);
      s.freed = true;
      if (inFlight.busy) {
        // An update still running may read this buffer (its gradient, freed with the step's
        // scope): no other buffer gets its block until the update is done.
        heap.liveBytes -= blockSize(s.length * 4);
        laterFrees.push(s.ptr, s.length * 4);
      } else {
        heap.free(s.ptr, s.length * 4);
      }
    },
    allocBytes(length) {
      return new WasmByteStorage(memory, heap.alloc(length, zero), length);
    },
    freeBytes(storage) {
      if (!(storage instanceof WasmByteStorage) || storage.memory !== memory) {
        throw new Error('freeBytes: this buffer was not allocated by this WASM backend');
      }
      const s = storage;
      if (s.freed) throw new Error(`byte buffer at ${s.ptr} (${s.length} bytes) freed twice`);
      s.freed = true;
      heap.free(s.ptr, s.length);
    },
    memoryBytes: () => heap.liveBytes,
    holds: (storage) => storage instanceof WasmStorage && storage.memory === memory && !storage.freed,

    fill: (out, value) => wasm.fill(out.ptr, out.length, value),
    copy: (src, dst) => wasm.copy(src.ptr, dst.ptr, src.length),
    addInto: (src, dst) => wasm.addInto(src.ptr, dst.ptr, dst.length),
    multiply: (a, b, out) => wasm.multiply(a.ptr, b.ptr, out.ptr, out.length),
    scale: (a, factor, out) => wasm.scale(a.ptr, factor, out.ptr, out.length),
    axpy: (alpha, x, y) => wasm.axpy(alpha, x.ptr, y.ptr, y.length),
    sum: (x) => wasm.sum(x.ptr, x.length),
    dot: (a, b) => wasm.dot(a.ptr, b.ptr, a.length),
    normalizeBytes(src, length, factor, dst) {
      const shares = sharesFor(length, threadPolicy.minBytes, Math.ceil(length / 16));
      if (shares <= 1) {
        wasm.normalizeBytes(src.ptr, length, factor, dst.ptr);
        return;
      }
      const args = pool!.args;
      args[0] = src.ptr; args[1] = length; args[2] = factor; args[3] = dst.ptr;
      parallel(TASK.normalizeBytes, shares);
    },

    gemm(m, n, k, a, transposeA, b, transposeB, c, accumulate) {
      // Xᵀ·dZ with X stored [k, m]: the weight gradient of a dense layer.
      if (
        transposeA && !transposeB && sparseInput.enabled && n >= sparseInput.minColumns && m >= sparseInput.minFeatures &&
        mostlyZeros(a, k, m, sparseInput.minZeroFractionGradient)
      ) {
        sparseInput.gradientCalls++;
        const s = sparseScratch(n, m, k);
        const shares = sharesFor(m * n * k, threadPolicy.minProductWork, m);
        if (shares <= 1) {
          wasm.weightGradSparseInput(m, n, k, a.ptr, b.ptr, c.ptr, accumulate, s);
          return;
        }
        const args = pool!.args;
        args[0] = m; args[1] = n; args[2] = k; args[3] = a.ptr; args[4] = b.ptr; args[5] = c.ptr;
        args[6] = accumulate ? 1 : 0; args[7] = s; args[8] = scratchStride;
        parallel(TASK.sparseWeightGradRows, shares);
        return;
      }
      if (productInParallel(false, m, n, k, a, transposeA, b, transposeB, c, accumulate, null, false)) return;
      const s = scratch(n, k);
      wasm.gemm(m, n, k, a.ptr, transposeA, b.ptr, transposeB, c.ptr, accumulate, s);
    },
    biasAdd: (m, n, x, bias, out) => wasm.biasAdd(m, n, x.ptr, bias.ptr, out.ptr),
    columnSums: (m, n, x, out, accumulate) => wasm.columnSums(m, n, x.ptr, out.ptr, accumulate),
    denseForward(m, n, k, x, w, bias, out, relu) {
      if (sparseInput.enabled && n >= sparseInput.minColumns && k >= sparseInput.minFeatures && mostlyZeros(x, m, k, sparseInput.minZeroFractionForward)) {
        sparseInput.forwardCalls++;
        sparseForward(m, n, k, x.ptr, w.ptr, bias.ptr, out.ptr, relu);
        return;
      }
      if (productInParallel(true, m, n, k, x, false, w, false, out, false, bias, relu)) return;
      const s = scratch(n, k);
      wasm.dense(m, n, k, x.ptr, w.ptr, bias.ptr, out.ptr, relu, s);
    },

    reluForward: (x, out) => wasm.reluForward(x.ptr, out.ptr, out.length),
    reluBackward(y, dy, dx, accumulate) {
      const n = dx.length;
      const shares = sharesFor(n, threadPolicy.minMovedFloats, Math.ceil(n / 4));
      if (shares <= 1) {
        wasm.reluBackward(y.ptr, dy.ptr, dx.ptr, n, accumulate);
        return;
      }
      const args = pool!.args;
      args[0] = y.ptr; args[1] = dy.ptr; args[2] = dx.ptr; args[3] = n; args[4] = accumulate ? 1 : 0;
      parallel(TASK.reluBackward, shares);
    },
    softmax(m, n, x, out) {
      const shares = sharesFor(m * n, threadPolicy.minRowElements, m);
      if (shares <= 1) {
        wasm.softmax(m, n, x.ptr, out.ptr);
        return;
      }
      const args = pool!.args;
      args[0] = m; args[1] = n; args[2] = x.ptr; args[3] = out.ptr;
      parallel(TASK.softmaxRows, shares);
    },
    logSoftmax: (m, n, x, out) => wasm.logSoftmax(m, n, x.ptr, out.ptr),
    softmaxBackward: (m, n, y, dy, dx) => wasm.softmaxBackward(m, n, y.ptr, dy.ptr, dx.ptr),
    logSoftmaxBackward: (m, n, y, dy, dx) => wasm.logSoftmaxBackward(m, n, y.ptr, dy.ptr, dx.ptr),

    // Convolution and max pooling: wasm-conv.ts.
    ...createWasmConvKernels({
      wasm,
      memory,
      reserve: (bytes) => heap.reserve(bytes),
      release: (ptr, bytes) => heap.release(ptr, bytes),
      products: () => kernels,
      sparseForward,
      threadPolicy,
      sharesFor,
      taskArgs: () => pool!.args,
      parallel,
      threadScratch: ensureScratch,
      scratchStride: () => scratchStride,
    }, { winograd, sparseGradient, direct: directConv, directFilterGrad }),

    softmaxCrossEntropyForward: (m, n, logits, labels, probs) =>
      wasm.softmaxCrossEntropyForward(m, n, logits.ptr, labels.ptr, probs.ptr),
    softmaxCrossEntropyBackward: (m, n, probs, labels, factor, dlogits) =>
      wasm.softmaxCrossEntropyBackward(m, n, probs.ptr, labels.ptr, factor, dlogits.ptr),
    crossEntropyFromProbsForward: (m, n, probs, labels, epsilon) =>
      wasm.crossEntropyFromProbsForward(m, n, probs.ptr, labels.ptr, epsilon),
    crossEntropyFromProbsBackward: (m, n, probs, labels, epsilon, factor, dprobs) =>
      wasm.crossEntropyFromProbsBackward(m, n, probs.ptr, labels.ptr, epsilon, factor, dprobs.ptr),
    countCorrect: (m, n, scores, labels) => wasm.countCorrect(m, n, scores.ptr, labels.ptr),

    sgdUpdate(w, g, velocity, lr, momentum, nesterov) {
      const n = w.length;
      const shares = sharesFor(n, threadPolicy.minUpdateElements, Math.ceil(n / 4));
      if (shares <= 1) {
        wasm.sgdUpdate(w.ptr, g.ptr, velocity === null ? 0 : velocity.ptr, n, lr, momentum, nesterov);
        return;
      }
      const args = pool!.args;
      args[0] = w.ptr; args[1] = g.ptr; args[2] = velocity === null ? 0 : velocity.ptr; args[3] = n;
      args[4] = lr; args[5] = momentum; args[6] = nesterov ? 1 : 0;
      startUpdate(TASK.sgd, shares, w, g, velocity);
    },
    adamUpdate(w, g, m, v, lrT, beta1, beta2, epsilon) {
      const n = w.length;
      const shares = sharesFor(n, threadPolicy.minUpdateElements, Math.ceil(n / 4));
      if (shares <= 1) {
        wasm.adamUpdate(w.ptr, g.ptr, m.ptr, v.ptr, n, lrT, beta1, beta2, epsilon);
        return;
      }
      const args = pool!.args;
      args[0] = w.ptr; args[1] = g.ptr; args[2] = m.ptr; args[3] = v.ptr; args[4] = n;
      args[5] = lrT; args[6] = beta1; args[7] = beta2; args[8] = epsilon;
      startUpdate(TASK.adam, shares, w, g, m, v);
    },
    rmspropUpdate(w, g, ms, mg, mom, lr, rho, momentum, epsilon) {
      wasm.rmspropUpdate(w.ptr, g.ptr, ms.ptr, mg === null ? 0 : mg.ptr, mom === null ? 0 : mom.ptr, w.length, lr, rho, momentum, epsilon);
    },
  };
  // Every kernel call first waits for an update left in flight (see startUpdate): it may read
  // what the update writes, and the task's arguments are about to be overwritten.
  for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(kernels))) {
    const kernel: unknown = descriptor.value;
    if (typeof kernel !== 'function' || NO_SETTLING.has(name)) continue;
    Object.defineProperty(kernels, name, {
      ...descriptor,
      value: function settledFirst(this: unknown, ...args: unknown[]): unknown {
        if (inFlight.busy) inFlight.settle();
        return (kernel as (...a: unknown[]) => unknown).apply(this, args);
      },
    });
  }
  return kernels;
}

/** Calls that touch no buffer's contents and so need not wait for an update in flight. */
const NO_SETTLING = new Set(['alloc', 'allocBytes', 'free', 'freeBytes', 'memoryBytes', 'reservedBytes']);
