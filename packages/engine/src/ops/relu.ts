/**
 * relu: y = max(x, 0).
 *
 * Math: dy/dx = 1 where x > 0, else 0, so dx = dy ∘ [y > 0].
 * The backward reads the output y (y > 0 exactly where x > 0), so x need not be kept.
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { Tensor } from '../tensor.js';

export function relu(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape);
  kernels().reluForward(x.storage, out.storage);

  return record('relu', [x], out, (dy) => {
    addGrad(x, (dx, acc) => kernels().reluBackward(out.storage, dy.storage, dx, acc), true, true);
  });
}
