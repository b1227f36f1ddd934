/**
 * softmax over the last axis of a [rows, classes] matrix: p_j = exp(z_j) / Σ_k exp(z_k).
 * The row maximum is subtracted first so exp never overflows (the result is unchanged).
 *
 * Math: dp_j/dz_i = p_j (δ_ij - p_i), so dz_i = Σ_j dp_j p_j (δ_ij - p_i) = p_i (dp_i - Σ_j dp_j p_j).
 * When a cross-entropy loss follows, the loss fuses with this op instead (see cross-entropy.ts).
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { ShapeError, formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';

export function softmax(logits: Tensor): Tensor {
  if (logits.rank !== 2) throw new ShapeError(`softmax needs [rows, classes], got ${formatShape(logits.shape)}`);
  const [m, n] = logits.shape;
  const out = Tensor.zeros([m, n]);
  kernels().softmax(m, n, logits.storage, out.storage);

  return record('softmax', [logits], out, (dp) => {
    addGrad(logits, (dz) => kernels().softmaxBackward(m, n, out.storage, dp.storage, dz));
  });
}
