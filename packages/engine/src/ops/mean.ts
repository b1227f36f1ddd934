/**
 * mean: the average of all N elements, a scalar.
 *
 * Math: d(mean)/dx_i = 1/N, so dx = dy / N everywhere.
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { hostStep } from '../step-recording.js';
import { Tensor } from '../tensor.js';

export function mean(x: Tensor): Tensor {
  const out = Tensor.zeros([]);
  hostStep(() => {
    out.data[0] = kernels().sum(x.storage) / x.size;
  });

  return record('mean', [x], out, (dy) => {
    addGrad(x, (dx) => hostStep(() => kernels().fill(dx, dy.data[0] / x.size)));
  });
}
