/**
 * maxPool2d: the largest value of each window, per channel, over NHWC images.
 *
 *   y[n,oh,ow,c] = max over the window's positions (kh, kw) inside the image of x[n, oh·s − p + kh, ow·s − p + kw, c]
 *
 * Math: y is one of its inputs, so dy/dx is 1 for that input and 0 for the others: the whole
 * gradient goes to the position of the maximum. When several positions tie, the first one (row
 * by row) takes it, as TensorFlow does; windows that overlap (3×3 with stride 2) add their
 * gradients where they share a maximum (docs/learn/gradients.md, "Max pooling").
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { Tensor } from '../tensor.js';
import { pair } from './conv2d.js';
import { window2d, type Padding } from './window.js';

export interface MaxPool2dOptions {
  /** Window size [rows, columns], or one number for both. */
  poolSize: number | readonly [number, number];
  /** Default: the pool size (windows side by side, as Keras). */
  strides?: number | readonly [number, number];
  padding?: Padding;
}

export function maxPool2d(x: Tensor, { poolSize, strides, padding = 'valid' }: MaxPool2dOptions): Tensor {
  const g = window2d(x, pair(poolSize), pair(strides ?? poolSize), padding, 'maxPool2d');
  const out = Tensor.empty([g.batch, g.outHeight, g.outWidth, g.channels]);
  kernels().maxPool2d(g, x.storage, out.storage);

  return record('maxPool2d', [x], out, (dy) => {
    // Not accumulating, the kernel writes every pixel of dx, 0 where no window's maximum is.
    addGrad(x, (dx, acc) => kernels().maxPool2dGrad(g, x.storage, out.storage, dy.storage, dx, acc), true, true);
  });
}
