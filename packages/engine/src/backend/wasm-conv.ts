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
 * A 3×3 convolution with stride 1 and enough input channels takes Winograd's F(2×2, 3×3)
 * instead (kernels-wasm/assembly/conv2d_nhwc_winograd_f2x2_3x3.ts): transforms around 16
 * smaller products, 1.9 times fewer multiply-adds for the tutorial CNN's second layer. Why these
 * two and not a direct convolution: see the kernels-wasm README.
 */
import type { KernelExports } from '@descent/kernels-wasm';
import type { Kernels, Storage, Window2d } from './kernels.js';
import type { ConvKernels } from './reference-conv.js';

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
  /** Convolution calls (forward, filter gradient, input gradient) that took it. */
  calls: number;
}

/**
 * Whether the forward takes the direct convolution (kernels-wasm/assembly/conv2d_nhwc_direct.ts:
 * no patch matrix, 4 pixels × 8 filters in registers) when filters are a multiple of 8. Off: it
 * is kept to measure the choice against (packages/bench conv suite; see the kernels-wasm README).
 */
export interface DirectConvPolicy {
  enabled: boolean;
  /** Forward calls that took it. */
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
  /** Gradient calls (filter or input) that skipped the zeros. */
  calls: number;
}

/** Rows of dy sampled to decide: a few images' worth of positions. */
const SAMPLE_ROWS = 256;

export interface ConvPolicies {
  winograd: WinogradPolicy;
  sparseGradient: SparseGradientPolicy;
  direct: DirectConvPolicy;
}

export function createWasmConvKernels(context: WasmConvContext, { winograd, sparseGradient, direct }: ConvPolicies): ConvKernels {
  const { wasm, memory } = context;
  const listScratch = growingScratch(context);
  const transposed = growingScratch(context), zeroBias = growingScratch(context);
  /** Whether dy [m, filters] is mostly zeros (then its zeros are skipped). */
  const sparse = (dy: Storage, m: number, filters: number, patch: number): boolean => {
    if (!sparseGradient.enabled || patch < sparseGradient.minPatch) return false;
    const sampled = Math.min(m, SAMPLE_ROWS) * filters;
    const taken = sampled > 0 && wasm.countZeros(dy.ptr, sampled) >= sparseGradient.minZeroFraction * sampled;
    if (taken) sparseGradient.calls++;
    return taken;
  };
  const colScratch = growingScratch(context);
  const colMatrix = (rows: number, cols: number): ScratchMatrix => new ScratchMatrix(memory, colScratch(rows * cols * 4), rows * cols);
  const patches = (g: Window2d, x: Storage): Storage => {
    if (pointwise(g)) return x;
    const col = colMatrix(g.batch * g.outHeight * g.outWidth, g.windowHeight * g.windowWidth * g.channels);
    wasm.im2col(...geometry(g), x.ptr, col.ptr);
    return col;
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
  /** The 16 products, one per position of the transformed tile: C[p] = op(A[p])·op(B[p]). */
  const sixteenProducts = (m: number, n: number, k: number, a: number, tA: boolean, b: number, tB: boolean, c: number): void => {
    const products = context.products();
    for (let p = 0; p < 16; p++) {
      products.gemm(
        m, n, k,
        new ScratchMatrix(memory, a + p * m * k * 4, m * k), tA,
        new ScratchMatrix(memory, b + p * k * n * 4, k * n), tB,
        new ScratchMatrix(memory, c + p * m * n * 4, m * n), false,
      );
    }
  };
  const filterTransform = (g: Window2d, filters: number, w: Storage): number => {
    const u = uScratch(16 * g.channels * filters * 4);
    wasm.winogradFilterTransform(g.channels, filters, w.ptr, u, tileScratch(256));
    return u;
  };
  const inputTransform = (g: Window2d, x: Storage): number => {
    const v = vScratch(16 * tilesOf(g) * g.channels * 4);
    wasm.winogradInputTransform(...winogradGeometry(g), x.ptr, v, tileScratch(256));
    return v;
  };
  const gradTransform = (g: Window2d, filters: number, dy: Storage): number => {
    const w = wScratch(16 * tilesOf(g) * filters * 4);
    wasm.winogradGradTransform(g.batch, g.outHeight, g.outWidth, filters, dy.ptr, w);
    return w;
  };

  return {
    conv2d(g, filters, x, w, bias, out, relu) {
      const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
      if (direct.enabled && filters % 8 === 0) {
        direct.calls++;
        wasm.conv2dDirect(...geometry(g), filters, x.ptr, w.ptr, bias.ptr, out.ptr, relu);
        return;
      }
      if (takesWinograd(g)) {
        const T = tilesOf(g);
        const u = filterTransform(g, filters, w), v = inputTransform(g, x);
        const product = mScratch(16 * T * filters * 4);
        sixteenProducts(T, filters, g.channels, v, false, u, false, product);
        wasm.winogradOutputTransform(g.batch, g.outHeight, g.outWidth, filters, product, bias.ptr, out.ptr, relu, tileScratch(256));
        return;
      }
      context.products().denseForward(m, filters, k, patches(g, x), w, bias, out, relu);
    },
    conv2dFilterGrad(g, filters, x, dy, dw, accumulate) {
      const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
      if (sparse(dy, m, filters, k)) {
        // dwᵀ = dyᵀ·col, one row of dwᵀ per nonzero of dy; dw is transposed in and out so that
        // accumulating adds in the same order as the GEMM.
        const col = patches(g, x);
        const dwT = transposed(k * filters * 4);
        if (accumulate) wasm.transpose(k, filters, dw.ptr, dwT, false);
        wasm.weightGradSparseGrad(m, k, filters, col.ptr, dy.ptr, dwT, accumulate, listScratch(wasm.sparseGradScratchBytes(m, filters)));
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
      const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
      const skipZeros = !pointwise(g) && sparse(dy, m, filters, k);
      if (!skipZeros && takesWinograd(g)) {
        const T = tilesOf(g);
        const u = filterTransform(g, filters, w), wt = gradTransform(g, filters, dy);
        const product = mScratch(16 * T * g.channels * 4);
        sixteenProducts(T, g.channels, filters, wt, false, u, true, product);
        if (!accumulate) wasm.fill(dx.ptr, dx.length, 0);
        wasm.winogradInputGradTransform(...winogradGeometry(g), product, dx.ptr, tileScratch(256));
        return;
      }
      if (pointwise(g)) {
        context.products().gemm(m, k, filters, dy, false, w, true, dx, accumulate);
        return;
      }
      const dcol = colMatrix(m, k);
      if (skipZeros) {
        // dcol = dy·wᵀ skipping dy's zeros: the zero-skipping forward kernel with wᵀ and no bias.
        const wT = transposed(k * filters * 4), bias = zeroBias(k * 4);
        wasm.transpose(k, filters, w.ptr, wT, false);
        wasm.fill(bias, k, 0);
        context.sparseForward(m, k, filters, dy.ptr, wT, bias, dcol.ptr, false);
      } else {
        context.products().gemm(m, k, filters, dy, false, w, true, dcol, false);
      }
      if (!accumulate) wasm.fill(dx.ptr, dx.length, 0);
      wasm.col2im(...geometry(g), dcol.ptr, dx.ptr);
    },
    maxPool2d(g, x, out) {
      wasm.maxPool2d(...geometry(g), x.ptr, out.ptr);
    },
    maxPool2dGrad(g, x, y, dy, dx, accumulate) {
      wasm.maxPool2dGrad(...geometry(g), x.ptr, y.ptr, dy.ptr, dx.ptr, accumulate);
    },
  };
}
