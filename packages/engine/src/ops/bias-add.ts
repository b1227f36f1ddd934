/**
 * biasAdd: y[i,j] = x[i,j] + b[j], the bias broadcast over the rows of a batch.
 *
 * Math: dx = dy (each output depends on one input with slope 1);
 *       db[j] = Σ_i dy[i,j] (b[j] is added to every row, so its gradient sums over rows).
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { ShapeError, formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';

export function biasAdd(x: Tensor, bias: Tensor): Tensor {
  if (x.rank !== 2 || bias.rank !== 1 || bias.shape[0] !== x.shape[1]) {
    throw new ShapeError(`biasAdd: bias ${formatShape(bias.shape)} does not fit rows of ${formatShape(x.shape)}`);
  }
  const [m, n] = x.shape;
  const out = Tensor.zeros([m, n]);
  kernels().biasAdd(m, n, x.storage, bias.storage, out.storage);

  return record('biasAdd', [x, bias], out, (dy) => {
    addGrad(x, (dx) => kernels().copy(dy.storage, dx));
    addGrad(bias, (db, acc) => kernels().columnSums(m, n, dy.storage, db, acc), true);
  });
}
