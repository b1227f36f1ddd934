/**
 * One training step of a small convolutional network, every number of it: two 6×6 images, two
 * 3×3 filters with ReLU (feature maps 4×4), 2×2 max pooling (pooled maps 2×2), a dense softmax
 * layer over the 8 pooled values, 3 classes, one Adam update with Keras's defaults.
 *
 * As explainOneStep does for the dense network, it runs on the engine itself — the same ops,
 * initializer, autodiff and Adam that `fit` uses — and returns every intermediate with its shape
 * and formula. The gradients it prints are derived in docs/learn/gradients.md ("Convolution",
 * "Max pooling").
 */
import { kernels } from '../backend/index.js';
import { conv2d, maxPooling2d, reshape as reshapeLayer } from '../nn/conv-layers.js';
import { dense, flatten } from '../nn/layers.js';
import { sequential } from '../nn/model.js';
import { conv2d as conv2dOp } from '../ops/conv2d.js';
import { sparseCategoricalCrossentropy } from '../ops/cross-entropy.js';
import { dense as denseOp } from '../ops/dense.js';
import { maxPool2d } from '../ops/max-pool.js';
import { relu } from '../ops/relu.js';
import { flatten as flattenOp, reshape } from '../ops/reshape.js';
import { softmax } from '../ops/softmax.js';
import { Adam } from '../optimizers/adam.js';
import { Tensor, scope } from '../tensor.js';
import { explainAdamUpdate, explainLossAfter, stepRecorder, type ExplainStep, type Explanation } from './explain.js';

/**
 * The same two training images as EXPLAIN_EXAMPLE (fixture training images 1 and 16: a
 * T-shirt/top and a Trouser), cropped to their central 24×24 pixels and shrunk to 6×6: each pixel
 * is the mean of a 4×4 block, rounded. Bytes, 0 = black, 255 = white.
 */
export const EXPLAIN_CNN_EXAMPLE = Object.freeze({
  rows: 6,
  cols: 6,
  pixels: Object.freeze([
    51, 206, 179, 175, 195, 129, 124, 212, 78, 100, 136, 194, 34, 152, 215, 215, 196, 47,
    1, 100, 205, 207, 175, 1, 0, 102, 207, 209, 180, 1, 0, 100, 206, 209, 184, 0, // T-shirt/top
    0, 42, 197, 207, 130, 0, 0, 57, 167, 177, 137, 0, 0, 55, 171, 123, 133, 0,
    0, 60, 154, 96, 128, 0, 0, 67, 139, 85, 135, 0, 0, 65, 132, 64, 135, 0, // Trouser
  ]),
  labels: Object.freeze([0, 1]),
  classNames: Object.freeze(['T-shirt/top', 'Trouser', 'Sneaker']),
  fixtureIndices: Object.freeze([1, 16]),
  /** The crop (rows and columns 2–25) and the block size. */
  crop: 2,
  block: 4,
  filters: 2,
  kernelSize: 3,
  poolSize: 2,
  seed: 6,
});

/** Run one training step of the small CNN on the fixed example and record everything it computes. */
export function explainCnnStep({ seed = EXPLAIN_CNN_EXAMPLE.seed }: { seed?: number } = {}): Explanation {
  const { rows, cols, pixels, labels, classNames, filters, kernelSize, poolSize } = EXPLAIN_CNN_EXAMPLE;
  const n = labels.length;
  const classes = classNames.length;
  const conv = conv2d({ filters, kernelSize, activation: 'relu' });
  const output = dense({ units: classes, activation: 'softmax' });
  // Built exactly as a model for training is: Glorot-uniform kernels from the seeded generator, zero biases.
  const model = sequential([
    reshapeLayer({ targetShape: [rows, cols, 1], inputShape: [rows, cols] }), conv, maxPooling2d({ poolSize }), flatten(), output,
  ], { seed });
  const optimizer = new Adam();
  const [K1, b1, W2, b2] = [conv.kernel!, conv.bias!, output.kernel!, output.bias!];
  const parameters = model.parameters();
  const before = { K1: K1.toArray(), b1: b1.toArray(), W2: W2.toArray(), b2: b2.toArray() };
  const featureRows = rows - kernelSize + 1, pooledRows = Math.floor(featureRows / poolSize);
  const flat = pooledRows * pooledRows * filters;

  const steps: ExplainStep[] = [];
  const add = stepRecorder(steps);
  const kFanIn = kernelSize * kernelSize, kFanOut = kernelSize * kernelSize * filters;
  const limit = (fanIn: number, fanOut: number) => Math.sqrt(6 / (fanIn + fanOut)).toFixed(3);

  add('pixels', 'data', 'pixels', `${n} images of ${rows}×${cols} pixels (0 = black, 255 = white), left a ${classNames[labels[0]]}, right a ${classNames[labels[1]]}: real Fashion-MNIST photos, the middle 24×24 pixels shrunk by averaging 4×4 blocks`, [n, rows, cols], pixels);
  add('y', 'data', 'y', `the right answer for each image, as a class number: ${classNames.map((name, i) => `${i} = ${name}`).join(', ')}`, [n], labels);

  const loss = scope(() => {
    const images = Tensor.from(pixels.map((p) => p * (1 / 255)), [n, rows, cols]);
    const x = reshape(images, [n, rows, cols, 1]);
    add('x', 'forward', 'x = pixels / 255, with one channel', 'the images scaled to [0, 1]; a convolution reads images as [image, row, column, channel], and these have one channel (gray)', x.shape, x.data, 'images');
    add('K1', 'forward', `K1 ~ U(−${limit(kFanIn, kFanOut)}, ${limit(kFanIn, kFanOut)})`, `${filters} filters of ${kernelSize}×${kernelSize} weights (shape [row, column, in channel, filter]), printed one filter after the other; Glorot uniform with fan-in ${kernelSize}·${kernelSize}·1 = ${kFanIn} and fan-out ${kernelSize}·${kernelSize}·${filters} = ${kFanOut}`, K1.shape, before.K1, 'kernels');
    add('b1', 'forward', 'b1 = 0', 'one bias per filter; they start at zero', b1.shape, before.b1);
    const z1 = conv2dOp(x, K1, b1);
    add('z1', 'forward', 'z1[i,r,c,f] = Σ_{a,b} x[i, r+a, c+b, 0]·K1[a,b,0,f] + b1[f]', `slide each ${kernelSize}×${kernelSize} filter over each image: every output is the weighted sum of one ${kernelSize}×${kernelSize} patch (a dense layer applied at every position, with the same weights); ${rows}×${cols} images give ${featureRows}×${featureRows} maps ('valid': the filter stays inside)`, z1.shape, z1.data, 'images');
    const h1 = relu(z1);
    add('h1', 'forward', 'h1 = relu(z1) = max(z1, 0)', 'the feature maps: where the filter found its pattern the value is positive, elsewhere 0', h1.shape, h1.data, 'images');
    const m1 = maxPool2d(h1, { poolSize });
    add('m1', 'forward', `m1[i,r,c,f] = max of h1[i, ${poolSize}r..${poolSize}r+${poolSize - 1}, ${poolSize}c..${poolSize}c+${poolSize - 1}, f]`, `the pooled maps: the largest value of each ${poolSize}×${poolSize} block, so each map shrinks from ${featureRows}×${featureRows} to ${pooledRows}×${pooledRows}`, m1.shape, m1.data, 'images');
    const f = flattenOp(m1);
    add('f', 'forward', 'f = flatten(m1)', `each image's pooled maps as one row of ${flat} values, in the order row, column, filter (channels last)`, f.shape, f.data);
    add('W2', 'forward', `W2 ~ U(−${limit(flat, classes)}, ${limit(flat, classes)})`, `output-layer weights (row k: pooled value k, column c: class c)`, W2.shape, before.W2);
    add('b2', 'forward', 'b2 = 0', 'output-layer biases, one per class', b2.shape, before.b2);
    const z2 = denseOp(f, W2, b2, 'linear');
    add('z2', 'forward', 'z2 = f · W2 + b2', 'the logits: one score per class for each image', z2.shape, z2.data);
    const p = softmax(z2);
    add('p', 'forward', 'p = softmax(z2)', 'scores turned into probabilities: positive, each row sums to 1', p.shape, p.data);

    const target = Tensor.from(labels, [n]);
    const lossTensor = sparseCategoricalCrossentropy(p, target);
    add('loss', 'loss', `L = −(1/N) Σᵢ log p[i, y[i]], N = ${n}`, 'cross-entropy: the average of minus the log of the probability given to the right class', [], [lossTensor.item()]);

    lossTensor.backward();
    add('dz2', 'backward', 'dz2 = (p − onehot) / N', 'softmax and cross-entropy differentiated together, as for the dense network', z2.shape, z2.grad!.data);
    add('dW2', 'backward', 'dW2 = fᵀ · dz2', 'each weight\'s gradient is its input times the gradient at its output, summed over the images', W2.shape, W2.grad!.data);
    add('db2', 'backward', 'db2 = Σᵢ dz2[i, :]', 'column sums of dz2', b2.shape, b2.grad!.data);
    add('df', 'backward', 'df = dz2 · W2ᵀ', 'how the loss changes with each pooled value', f.shape, f.grad!.data);
    add('dm1', 'backward', 'dm1 = df read as maps', 'flatten only rearranges values, so its gradient is the same numbers in the maps\' shape', m1.shape, m1.grad!.data, 'images');
    add('dh1', 'backward', 'dh1[position of each block\'s maximum] = dm1, 0 elsewhere', `a pooled value is one of its ${poolSize * poolSize} inputs, so its gradient goes to that input (the first one, if several tie) and the other ${poolSize * poolSize - 1} get 0`, h1.shape, h1.grad!.data, 'images');
    add('dz1', 'backward', 'dz1 = dh1 ∘ [z1 > 0]', 'ReLU passes the gradient where the map was positive and blocks it where it was 0', z1.shape, z1.grad!.data, 'images');
    add('dK1', 'backward', 'dK1[a,b,0,f] = Σ_{i,r,c} x[i, r+a, c+b, 0]·dz1[i,r,c,f]', 'a filter weight is used at every position of every image, so its gradient sums input × output gradient over all of them (a correlation of the images with dz1)', K1.shape, K1.grad!.data, 'kernels');
    add('db1', 'backward', 'db1[f] = Σ_{i,r,c} dz1[i,r,c,f]', 'a filter\'s bias is added at every position, so its gradient is the sum of its map\'s gradient', b1.shape, b1.grad!.data);

    optimizer.step(parameters);
    for (const { tensor } of parameters) tensor.grad = undefined;
    return lossTensor.item();
  });

  explainAdamUpdate(optimizer, parameters, ['K1', 'b1', 'W2', 'b2'], add);
  explainLossAfter(model, pixels, labels, [n, rows, cols], loss, add);

  model.dispose();
  return {
    settings: {
      model: 'cnn',
      seed,
      classNames: [...classNames],
      labels: [...labels],
      filters,
      kernelSize,
      poolSize,
      learningRate: optimizer.learningRate,
      beta1: optimizer.beta1,
      beta2: optimizer.beta2,
      epsilon: optimizer.epsilon,
      backend: kernels().name,
      precision: kernels().precision,
    },
    steps,
  };
}
