/**
 * Convolution and max pooling on the WASM backend.
 *
 * A convolution is the dense layer's product over image patches (im2col; see
 * kernels-wasm/assembly/conv2d_nhwc_im2col.ts): the patches are copied into a scratch matrix
 * `col` [batch·outHeight·outWidth, kh·kw·channels] and the products run in the same GEMM and
 * fused dense kernels as a dense layer, through this backend's own `denseForward` and `gemm`
 * (so the zero-skipping paths and their policy apply to them too):
 *
 *   forward       out  = act(col · w + bias)        denseForward
 *   filter grad   dw (+)= colᵀ · dz                 gemm, transposeA
 *   input grad    dcol = dz · wᵀ                    gemm, transposeB;  then dx (+)= col2im(dcol)
 *
 * A 1×1 convolution with stride 1 and no padding needs no patches: x itself is the matrix.
 * Why im2col rather than direct or Winograd convolution: see the kernels-wasm README.
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

export function createWasmConvKernels(context: WasmConvContext): ConvKernels {
  const { wasm, memory } = context;
  // One patch matrix, kept at the largest size asked for so far.
  let colPtr = 0;
  let colBytes = 0;
  const colMatrix = (rows: number, cols: number): ScratchMatrix => {
    const bytes = rows * cols * 4;
    if (bytes > colBytes) {
      if (colBytes > 0) context.release(colPtr, colBytes);
      colPtr = context.reserve(bytes);
      colBytes = bytes;
    }
    return new ScratchMatrix(memory, colPtr, rows * cols);
  };
  const patches = (g: Window2d, x: Storage): Storage => {
    if (pointwise(g)) return x;
    const col = colMatrix(g.batch * g.outHeight * g.outWidth, g.windowHeight * g.windowWidth * g.channels);
    wasm.im2col(...geometry(g), x.ptr, col.ptr);
    return col;
  };

  return {
    conv2d(g, filters, x, w, bias, out, relu) {
      const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
      context.products().denseForward(m, filters, k, patches(g, x), w, bias, out, relu);
    },
    conv2dFilterGrad(g, filters, x, dy, dw, accumulate) {
      const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
      context.products().gemm(k, filters, m, patches(g, x), true, dy, false, dw, accumulate);
    },
    conv2dInputGrad(g, filters, dy, w, dx, accumulate) {
      const m = g.batch * g.outHeight * g.outWidth, k = g.windowHeight * g.windowWidth * g.channels;
      if (pointwise(g)) {
        context.products().gemm(m, k, filters, dy, false, w, true, dx, accumulate);
        return;
      }
      const dcol = colMatrix(m, k);
      context.products().gemm(m, k, filters, dy, false, w, true, dcol, false);
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
