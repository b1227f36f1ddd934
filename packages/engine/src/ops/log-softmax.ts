/**
 * logSoftmax over the last axis: y_j = z_j - log Σ_k exp(z_k), computed as
 * z_j - max - log Σ_k exp(z_k - max) so it is exact where softmax would round to 0.
 *
 * Math: dy_j/dz_i = δ_ij - p_i with p = softmax(z) = exp(y), so dz_i = dy_i - p_i Σ_j dy_j.
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { ShapeError, formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';

export function logSoftmax(logits: Tensor): Tensor {
  if (logits.rank !== 2) throw new ShapeError(`logSoftmax needs [rows, classes], got ${formatShape(logits.shape)}`);
  const [m, n] = logits.shape;
  const out = Tensor.zeros([m, n]);
  kernels().logSoftmax(m, n, logits.storage, out.storage);

  return record('logSoftmax', [logits], out, (dy) => {
    addGrad(logits, (dz) => kernels().logSoftmaxBackward(m, n, out.storage, dy.storage, dz));
  });
}
