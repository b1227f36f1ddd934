/**
 * @descent/kernels-wasm: AssemblyScript SIMD kernels compiled to WebAssembly.
 *
 * The .wasm binaries are embedded (see scripts/build.mjs), so this module needs no file
 * system or network. It hands out raw exports over pointers into the module's own memory
 * and knows nothing of tensors: the engine's WASM backend owns allocation and shapes.
 *
 * Shapes are written M×K×N: C[M,N] = op(A)[M,K]·op(B)[K,N].
 */
import { decodeBase64 } from './base64.js';
import {
  maximumSharedPages, relaxedSimdThreadsWasmBase64, relaxedSimdWasmBase64, simdThreadsWasmBase64, simdWasmBase64,
} from './generated/kernels-wasm.js';

/** Byte offset into the kernels' memory. */
export type Ptr = number;
/** 0 or 1 (WebAssembly has no booleans; `true`/`false` convert the same way). */
export type Flag = number | boolean;

/** The raw exports of the kernels module. Lengths are element counts; pointers are byte offsets. */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  /** First byte past the module's static data: the host's heap may start here. */
  heapBase(): Ptr;
  /** 1 for the relaxed-SIMD build, 0 for the plain SIMD build. */
  relaxedSimd(): number;
  /** 1 for a threads build (its memory is imported and shared), else 0. */
  sharedMemory(): number;

  // elementwise.ts
  fill(out: Ptr, n: number, value: number): void;
  copy(src: Ptr, dst: Ptr, n: number): void;
  addInto(src: Ptr, dst: Ptr, n: number): void;
  multiply(a: Ptr, b: Ptr, out: Ptr, n: number): void;
  scale(a: Ptr, s: number, out: Ptr, n: number): void;
  axpy(alpha: number, x: Ptr, y: Ptr, n: number): void;
  sum(x: Ptr, n: number): number;
  dot(a: Ptr, b: Ptr, n: number): number;
  /** dst[i] = src[i]·s for n bytes at src (u8). */
  normalizeBytes(src: Ptr, n: number, s: number, dst: Ptr): void;

  // gemm_f32_4x8_simd.ts
  /** C[m,n] (+)= op(A)·op(B); `scratch` holds gemmScratchBytes(n, k) bytes, 16-byte aligned. */
  gemm(
    m: number, n: number, k: number,
    a: Ptr, transposeA: Flag, b: Ptr, transposeB: Flag,
    c: Ptr, accumulate: Flag, scratch: Ptr,
  ): void;
  /**
   * Rows r0..r1 and columns c0..c1 of gemm's C, exactly as gemm computes them;
   * `scratch` holds gemmScratchBytes(c1 - c0, k) bytes.
   */
  gemmBlock(
    m: number, n: number, k: number,
    a: Ptr, transposeA: Flag, b: Ptr, transposeB: Flag,
    c: Ptr, accumulate: Flag, scratch: Ptr,
    r0: number, r1: number, c0: number, c1: number,
  ): void;
  gemmScratchBytes(n: number, k: number): number;

  // dense.ts
  /** out[m,n] = act(x[m,k]·w[k,n] + bias[n]); `scratch` as for gemm. */
  dense(m: number, n: number, k: number, x: Ptr, w: Ptr, bias: Ptr, out: Ptr, relu: Flag, scratch: Ptr): void;
  /** Rows r0..r1 and columns c0..c1 of dense's out; `scratch` holds gemmScratchBytes(c1 - c0, k) bytes. */
  denseBlock(
    m: number, n: number, k: number, x: Ptr, w: Ptr, bias: Ptr, out: Ptr, relu: Flag, scratch: Ptr,
    r0: number, r1: number, c0: number, c1: number,
  ): void;
  biasAdd(m: number, n: number, x: Ptr, bias: Ptr, out: Ptr): void;
  columnSums(m: number, n: number, x: Ptr, out: Ptr, accumulate: Flag): void;

  // dense_sparse_input.ts (the same products as dense and gemm with transposeA, skipping x's zeros)
  /** out[m,n] = act(x[m,k]·w[k,n] + bias[n]); `scratch` holds sparseInputScratchBytes(n, k, m) bytes. */
  denseSparseInput(m: number, n: number, k: number, x: Ptr, w: Ptr, bias: Ptr, out: Ptr, relu: Flag, scratch: Ptr): void;
  /** dw[k,n] (+)= xᵀ·dz with x stored [m,k], dz [m,n]; `scratch` as for denseSparseInput. */
  weightGradSparseInput(k: number, n: number, m: number, x: Ptr, dz: Ptr, dw: Ptr, accumulate: Flag, scratch: Ptr): void;
  /** Rows k0..k1 of weightGradSparseInput's dw, exactly as it computes them. */
  weightGradSparseInputRows(
    k: number, n: number, m: number, x: Ptr, dz: Ptr, dw: Ptr, accumulate: Flag, scratch: Ptr, k0: number, k1: number,
  ): void;
  /**
   * Features k0..k1 of denseSparseInput's sums for every row, to the bit; slices of one call run
   * at once as a pipeline over blocks of rows, handing each block on through `flags`.
   */
  denseSparseInputSlice(
    m: number, n: number, k: number, x: Ptr, w: Ptr, bias: Ptr, out: Ptr, relu: Flag, scratch: Ptr,
    k0: number, k1: number, slice: number, flags: Ptr, stamp: number,
  ): void;
  /** Bytes of the flags denseSparseInputSlice needs for a batch of m rows. */
  sliceFlagsBytes(m: number): number;
  /** Sets every block's flag to `value` (frees waiting slices after a failure). */
  releaseSliceFlags(flags: Ptr, m: number, value: number): void;
  sparseInputScratchBytes(n: number, k: number, m: number): number;
  /** Number of elements of x[0..n) equal to zero. */
  countZeros(x: Ptr, n: number): number;

  // activations.ts
  reluForward(x: Ptr, out: Ptr, n: number): void;
  reluBackward(y: Ptr, dy: Ptr, dx: Ptr, n: number, accumulate: Flag): void;
  softmax(m: number, n: number, x: Ptr, out: Ptr): void;
  logSoftmax(m: number, n: number, x: Ptr, out: Ptr): void;
  softmaxBackward(m: number, n: number, y: Ptr, dy: Ptr, dx: Ptr): void;
  logSoftmaxBackward(m: number, n: number, y: Ptr, dy: Ptr, dx: Ptr): void;

  // softmax_cross_entropy.ts (labels are class indices stored as float32)
  softmaxCrossEntropyForward(m: number, n: number, logits: Ptr, labels: Ptr, probs: Ptr): number;
  softmaxCrossEntropyBackward(m: number, n: number, probs: Ptr, labels: Ptr, scale: number, dlogits: Ptr): void;
  crossEntropyFromProbsForward(m: number, n: number, probs: Ptr, labels: Ptr, epsilon: number): number;
  crossEntropyFromProbsBackward(
    m: number, n: number, probs: Ptr, labels: Ptr, epsilon: number, scale: number, dprobs: Ptr,
  ): void;
  countCorrect(m: number, n: number, scores: Ptr, labels: Ptr): number;

  // conv2d_nhwc_im2col.ts and maxpool_nhwc_simd.ts. Geometry, in this order: batch, inHeight,
  // inWidth, channels, outHeight, outWidth, windowHeight, windowWidth, strideHeight, strideWidth,
  // padTop, padLeft (see the engine's Window2d).
  /** col[(n,oh,ow), (kh,kw,c)] = x[n, oh·sh−pt+kh, ow·sw−pl+kw, c], 0 on the padding. */
  im2col(...args: [...Geometry2d, x: Ptr, col: Ptr]): void;
  /** dx[n,ih,iw,c] += col[(n,oh,ow), (kh,kw,c)] wherever the patch lies inside the image. */
  col2im(...args: [...Geometry2d, col: Ptr, dx: Ptr]): void;
  maxPool2d(...args: [...Geometry2d, x: Ptr, out: Ptr]): void;
  // conv2d_nhwc_direct.ts: out = act(conv(x, w) + bias) without a patch matrix; filters a multiple of 8.
  conv2dDirect(...args: [...Geometry2d, filters: number, x: Ptr, w: Ptr, bias: Ptr, out: Ptr, relu: Flag]): void;
  // conv2d_nhwc_filter_grad_direct.ts: dw (+)= the filter gradient of small patches, units u0..u1 of 3 taps × 8 filters; filters a multiple of 8.
  conv2dFilterGradDirect(
    ...args: [...Geometry2d, filters: number, x: Ptr, dy: Ptr, dw: Ptr, accumulate: Flag, taps: Ptr, u0: number, u1: number]
  ): void;
  filterGradDirectUnits(windowHeight: number, windowWidth: number, channels: number, filters: number): number;
  filterGradDirectScratchBytes(windowHeight: number, windowWidth: number, channels: number): number;

  // sparse_gradient.ts
  /** dwT[n, kdim] (+)= dzᵀ·x, x [m, kdim], dz [m, n], skipping dz's zeros; `scratch` holds sparseGradScratchBytes(m, n). */
  weightGradSparseGrad(m: number, kdim: number, n: number, x: Ptr, dz: Ptr, dwT: Ptr, accumulate: Flag, scratch: Ptr): void;
  /** Rows f0..f1 of weightGradSparseGrad's dwT, exactly as it computes them (scratch as for it). */
  weightGradSparseGradRows(
    m: number, kdim: number, n: number, x: Ptr, dz: Ptr, dwT: Ptr, accumulate: Flag, scratch: Ptr, f0: number, f1: number,
  ): void;
  sparseGradScratchBytes(m: number, n: number): number;
  /**
   * Rows f0..f1 of weightGradSparseGrad's dwT with x the patch matrix of the image x, read from
   * the image itself (channels a multiple of 16); `scratch` holds sparseGradDirectScratchBytes(m, n).
   */
  weightGradSparseGradDirectRows(
    ...args: [...Geometry2d, n: number, x: Ptr, dz: Ptr, dwT: Ptr, accumulate: Flag, scratch: Ptr, f0: number, f1: number]
  ): void;
  sparseGradDirectScratchBytes(m: number, n: number): number;
  /** dst[cols, rows] (+)= src[rows, cols]ᵀ. */
  transpose(rows: number, cols: number, src: Ptr, dst: Ptr, accumulate: Flag): void;

  // conv2d_nhwc_winograd_f2x2_3x3.ts (3×3, stride 1). `tile` is 256 bytes of scratch, 16-byte aligned.
  // T = batch·⌈outHeight/2⌉·⌈outWidth/2⌉ tiles; transformed arrays are [16][rows][cols].
  /** U[16][C][F] = G g Gᵀ of g [3][3][C][F]. */
  winogradFilterTransform(channels: number, filters: number, g: Ptr, u: Ptr, tile: Ptr): void;
  /** V[16][T][C] = Bᵀ d B of the 4×4 input tiles. */
  winogradInputTransform(...args: [...WinogradGeometry, x: Ptr, v: Ptr, tile: Ptr]): void;
  /** out = act(Aᵀ M A + bias) from M[16][T][F]. */
  winogradOutputTransform(batch: number, outHeight: number, outWidth: number, filters: number, m: Ptr, bias: Ptr, out: Ptr, relu: Flag, tile: Ptr): void;
  /** W[16][T][F] = A e Aᵀ of the 2×2 blocks of dy. */
  winogradGradTransform(batch: number, outHeight: number, outWidth: number, filters: number, dy: Ptr, w: Ptr): void;
  /** dw (+)= Gᵀ M G from M[16][C][F]. */
  winogradFilterGradTransform(channels: number, filters: number, m: Ptr, dw: Ptr, accumulate: Flag, tile: Ptr): void;
  /** dx += B X Bᵀ from X[16][T][C], tiles added where they overlap. */
  winogradInputGradTransform(...args: [...WinogradGeometry, x: Ptr, dx: Ptr, tile: Ptr]): void;
  // The same for images n0..n1 only (their tiles of V, out, W or dx), exactly as the whole call computes them.
  winogradInputTransformImages(...args: [...WinogradGeometry, x: Ptr, v: Ptr, tile: Ptr, n0: number, n1: number]): void;
  winogradOutputTransformImages(
    batch: number, outHeight: number, outWidth: number, filters: number, m: Ptr, bias: Ptr, out: Ptr, relu: Flag, tile: Ptr,
    n0: number, n1: number,
  ): void;
  winogradGradTransformImages(batch: number, outHeight: number, outWidth: number, filters: number, dy: Ptr, w: Ptr, n0: number, n1: number): void;
  winogradInputGradTransformImages(...args: [...WinogradGeometry, x: Ptr, dx: Ptr, tile: Ptr, n0: number, n1: number]): void;
  maxPool2dGrad(...args: [...Geometry2d, x: Ptr, y: Ptr, dy: Ptr, dx: Ptr, accumulate: Flag]): void;

  // optimizers.ts
  /** `velocity` 0 means plain SGD (no momentum buffer). */
  sgdUpdate(w: Ptr, g: Ptr, velocity: Ptr, n: number, lr: number, momentum: number, nesterov: Flag): void;
  adamUpdate(
    w: Ptr, g: Ptr, m: Ptr, v: Ptr, n: number,
    lrT: number, beta1: number, beta2: number, epsilon: number,
  ): void;

  // rmsprop.ts: `mg` 0 means not centered, `mom` 0 means no momentum buffer.
  rmspropUpdate(
    w: Ptr, g: Ptr, ms: Ptr, mg: Ptr, mom: Ptr, n: number,
    lr: number, rho: number, momentum: number, epsilon: number,
  ): void;
}

/** A window over NHWC images, as the convolution and pooling kernels take it. */
export type Geometry2d = [
  batch: number, inHeight: number, inWidth: number, channels: number, outHeight: number, outWidth: number,
  windowHeight: number, windowWidth: number, strideHeight: number, strideWidth: number, padTop: number, padLeft: number,
];

/** A 3×3, stride-1 convolution's geometry, as the Winograd kernels take it. */
export type WinogradGeometry = [
  batch: number, inHeight: number, inWidth: number, channels: number, outHeight: number, outWidth: number, padTop: number, padLeft: number,
];

export type KernelVariant = 'simd' | 'relaxed-simd';

/** The smallest module using a SIMD instruction: `(func (result v128) (i8x16.splat (i32.const 0)))`. */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0x0b, // code: i32.const 0; i8x16.splat; end
]);

/** Whether this runtime accepts WebAssembly SIMD. */
export function simdSupported(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
}

/** Which binary: the SIMD or relaxed-SIMD build, each with its own memory or over a shared one. */
type Build = KernelVariant | `${KernelVariant}-threads`;

const BASE64: Readonly<Record<Build, string>> = {
  simd: simdWasmBase64,
  'relaxed-simd': relaxedSimdWasmBase64,
  'simd-threads': simdThreadsWasmBase64,
  'relaxed-simd-threads': relaxedSimdThreadsWasmBase64,
};

const bytesCache = new Map<Build, Uint8Array<ArrayBuffer>>();
const moduleCache = new Map<Build, WebAssembly.Module>();

/** The embedded .wasm binary of a build (`shared`: the threads build, which imports a shared memory). */
export function kernelsWasmBytes(variant: KernelVariant = 'simd', { shared = false } = {}): Uint8Array<ArrayBuffer> {
  const build: Build = shared ? `${variant}-threads` : variant;
  let bytes = bytesCache.get(build);
  if (!bytes) {
    bytes = decodeBase64(BASE64[build]);
    bytesCache.set(build, bytes);
  }
  return bytes;
}

/** Whether this runtime accepts the relaxed-SIMD build (Node 20 only with --experimental-wasm-relaxed-simd). */
export function relaxedSimdSupported(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(kernelsWasmBytes('relaxed-simd'));
}

/** The build `instantiateKernels` picks: relaxed SIMD where the runtime accepts it, else SIMD. */
export function preferredVariant(): KernelVariant {
  return relaxedSimdSupported() ? 'relaxed-simd' : 'simd';
}

/**
 * Why this runtime cannot share one kernels memory between threads, or undefined if it can.
 * Browsers offer SharedArrayBuffer (and shared WebAssembly memory) only to cross-origin
 * isolated pages.
 */
export function sharedMemoryUnavailableReason(): string | undefined {
  if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') {
    return 'SharedArrayBuffer is not available (a browser page needs cross-origin isolation for it)';
  }
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch (error) {
    return `shared WebAssembly memory is not available (${error instanceof Error ? error.message : String(error)})`;
  }
  if (!WebAssembly.validate(kernelsWasmBytes('simd', { shared: true }))) {
    return 'this runtime rejects the threads build of the kernels (WebAssembly threads)';
  }
  return undefined;
}

/** A shared memory for the threads builds: `initialPages` of 64 KiB, growable to their maximum. */
export function createSharedMemory(initialPages = 1): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: initialPages, maximum: maximumSharedPages, shared: true });
}

/** The compiled module of a build, compiled once per thread and cached (it can be sent to a worker). */
export function kernelsModule(variant: KernelVariant, { shared = false } = {}): WebAssembly.Module {
  const build: Build = shared ? `${variant}-threads` : variant;
  let module = moduleCache.get(build);
  if (!module) {
    module = new WebAssembly.Module(kernelsWasmBytes(variant, { shared }));
    moduleCache.set(build, module);
  }
  return module;
}

/**
 * A kernels instance. Without `memory`: its own memory. With a shared `memory` (from
 * createSharedMemory): the threads build over that memory, so instances on several threads
 * work on the same buffers. `module` (from kernelsModule, possibly sent from another thread)
 * saves compiling again. Compiles synchronously (the binary is small). Throws if the runtime has
 * no WebAssembly SIMD.
 */
export function instantiateKernels(
  variant: KernelVariant = preferredVariant(),
  { memory, module }: { memory?: WebAssembly.Memory; module?: WebAssembly.Module } = {},
): KernelExports {
  if (!simdSupported()) {
    throw new Error('this JavaScript runtime does not support WebAssembly SIMD');
  }
  const compiled = module ?? kernelsModule(variant, { shared: memory !== undefined });
  const instance = new WebAssembly.Instance(compiled, memory ? { env: { memory } } : {});
  return instance.exports as unknown as KernelExports;
}
