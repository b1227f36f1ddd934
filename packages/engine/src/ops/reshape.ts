/**
 * reshape / flatten: the same values under a new shape (row-major order is unchanged).
 *
 * Math: every output is one input with slope 1, so dx is dy read in x's shape.
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { Tensor } from '../tensor.js';

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const out = Tensor.view(x, shape);
  return record('reshape', [x], out, (dy) => {
    addGrad(x, (dx) => kernels().copy(dy.storage, dx));
  });
}

/** [batch, d1, d2, ...] → [batch, d1·d2·...] */
export function flatten(x: Tensor): Tensor {
  const [batch, ...rest] = x.shape;
  return reshape(x, [batch, rest.reduce((a, b) => a * b, 1)]);
}
