/**
 * meanSquaredError: mean over all N elements of (p - t)².
 *
 * Math: d/dp_i = 2 (p_i - t_i) / N.
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { ShapeError, formatShape } from '../errors.js';
import { hostStep } from '../step-recording.js';
import { Tensor, sameShape } from '../tensor.js';

export function meanSquaredError(predictions: Tensor, targets: Tensor): Tensor {
  if (!sameShape(predictions.shape, targets.shape)) {
    throw new ShapeError(`meanSquaredError: predictions ${formatShape(predictions.shape)} vs targets ${formatShape(targets.shape)}`);
  }
  const K = kernels();
  const difference = Tensor.zeros(predictions.shape);
  K.copy(predictions.storage, difference.storage);
  K.axpy(-1, targets.storage, difference.storage);
  const loss = Tensor.zeros([]);
  hostStep(() => {
    loss.data[0] = kernels().dot(difference.storage, difference.storage) / predictions.size;
  });

  return record('meanSquaredError', [predictions, targets], loss, (dLoss) => {
    const slope = (): number => (2 * dLoss.data[0]) / predictions.size;
    addGrad(predictions, (dp) => hostStep(() => kernels().scale(difference.storage, slope(), dp)));
    addGrad(targets, (dt) => hostStep(() => kernels().scale(difference.storage, -slope(), dt)));
  });
}
