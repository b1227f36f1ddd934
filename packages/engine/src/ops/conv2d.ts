/**
 * conv2d: y = act(conv(x, W) + b) over NHWC images, kernel W [kh, kw, in, out], in one kernel
 * call; act ∈ {relu, linear}. One output is a dense layer's sum over a small patch:
 *
 *   y[n,oh,ow,f] = b[f] + Σ_{kh,kw,c} x[n, oh·s − p + kh, ow·s − p + kw, c] · W[kh,kw,c,f]
 *
 * so the gradients are a dense layer's, summed over every place the kernel was applied
 * (docs/learn/gradients.md, "Convolution"):
 *   dz = dy ∘ [y > 0]                                     (relu; skipped when linear)
 *   dW[kh,kw,c,f] = Σ_{n,oh,ow} x[n, oh·s − p + kh, ow·s − p + kw, c] · dz[n,oh,ow,f]
 *   db[f]         = Σ_{n,oh,ow} dz[n,oh,ow,f]
 *   dx[n,i,j,c]   = Σ over the (oh, ow, kh, kw) that read pixel (i, j) of Σ_f dz[n,oh,ow,f] · W[kh,kw,c,f]
 * Padding reads as 0, so it receives no gradient.
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { ShapeError, formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';
import { window2d, type Padding } from './window.js';

export interface Conv2dOptions {
  /** [rows, columns] between windows, or one number for both. Default 1. */
  strides?: number | readonly [number, number];
  padding?: Padding;
  activation?: 'relu' | 'linear';
}

export function conv2d(x: Tensor, kernel: Tensor, bias: Tensor, { strides = 1, padding = 'valid', activation = 'linear' }: Conv2dOptions = {}): Tensor {
  if (kernel.rank !== 4 || x.rank !== 4 || kernel.shape[2] !== x.shape[3] || bias.size !== kernel.shape[3]) {
    throw new ShapeError(
      `conv2d: input ${formatShape(x.shape)} does not fit kernel ${formatShape(kernel.shape)} and bias ${formatShape(bias.shape)}`,
    );
  }
  const [kh, kw, , filters] = kernel.shape;
  const g = window2d(x, [kh, kw], pair(strides), padding, 'conv2d');
  const out = Tensor.empty([g.batch, g.outHeight, g.outWidth, filters]);
  const relu = activation === 'relu';
  kernels().conv2d(g, filters, x.storage, kernel.storage, bias.storage, out.storage, relu);

  return record('conv2d', [x, kernel, bias], out, (dy) => {
    const K = kernels();
    let dz = dy;
    if (relu) {
      dz = Tensor.empty(out.shape);
      K.reluBackward(out.storage, dy.storage, dz.storage, false);
    }
    // Each kernel writes all of its output when not accumulating (pixels no window reads get 0):
    // fresh gradients need no zeros.
    addGrad(kernel, (dW, acc) => K.conv2dFilterGrad(g, filters, x.storage, dz.storage, dW, acc), true, true);
    addGrad(bias, (db, acc) => K.columnSums(g.batch * g.outHeight * g.outWidth, filters, dz.storage, db, acc), true, true);
    addGrad(x, (dx, acc) => K.conv2dInputGrad(g, filters, dz.storage, kernel.storage, dx, acc), true, true);
  });
}

/** 3 → [3, 3]; [2, 1] stays. */
export function pair(value: number | readonly [number, number]): [number, number] {
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}
