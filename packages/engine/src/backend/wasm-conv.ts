/**
 * Convolution and max pooling on the WASM backend.
 *
 * A convolution is the dense layer's product over image patches (im2col; see
 * kernels-wasm/assembly/conv2d_nhwc_im2col.ts): the patches are copied into a scratch matrix
 * `col` [batch·outHeight·outWidth, kh·kw·channels] and the products run in the same GEMM and
 * fused dense kernels as a dense layer, through this backend's own `denseForward` and `gemm`
 * (so the zero-skipping paths, their policy and the threads' row split apply to them too):
 *
 *   forward       out  = act(col · w + bias)        denseForward
 *   filter grad   dw (+)= colᵀ · dz                 gemm, transposeA
 *   input grad    dcol = dz · wᵀ                    gemm, transposeB;  then dx (+)= col2im(dcol)
 *
 * A 1×1 convolution with stride 1 and no padding needs no patches: x itself is the matrix.
 * Other roads to the same sums, each taken where it was measured faster (the kernels-wasm README):
 * - a 3×3 convolution with stride 1 and enough input channels runs its forward through
 *   Winograd's F(2×2, 3×3) (kernels-wasm/assembly/conv2d_nhwc_winograd_f2x2_3x3.ts): transforms
 *   around 16 smaller products, 1.9 times fewer multiply-adds for the tutorial CNN's second
 *   layer, a few images at a time so the transformed tiles stay in cache;
 * - small patches (up to 27 values: a first layer's 3×3 of one channel) are never copied: the
 *   forward (conv2d_nhwc_direct.ts) and the filter gradient (conv2d_nhwc_filter_grad_direct.ts)
 *   read them where they lie in the image;
 * - an output gradient mostly zeros (behind max pooling) has its zeros skipped: the filter
 *   gradient reads its patches from the image when the channels are a multiple of 16
 *   (sparse_gradient.ts), the input gradient runs the zero-skipping forward an image at a time.
 *
 * Threads: besides the products, every step here that writes much is split between threads
 * by its output (thread-tasks.ts): patches, col2im, pooling, the direct forward, Winograd's
 * transforms and chunks by images, Winograd's 16 products by position (each product whole), the
 * zero-skipping filter gradient by filters, the small patches' filter gradient by taps × filters.
 * Each output float is computed by one thread exactly as on one thread.
 */
import type { KernelExports } from '@descent/kernels-wasm';
import type { Kernels, Storage, Window2d } from './kernels.js';
import type { ConvKernels } from './reference-conv.js';
import { TASK, sparseInputGradImages, winogradChunkScratchBytes, winogradForwardChunks } from './thread-tasks.js';
import type { ThreadPolicy } from './wasm.js';

/** The parts of the WASM backend the convolution kernels use. */
export interface WasmConvContext {
  wasm: KernelExports;
  memory: WebAssembly.Memory;
  /** A block of linear memory for the backend's own use, and its release. */
  reserve(bytes: number): number;
  release(ptr: number, bytes: number): void;
  /** The backend's products, called with `col` as an operand. */
  products(): Pick<Kernels, 'gemm' | 'denseForward'>;
  /** The backend's zero-skipping dense product on pointers (split between threads like denseForward's). */
  sparseForward(m: number, n: number, k: number, x: number, w: number, bias: number, out: number, relu: boolean): void;
  /** When a call is split between threads. */
  threadPolicy: ThreadPolicy;
  /** Threads a call of `work` gets when a share should do at least `minWork` over `units` pieces (1: run it here). */
  sharesFor(work: number, minWork: number, units: number): number;
  /** The arguments of the next split call (only when sharesFor gave more than 1). */
  taskArgs(): Float64Array;
  parallel(task: number, shares: number): void;
  /** Scratch of `bytes` for every thread: share s's block is at the result + s·scratchStride(). */
  threadScratch(bytes: number): number;
  scratchStride(): number;
}

/** A scratch matrix in linear memory, passed to the products as a Storage. */
class ScratchMatrix implements Storage {
  private view?: Float32Array;
  constructor(private readonly memory: WebAssembly.Memory, readonly ptr: number, readonly length: number) {}
  get data(): Float32Array {
    if (!this.view || this.view.buffer !== this.memory.buffer) this.view = new Float32Array(this.memory.buffer, this.ptr, this.length);
    return this.view;
  }
}

const geometry = (g: Window2d): [number, number, number, number, number, number, number, number, number, number, number, number] => [
  g.batch, g.inHeight, g.inWidth, g.channels, g.outHeight, g.outWidth,
  g.windowHeight, g.windowWidth, g.strideHeight, g.strideWidth, g.padTop, g.padLeft,
];

/** Whether x is already the patch matrix: a 1×1 window, stride 1, no padding. */
const pointwise = (g: Window2d): boolean =>
  g.windowHeight === 1 && g.windowWidth === 1 && g.strideHeight === 1 && g.strideWidth === 1 && g.padTop === 0 && g.padLeft === 0;

/** A block of linear memory that grows to the largest size asked for and is reused. */
function growingScratch(context: WasmConvContext): (bytes: number) => number {
  let ptr = 0;
  let size = 0;
  return (bytes) => {
    if (bytes > size) {
      if (size > 0) context.release(ptr, size);
      ptr = context.reserve(bytes);
      size = bytes;
    }
    return ptr;
  };
}

/**
 * When 3×3 stride-1 convolutions take Winograd's F(2×2, 3×3) instead of im2col: with at least
 * `minChannels` input channels. Measured on V8 (x86-64) in one run, the tutorial CNN's second
 * layer (13×13×32 → 11×11×64, batch 32): see the kernels-wasm README. With one input channel the
 * per-position products have K = 1 and im2col's single product with K = 9 is faster.
 */
export interface WinogradPolicy {
  enabled: boolean;
  minChannels: number;
  /**
   * Whether the forward runs a few images at a time (transform, 16 products, transform back),
   * each thread its own chunks, so that the transformed tiles stay in cache; else each step for
   * the whole batch. The same floats.
   */
  byChunks: boolean;
  /** Bytes of transformed tiles (V and M) a chunk may take. */
  chunkBytes: number;
  /** Convolution calls (forward, filter gradient, input gradient) that took it. */
  calls: number;
}

/**
 * Whether the forward takes the direct convolution (kernels-wasm/assembly/conv2d_nhwc_direct.ts:
 * no patch matrix, 4 pixels × 8 filters in registers) when filters are a multiple of 8 and the
 * patch is small; larger patches go faster through im2col or Winograd (packages/bench conv
 * suite; see the kernels-wasm README).
 */
export interface DirectConvPolicy {
  enabled: boolean;
  /** Patches of more values (kh·kw·channels) take im2col or Winograd. */
  maxPatch: number;
  /** Forward calls that took it. */
  calls: number;
}

/**
 * The filter gradient of small patches (a first layer's 3×3 of one channel) from the image itself,
 * sums in registers (conv2d_nhwc_filter_grad_direct.ts), instead of im2col + GEMM, whose packing
 * costs as much as its multiplying when the patch holds 9 values.
 */
export interface DirectFilterGradPolicy {
  enabled: boolean;
  /** Patches of more values (kh·kw·channels) take the other paths. */
  maxPatch: number;
  /** Calls that took it. */
  calls: number;
}

/**
 * When a convolution's gradients skip the zeros of its output gradient (sparse_gradient.ts and
 * dense_sparse_input.ts): when the first rows of dy hold at least `minZeroFraction` exact zeros.
 * Behind max pooling they hold about three quarters or more. The results are the same floats.
 */
export interface SparseGradientPolicy {
  enabled: boolean;
  minZeroFraction: number;
  /**
   * Patches of fewer values (kh·kw·channels) keep the GEMM: a first convolution's 3×3 patches of
   * one channel (9 values) took 1.6 times as long skipping zeros, the second's (288) half as long.
   */
  minPatch: number;
  /**
   * Whether a filter gradient over channels that are a multiple of 16 reads the patches from the
   * image itself, instead of writing the patch matrix first (the same floats). In the tutorial
   * CNN's second layer that matrix is 4.5 MB per step, 6.4 times the image batch.
   */
  direct: boolean;
  /**
   * Whether an input gradient computes dcol and adds it back (col2im) an image at a time, so that
   * dcol stays in cache, instead of the whole batch's dcol first (the same floats).
   */
  byImages: boolean;
  /** Gradient calls (filter or input) that skipped the zeros. */
  calls: number;
  /** Of those, filter gradients that read the patches from the image. */
  directCalls: number;
}

/** Sets the window's geometry as a split call's first 12 arguments. */
function setGeometry(args: Float64Array, g: Window2d): void {
  args[0] = g.batch; args[1] = g.inHeight; args[2] = g.inWidth; args[3] = g.channels; args[4] = g.outHeight; args[5] = g.outWidth;
  args[6] = g.windowHeight; args[7] = g.windowWidth; args[8] = g.strideHeight; args[9] = g.strideWidth; args[10] = g.padTop; args[11] = g.padLeft;
}

/** Rows of dy sampled to decide: a few images' worth of positions. */
const SAMPLE_ROWS = 256;

export interface ConvPolicies {
  winograd: WinogradPolicy;
  sparseGradient: SparseGradientPolicy;
  direct: DirectConvPolicy;
  directFilterGrad: DirectFilterGradPolicy;
}

export function createWasmConvKernels(context: WasmConvContext, { winograd, sparseGradient, direct, directFilterGrad }: ConvPolicies): ConvKernels {
  const { wasm, memory, threadPolicy } = context;
  /** Threads for a call writing `floats` floats, split by the batch's images (transforms take a tile scratch per thread). */
  const sharesForImages = (floats: number, g: Window2d): number => context.sharesFor(floats, threadPolicy.minMovedFloats, g.batch);
  const transposed = growingScratch(context), zeroBias = growingScratch(context);
  /** Whether dy [m, filters] is mostly zeros (then its zeros are skipped). */
  const sparse = (dy: Storage, m: number, filters: number, patch: number): boolean => {
    if (!sparseGradient.enabled || patch < sparseGradient.minPatch) return false;
    const sampled = Math.min(m, SAMPLE_ROWS) * filters;
    const taken = sampled > 0 && wasm.countZeros(dy.ptr, sampled) >= sparseGradient.minZeroFraction * sampled;
    if (taken) sparseGradient.calls++;
    return taken;
  };
  /** dwT (+)= dyᵀ·col skipping dy's zeros, split by filters (rows of dwT) between threads. */
  const sparseFilterGrad = (m: number, k: number, filters: number, col: number, dy: number, dwT: number, accumulate: boolean): void => {
    const shares = context.sharesFor(m * k * filters, threadPolicy.minProductWork, filters);
    // Each thread lists the nonzeros of its own filters (at most ⌈filters / shares⌉ of them).
    const list = context.threadScratch(wasm.sparseGradScratchBytes(m, Math.ceil(filters / shares)));
    if (shares <= 1) {
      wasm.weightGradSparseGrad(m, k, filters, col, dy, dwT, accumulate, list);
      return;
    }
    const args = context.taskArgs();
    args[0] = m; args[1] = k; args[2] = filters; args[3] = col; args[4] = dy; args[5] = dwT; args[6] = accumulate ? 1 : 0;
    args[7] = list; args[8] = context.scratchStride();
    context.parallel(TASK.sparseGradRows, shares);
  };
  /** sparseFilterGrad with x's patches read from the image x (channels a multiple of 16). */
  const sparseFilterGradDirect = (g: Window2d, filters: number, x: number, dy: number, dwT: number, accumulate: boolean): void => {
    sparseGradient.directCalls++;
    const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
    const shares = context.sharesFor(m * k * filters, threadPolicy.minProductWork, filters);
    const list = context.threadScratch(wasm.sparseGradDirectScratchBytes(m, Math.ceil(filters / shares)));
    if (shares <= 1) {
      wasm.weightGradSparseGradDirectRows(...geometry(g), filters, x, dy, dwT, accumulate, list, 0, filters);
      return;
    }
    const args = context.taskArgs();
    setGeometry(args, g);
    args[12] = filters; args[13] = x; args[14] = dy; args[15] = dwT; args[16] = accumulate ? 1 : 0;
    args[17] = list; args[18] = context.scratchStride();
    context.parallel(TASK.sparseGradDirectRows, shares);
  };
  /** dw (+)= the filter gradient of small patches, split by units of 3 taps × 8 filters. */
  const filterGradDirect = (g: Window2d, filters: number, x: number, dy: number, dw: number, accumulate: boolean): void => {
    directFilterGrad.calls++;
    const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
    const units = wasm.filterGradDirectUnits(g.windowHeight, g.windowWidth, g.channels, filters);
    const shares = context.sharesFor(m * k * filters, threadPolicy.minProductWork, units);
    const taps = context.threadScratch(wasm.filterGradDirectScratchBytes(g.windowHeight, g.windowWidth, g.channels));
    if (shares <= 1) {
      wasm.conv2dFilterGradDirect(...geometry(g), filters, x, dy, dw, accumulate, taps, 0, units);
      return;
    }
    const args = context.taskArgs();
    setGeometry(args, g);
    args[12] = filters; args[13] = x; args[14] = dy; args[15] = dw; args[16] = accumulate ? 1 : 0;
    args[17] = taps; args[18] = context.scratchStride(); args[19] = units;
    context.parallel(TASK.filterGradDirectUnits, shares);
  };
  const colScratch = growingScratch(context);
  const colMatrix = (rows: number, cols: number): ScratchMatrix => new ScratchMatrix(memory, colScratch(rows * cols * 4), rows * cols);
  const patches = (g: Window2d, x: Storage): Storage => {
    if (pointwise(g)) return x;
    const col = colMatrix(g.batch * g.outHeight * g.outWidth, g.windowHeight * g.windowWidth * g.channels);
    const shares = sharesForImages(col.length, g);
    if (shares <= 1) {
      wasm.im2col(...geometry(g), x.ptr, col.ptr);
      return col;
    }
    const args = context.taskArgs();
    setGeometry(args, g);
    args[12] = x.ptr; args[13] = col.ptr;
    context.parallel(TASK.im2colImages, shares);
    return col;
  };
  /** dx (+)= col2im(dcol). */
  const patchesBack = (g: Window2d, dcol: number, dx: Storage, accumulate: boolean): void => {
    const shares = sharesForImages(g.batch * g.outHeight * g.outWidth * g.windowHeight * g.windowWidth * g.channels, g);
    if (shares <= 1) {
      if (!accumulate) wasm.fill(dx.ptr, dx.length, 0);
      wasm.col2im(...geometry(g), dcol, dx.ptr);
      return;
    }
    const args = context.taskArgs();
    setGeometry(args, g);
    args[12] = dcol; args[13] = dx.ptr; args[14] = accumulate ? 0 : 1;
    context.parallel(TASK.col2imImages, shares);
  };

  // Winograd: the transformed input V [16][T][C], output gradient W [16][T][F], filter U [16][C][F],
  // the products' results M, and one 4×4 tile of v128 for the transforms.
  const vScratch = growingScratch(context), wScratch = growingScratch(context), uScratch = growingScratch(context);
  const mScratch = growingScratch(context), tileScratch = growingScratch(context);
  const takesWinograd = (g: Window2d): boolean => {
    const taken = winograd.enabled && g.windowHeight === 3 && g.windowWidth === 3 && g.strideHeight === 1 && g.strideWidth === 1 &&
      g.channels >= winograd.minChannels;
    if (taken) winograd.calls++;
    return taken;
  };
  const tilesOf = (g: Window2d): number => g.batch * Math.ceil(g.outHeight / 2) * Math.ceil(g.outWidth / 2);
  const winogradGeometry = (g: Window2d): [number, number, number, number, number, number, number, number] =>
    [g.batch, g.inHeight, g.inWidth, g.channels, g.outHeight, g.outWidth, g.padTop, g.padLeft];
  /**
   * The 16 products, one per position of the transformed tile: C[p] = op(A[p])·op(B[p]), in the
   * GEMM kernel (never the zero-skipping ones, so no choice depends on the thread count). Threads
   * share the positions, each product whole: one split call instead of 16.
   */
  const sixteenProducts = (m: number, n: number, k: number, a: number, tA: boolean, b: number, tB: boolean, c: number): void => {
    const scratch = context.threadScratch(wasm.gemmScratchBytes(n, k));
    const shares = context.sharesFor(16 * m * n * k, threadPolicy.minProductWork, 16);
    if (shares <= 1) {
      for (let p = 0; p < 16; p++) wasm.gemm(m, n, k, a + p * m * k * 4, tA, b + p * k * n * 4, tB, c + p * m * n * 4, false, scratch);
      return;
    }
    const args = context.taskArgs();
    args[0] = m; args[1] = n; args[2] = k; args[3] = a; args[4] = tA ? 1 : 0; args[5] = b; args[6] = tB ? 1 : 0; args[7] = c;
    args[8] = scratch; args[9] = context.scratchStride();
    context.parallel(TASK.winogradProducts, shares);
  };
  const filterTransform = (g: Window2d, filters: number, w: Storage): number => {
    const u = uScratch(16 * g.channels * filters * 4);
    wasm.winogradFilterTransform(g.channels, filters, w.ptr, u, tileScratch(256));
    return u;
  };
  const inputTransform = (g: Window2d, x: Storage): number => {
    const v = vScratch(16 * tilesOf(g) * g.channels * 4);
    const shares = sharesForImages(16 * tilesOf(g) * g.channels, g);
    if (shares <= 1) {
      wasm.winogradInputTransform(...winogradGeometry(g), x.ptr, v, tileScratch(256));
      return v;
    }
    const tiles = context.threadScratch(256);
    const args = context.taskArgs();
    args.set(winogradGeometry(g));
    args[8] = x.ptr; args[9] = v; args[10] = tiles; args[11] = context.scratchStride();
    context.parallel(TASK.winogradInput, shares);
    return v;
  };
  const gradTransform = (g: Window2d, filters: number, dy: Storage): number => {
    const w = wScratch(16 * tilesOf(g) * filters * 4);
    const shares = sharesForImages(16 * tilesOf(g) * filters, g);
    if (shares <= 1) {
      wasm.winogradGradTransform(g.batch, g.outHeight, g.outWidth, filters, dy.ptr, w);
      return w;
    }
    const args = context.taskArgs();
    args[0] = g.batch; args[1] = g.outHeight; args[2] = g.outWidth; args[3] = filters; args[4] = dy.ptr; args[5] = w;
    context.parallel(TASK.winogradGrad, shares);
    return w;
  };
  const outputTransform = (g: Window2d, filters: number, product: number, bias: Storage, out: Storage, relu: boolean): void => {
    const shares = sharesForImages(16 * tilesOf(g) * filters, g);
    if (shares <= 1) {
      wasm.winogradOutputTransform(g.batch, g.outHeight, g.outWidth, filters, product, bias.ptr, out.ptr, relu, tileScratch(256));
      return;
    }
    const tiles = context.threadScratch(256);
    const args = context.taskArgs();
    args[0] = g.batch; args[1] = g.outHeight; args[2] = g.outWidth; args[3] = filters; args[4] = product; args[5] = bias.ptr;
    args[6] = out.ptr; args[7] = relu ? 1 : 0; args[8] = tiles; args[9] = context.scratchStride();
    context.parallel(TASK.winogradOutput, shares);
  };
  /** dx (+)= the input gradient's tiles B X Bᵀ, added where they overlap. */
  const inputGradTransform = (g: Window2d, product: number, dx: Storage, accumulate: boolean): void => {
    const shares = sharesForImages(16 * tilesOf(g) * g.channels, g);
    if (shares <= 1) {
      if (!accumulate) wasm.fill(dx.ptr, dx.length, 0);
      wasm.winogradInputGradTransform(...winogradGeometry(g), product, dx.ptr, tileScratch(256));
      return;
    }
    const tiles = context.threadScratch(256);
    const args = context.taskArgs();
    args.set(winogradGeometry(g));
    args[8] = product; args[9] = dx.ptr; args[10] = tiles; args[11] = context.scratchStride(); args[12] = accumulate ? 0 : 1;
    context.parallel(TASK.winogradInputGrad, shares);
  };

  return {
    conv2d(g, filters, x, w, bias, out, relu) {
      if (g.batch === 0) return; // no images: no output
      const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
      if (direct.enabled && filters % 8 === 0 && k <= direct.maxPatch) {
        direct.calls++;
        const shares = sharesForImages(m * filters, g);
        if (shares <= 1) {
          wasm.conv2dDirect(...geometry(g), filters, x.ptr, w.ptr, bias.ptr, out.ptr, relu);
          return;
        }
        const args = context.taskArgs();
        setGeometry(args, g);
        args[12] = filters; args[13] = x.ptr; args[14] = w.ptr; args[15] = bias.ptr; args[16] = out.ptr; args[17] = relu ? 1 : 0;
        context.parallel(TASK.conv2dDirectImages, shares);
        return;
      }
      if (takesWinograd(g)) {
        const T = tilesOf(g);
        if (winograd.byChunks) {
          const u = filterTransform(g, filters, w);
          const tilesPerImage = T / g.batch;
          const chunkImages = Math.max(1, Math.min(g.batch, Math.floor(winograd.chunkBytes / (16 * tilesPerImage * (g.channels + filters) * 4))));
          const chunks = Math.ceil(g.batch / chunkImages);
          const scratch = context.threadScratch(winogradChunkScratchBytes(wasm, winogradGeometry(g), filters, chunkImages));
          const shares = context.sharesFor(16 * T * filters * g.channels, threadPolicy.minProductWork, chunks);
          if (shares <= 1) {
            winogradForwardChunks(wasm, winogradGeometry(g), filters, x.ptr, u, bias.ptr, out.ptr, relu, scratch, chunkImages, 0, chunks);
            return;
          }
          const args = context.taskArgs();
          args.set(winogradGeometry(g));
          args[8] = filters; args[9] = x.ptr; args[10] = u; args[11] = bias.ptr; args[12] = out.ptr; args[13] = relu ? 1 : 0;
          args[14] = scratch; args[15] = context.scratchStride(); args[16] = chunkImages;
          context.parallel(TASK.winogradForwardChunks, shares);
          return;
        }
        const u = filterTransform(g, filters, w), v = inputTransform(g, x);
        const product = mScratch(16 * T * filters * 4);
        sixteenProducts(T, filters, g.channels, v, false, u, false, product);
        outputTransform(g, filters, product, bias, out, relu);
        return;
      }
      context.products().denseForward(m, filters, k, patches(g, x), w, bias, out, relu);
    },
    conv2dFilterGrad(g, filters, x, dy, dw, accumulate) {
      if (g.batch === 0) {
        // No images: a gradient of 0 (the kernels below would leave dw unwritten or split nothing).
        if (!accumulate) wasm.fill(dw.ptr, dw.length, 0);
        return;
      }
      const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
      if (directFilterGrad.enabled && k <= directFilterGrad.maxPatch && filters % 8 === 0) {
        filterGradDirect(g, filters, x.ptr, dy.ptr, dw.ptr, accumulate);
        return;
      }
      if (sparse(dy, m, filters, k)) {
        // dwᵀ = dyᵀ·col, one row of dwᵀ per nonzero of dy; dw is transposed in and out so that
        // accumulating adds in the same order as the GEMM.
        const dwT = transposed(k * filters * 4);
        if (accumulate) wasm.transpose(k, filters, dw.ptr, dwT, false);
        if (sparseGradient.direct && g.channels % 16 === 0) sparseFilterGradDirect(g, filters, x.ptr, dy.ptr, dwT, accumulate);
        else sparseFilterGrad(m, k, filters, patches(g, x).ptr, dy.ptr, dwT, accumulate);
        wasm.transpose(filters, k, dwT, dw.ptr, false);
        return;
      }
      if (takesWinograd(g)) {
        const T = tilesOf(g);
        const v = inputTransform(g, x), wt = gradTransform(g, filters, dy);
        const product = mScratch(16 * g.channels * filters * 4);
        sixteenProducts(g.channels, filters, T, v, true, wt, false, product);
        wasm.winogradFilterGradTransform(g.channels, filters, product, dw.ptr, accumulate, tileScratch(256));
        return;
      }
      context.products().gemm(k, filters, m, patches(g, x), true, dy, false, dw, accumulate);
    },
    conv2dInputGrad(g, filters, dy, w, dx, accumulate) {
      if (g.batch === 0) return; // no images: dx is empty
      const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
      const skipZeros = !pointwise(g) && sparse(dy, m, filters, k);
      if (!skipZeros && takesWinograd(g)) {
        const T = tilesOf(g);
        const u = filterTransform(g, filters, w), wt = gradTransform(g, filters, dy);
        const product = mScratch(16 * T * g.channels * 4);
        sixteenProducts(T, g.channels, filters, wt, false, u, true, product);
        inputGradTransform(g, product, dx, accumulate);
        return;
      }
      if (pointwise(g)) {
        context.products().gemm(m, k, filters, dy, false, w, true, dx, accumulate);
        return;
      }
      if (skipZeros && sparseGradient.byImages) {
        // dcol = dy·wᵀ skipping dy's zeros (the zero-skipping forward kernel with wᵀ and no bias),
        // then col2im, an image at a time, so that dcol stays in cache (4.5 MB for the tutorial
        // CNN's second layer's whole batch).
        const wT = transposed(k * filters * 4), bias = zeroBias(k * 4);
        wasm.transpose(k, filters, w.ptr, wT, false);
        wasm.fill(bias, k, 0);
        const rows = g.outHeight * g.outWidth;
        const dcolBytes = Math.ceil((rows * k * 4) / 64) * 64;
        const scratch = context.threadScratch(dcolBytes + wasm.sparseInputScratchBytes(k, filters, rows));
        const shares = sharesForImages(m * k, g);
        if (shares <= 1) {
          sparseInputGradImages(wasm, geometry(g), filters, dy.ptr, wT, bias, dx.ptr, !accumulate, scratch, dcolBytes, 0, g.batch);
          return;
        }
        const args = context.taskArgs();
        setGeometry(args, g);
        args[12] = filters; args[13] = dy.ptr; args[14] = wT; args[15] = bias; args[16] = dx.ptr; args[17] = accumulate ? 0 : 1;
        args[18] = scratch; args[19] = context.scratchStride(); args[20] = dcolBytes;
        context.parallel(TASK.sparseInputGradImages, shares);
        return;
      }
      const dcol = colMatrix(m, k);
      if (skipZeros) {
        const wT = transposed(k * filters * 4), bias = zeroBias(k * 4);
        wasm.transpose(k, filters, w.ptr, wT, false);
        wasm.fill(bias, k, 0);
        context.sparseForward(m, k, filters, dy.ptr, wT, bias, dcol.ptr, false);
      } else {
        context.products().gemm(m, k, filters, dy, false, w, true, dcol, false);
      }
      patchesBack(g, dcol.ptr, dx, accumulate);
    },
    // Pooling by images: a window lies inside one image, so an image's output and gradient are its own.
    maxPool2d(g, x, out) {
      const shares = sharesForImages(x.length, g);
      if (shares <= 1) {
        wasm.maxPool2d(...geometry(g), x.ptr, out.ptr);
        return;
      }
      const args = context.taskArgs();
      setGeometry(args, g);
      args[12] = x.ptr; args[13] = out.ptr;
      context.parallel(TASK.maxPoolImages, shares);
    },
    maxPool2dGrad(g, x, y, dy, dx, accumulate) {
      const shares = sharesForImages(dx.length, g);
      if (shares <= 1) {
        wasm.maxPool2dGrad(...geometry(g), x.ptr, y.ptr, dy.ptr, dx.ptr, accumulate);
        return;
      }
      const args = context.taskArgs();
      setGeometry(args, g);
      args[12] = x.ptr; args[13] = y.ptr; args[14] = dy.ptr; args[15] = dx.ptr; args[16] = accumulate ? 1 : 0;
      context.parallel(TASK.maxPoolGradImages, shares);
    },
  };
}
