/**
 * dropout (inverted): while training, each value is zeroed with probability `rate` and the
 * survivors are scaled by 1/(1 - rate), so the expected value is unchanged and inference is
 * the identity. The mask comes from the engine's seeded PRNG.
 *
 * Math: y = x ∘ mask, so dx = dy ∘ mask.
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { ConfigError } from '../errors.js';
import type { Random } from '../random.js';
import { hostStep } from '../step-recording.js';
import { Tensor } from '../tensor.js';

export function dropout(x: Tensor, rate: number, random: Random, training: boolean): Tensor {
  if (!(rate >= 0 && rate < 1)) throw new ConfigError(`dropout rate must be in [0, 1), got ${rate}`);
  if (!training || rate === 0) return x;
  const mask = Tensor.zeros(x.shape);
  const keepScale = 1 / (1 - rate);
  // A new mask every step, drawn in the same order whether the step runs or is replayed.
  hostStep(() => {
    const values = mask.data;
    for (let i = 0; i < values.length; i++) values[i] = random.next() >= rate ? keepScale : 0;
  });
  const out = Tensor.zeros(x.shape);
  kernels().multiply(x.storage, mask.storage, out.storage);

  return record('dropout', [x], out, (dy) => {
    addGrad(x, (dx) => kernels().multiply(dy.storage, mask.storage, dx));
  });
}
