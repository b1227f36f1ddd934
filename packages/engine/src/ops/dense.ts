/**
 * dense: y = act(x·W + b) in one kernel call, act ∈ {relu, linear}.
 * This is matmul → biasAdd → relu fused so a layer's forward reads x and W once;
 * the backward is the three ops' backwards in reverse order:
 *   dz = dy ∘ [y > 0]   (relu; skipped when linear)
 *   dW = xᵀ·dz,  db = Σ_rows dz,  dx = dz·Wᵀ
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { ShapeError, formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';

export function dense(x: Tensor, weights: Tensor, bias: Tensor, activation: 'relu' | 'linear'): Tensor {
  const [m, k] = x.shape;
  const n = weights.shape[1];
  if (x.rank !== 2 || weights.rank !== 2 || weights.shape[0] !== k || bias.size !== n) {
    throw new ShapeError(
      `dense: input ${formatShape(x.shape)} does not fit kernel ${formatShape(weights.shape)} and bias ${formatShape(bias.shape)}`,
    );
  }
  const out = Tensor.empty([m, n]);
  kernels().denseForward(m, n, k, x.storage, weights.storage, bias.storage, out.storage, activation === 'relu');

  return record('dense', [x, weights, bias], out, (dy) => {
    const K = kernels();
    let dz = dy;
    if (activation === 'relu') {
      dz = Tensor.empty([m, n]);
      K.reluBackward(out.storage, dy.storage, dz.storage, false);
    }
    // Each kernel writes all of its output when not accumulating: fresh gradients need no zeros.
    addGrad(weights, (dW, acc) => K.gemm(k, n, m, x.storage, true, dz.storage, false, dW, acc), true, true);
    addGrad(bias, (db, acc) => K.columnSums(m, n, dz.storage, db, acc), true, true);
    addGrad(x, (dx, acc) => K.gemm(m, k, n, dz.storage, false, weights.storage, true, dx, acc), true, true);
  });
}
