/**
 * Sparse categorical cross-entropy: the mean over a batch of -log p[label].
 *
 * Three ways in, one meaning:
 * - from logits z (fromLogits: true): fused with softmax. loss_i = log Σ_j exp(z_ij) - z_i,label,
 *   and the gradient is dz = (p - onehot(label)) / N. The fused form never takes the log of a
 *   probability that has rounded to 0, and its gradient is one subtraction instead of a chain of
 *   divisions, which is why it is preferred.
 * - from probabilities made by a `softmax` op: like Keras, the loss looks through the softmax
 *   to its logits and uses the fused form above.
 * - from any other probabilities: Keras's formula -log(clip(p[label], 1e-7, 1 - 1e-7)), with
 *   gradient -1 / (N·p[label]) at the label where the clip is inactive.
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { ShapeError, formatShape } from '../errors.js';
import { hostStep } from '../step-recording.js';
import { Tensor } from '../tensor.js';

/** Keras's `epsilon()`: probabilities are clipped to [EPSILON, 1 - EPSILON] before the log. */
export const EPSILON = 1e-7;

export interface CrossEntropyOptions {
  fromLogits?: boolean;
}

/** `labels` holds one class index per row of `predictions` ([rows, classes]). Returns a scalar. */
export function sparseCategoricalCrossentropy(predictions: Tensor, labels: Tensor, { fromLogits = false }: CrossEntropyOptions = {}): Tensor {
  if (predictions.rank !== 2 || labels.size !== predictions.shape[0]) {
    throw new ShapeError(
      `sparseCategoricalCrossentropy: ${formatShape(labels.shape)} labels do not match ${formatShape(predictions.shape)} predictions`,
    );
  }
  if (fromLogits) return softmaxCrossEntropy(predictions, labels);
  if (predictions.creator?.op === 'softmax') return softmaxCrossEntropy(predictions.creator.inputs[0], labels);
  return crossEntropyFromProbabilities(predictions, labels);
}

function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const [m, n] = logits.shape;
  const probs = Tensor.zeros([m, n]);
  const loss = Tensor.zeros([]);
  // The loss and its gradient's scale pass through JavaScript: see hostStep.
  hostStep(() => {
    loss.data[0] = kernels().softmaxCrossEntropyForward(m, n, logits.storage, labels.storage, probs.storage);
  });

  return record('softmaxCrossEntropy', [logits], loss, (dLoss) => {
    addGrad(logits, (dz) => hostStep(() => kernels().softmaxCrossEntropyBackward(m, n, probs.storage, labels.storage, dLoss.data[0] / m, dz)));
  });
}

function crossEntropyFromProbabilities(probs: Tensor, labels: Tensor): Tensor {
  const [m, n] = probs.shape;
  const loss = Tensor.zeros([]);
  hostStep(() => {
    loss.data[0] = kernels().crossEntropyFromProbsForward(m, n, probs.storage, labels.storage, EPSILON);
  });

  return record('crossEntropy', [probs], loss, (dLoss) => {
    addGrad(probs, (dp) => hostStep(() => kernels().crossEntropyFromProbsBackward(m, n, probs.storage, labels.storage, EPSILON, dLoss.data[0] / m, dp)));
  });
}
