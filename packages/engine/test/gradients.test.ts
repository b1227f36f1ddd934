/**
 * Finite-difference gradient checks: for every op, the gradient autodiff computes must match
 * (L(x + h) - L(x - h)) / 2h, element by element, on the float64 reference kernels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Random, Tensor, biasAdd, conv2dOp, createReferenceKernels, denseOp, dropoutOp, flattenOp, logSoftmax, matmul, maxPool2d, mean,
  meanSquaredError, relu, reshape, setBackend, softmax, sparseCategoricalCrossentropy, type Kernels, type Padding,
} from '../src/index.js';

let previous: Kernels;
beforeAll(() => {
  previous = setBackend('ts');
  setBackend(createReferenceKernels('float64'));
});
afterAll(() => {
  setBackend(previous);
});

function randomTensor(shape: number[], random: Random, requiresGrad = true, low = -1, high = 1): Tensor {
  const tensor = Tensor.zeros(shape, requiresGrad);
  const data = tensor.data;
  for (let i = 0; i < data.length; i++) data[i] = random.uniform(low, high);
  return tensor;
}

/** A scalar that depends on every element of y with a different weight: mean(flat(y)·r). */
function project(y: Tensor, seed = 99): Tensor {
  const weights = randomTensor([y.size, 1], new Random(seed), false);
  return mean(matmul(reshape(y, [1, y.size]), weights));
}

/** Compare autodiff gradients of `loss()` w.r.t. `inputs` with central differences. */
function checkGradients(inputs: Tensor[], loss: () => Tensor, tolerance = 1e-6): void {
  for (const input of inputs) input.grad = undefined;
  loss().backward();
  const h = 1e-6;
  for (const input of inputs) {
    expect(input.grad, 'every input that requires a gradient gets one').toBeDefined();
    const analytic = Array.from(input.grad!.data);
    const data = input.data;
    for (let i = 0; i < data.length; i++) {
      const original = data[i];
      data[i] = original + h;
      const plus = loss().item();
      data[i] = original - h;
      const minus = loss().item();
      data[i] = original;
      const numeric = (plus - minus) / (2 * h);
      const scale = Math.max(1, Math.abs(numeric), Math.abs(analytic[i]));
      expect(Math.abs(numeric - analytic[i]) / scale, `element ${i}: numeric ${numeric} vs autodiff ${analytic[i]}`).toBeLessThan(tolerance);
    }
  }
}

describe('finite-difference gradient checks (float64 reference kernels)', () => {
  const random = new Random(7);

  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      it(`matmul transposeA=${transposeA} transposeB=${transposeB}`, () => {
        const a = randomTensor(transposeA ? [4, 3] : [3, 4], random);
        const b = randomTensor(transposeB ? [5, 4] : [4, 5], random);
        checkGradients([a, b], () => project(matmul(a, b, { transposeA, transposeB })));
      });
    }
  }

  it('matmul with the same tensor on both sides accumulates both contributions', () => {
    const a = randomTensor([3, 3], random);
    checkGradients([a], () => project(matmul(a, a, { transposeB: true })));
  });

  it('biasAdd', () => {
    const x = randomTensor([4, 3], random);
    const b = randomTensor([3], random);
    checkGradients([x, b], () => project(biasAdd(x, b)));
  });

  it('relu (inputs kept away from the kink at 0)', () => {
    const x = randomTensor([3, 5], random);
    for (let i = 0; i < x.size; i++) x.data[i] += x.data[i] > 0 ? 0.1 : -0.1;
    checkGradients([x], () => project(relu(x)));
  });

  it('softmax', () => {
    const x = randomTensor([3, 4], random, true, -2, 2);
    checkGradients([x], () => project(softmax(x)));
  });

  it('logSoftmax', () => {
    const x = randomTensor([3, 4], random, true, -2, 2);
    checkGradients([x], () => project(logSoftmax(x)));
  });

  it('sparse categorical cross-entropy from logits', () => {
    const logits = randomTensor([4, 5], random, true, -2, 2);
    const labels = Tensor.from([0, 3, 4, 1]);
    checkGradients([logits], () => sparseCategoricalCrossentropy(logits, labels, { fromLogits: true }));
  });

  it('sparse categorical cross-entropy through softmax (fused, as Keras does)', () => {
    const logits = randomTensor([4, 5], random, true, -2, 2);
    const labels = Tensor.from([2, 0, 1, 4]);
    checkGradients([logits], () => sparseCategoricalCrossentropy(softmax(logits), labels));
  });

  it('sparse categorical cross-entropy from plain probabilities (clipped)', () => {
    const probs = randomTensor([3, 4], random, true, 0.05, 0.95);
    const labels = Tensor.from([1, 2, 3]);
    checkGradients([probs], () => sparseCategoricalCrossentropy(probs, labels));
  });

  it('mean', () => {
    const x = randomTensor([2, 3], random);
    checkGradients([x], () => mean(x));
  });

  it('reshape and flatten', () => {
    const x = randomTensor([2, 3, 2], random);
    checkGradients([x], () => project(flattenOp(x)));
    checkGradients([x], () => project(reshape(x, [3, 4])));
  });

  it('dropout (the same mask on every evaluation)', () => {
    const x = randomTensor([4, 6], random);
    checkGradients([x], () => project(dropoutOp(x, 0.5, new Random(3), true)));
  });

  it('mean squared error', () => {
    const p = randomTensor([3, 2], random);
    const t = randomTensor([3, 2], random);
    checkGradients([p, t], () => meanSquaredError(p, t));
  });

  for (const activation of ['relu', 'linear'] as const) {
    it(`fused dense (${activation})`, () => {
      const x = randomTensor([3, 4], random);
      const w = randomTensor([4, 5], random);
      const b = randomTensor([5], random, true, 0.05, 0.2);
      checkGradients([x, w, b], () => project(denseOp(x, w, b, activation)));
    });
  }

  // Convolutions: square and oblong kernels, strides 1 and 2 (also different per axis), both
  // paddings (with 'same', odd and even padding totals), a 1×1 kernel, ReLU fused or not.
  const convCases: Array<{ x: number[]; kernel: [number, number]; filters: number; strides: [number, number]; padding: Padding; activation: 'relu' | 'linear' }> = [
    { x: [2, 5, 5, 3], kernel: [3, 3], filters: 4, strides: [1, 1], padding: 'valid', activation: 'linear' },
    { x: [2, 5, 5, 3], kernel: [3, 3], filters: 4, strides: [1, 1], padding: 'valid', activation: 'relu' },
    { x: [1, 6, 7, 2], kernel: [3, 3], filters: 3, strides: [2, 2], padding: 'same', activation: 'relu' },
    { x: [1, 5, 6, 2], kernel: [2, 3], filters: 3, strides: [1, 2], padding: 'same', activation: 'linear' },
    { x: [2, 7, 5, 1], kernel: [3, 2], filters: 2, strides: [2, 1], padding: 'valid', activation: 'linear' },
    { x: [2, 4, 4, 3], kernel: [3, 3], filters: 5, strides: [1, 1], padding: 'same', activation: 'linear' },
    { x: [2, 3, 4, 3], kernel: [1, 1], filters: 2, strides: [1, 1], padding: 'valid', activation: 'relu' },
  ];
  for (const c of convCases) {
    it(`conv2d x ${JSON.stringify(c.x)}, ${c.kernel.join('×')} kernel, ${c.filters} filters, strides ${c.strides.join(',')}, ${c.padding}, ${c.activation}`, () => {
      const x = randomTensor(c.x, random);
      const w = randomTensor([...c.kernel, c.x[3], c.filters], random);
      const b = randomTensor([c.filters], random, true, -0.2, 0.2);
      checkGradients([x, w, b], () => project(conv2dOp(x, w, b, { strides: c.strides, padding: c.padding, activation: c.activation })));
    });
  }

  // Max pooling: 2×2 and 3×3 windows, side by side and overlapping (3×3 stride 2), both
  // paddings, sizes that leave a remainder. Random values have no ties, so the maximum is unique.
  const poolCases: Array<{ x: number[]; poolSize: [number, number]; strides?: [number, number]; padding: Padding }> = [
    { x: [2, 4, 5, 3], poolSize: [2, 2], padding: 'valid' },
    { x: [1, 5, 5, 2], poolSize: [2, 2], padding: 'same' },
    { x: [1, 7, 7, 2], poolSize: [3, 3], strides: [2, 2], padding: 'valid' },
    { x: [2, 6, 5, 1], poolSize: [3, 3], strides: [2, 2], padding: 'same' },
    { x: [1, 5, 4, 5], poolSize: [3, 3], strides: [1, 1], padding: 'valid' },
    { x: [1, 4, 6, 2], poolSize: [2, 3], strides: [1, 2], padding: 'same' },
  ];
  for (const c of poolCases) {
    it(`maxPool2d x ${JSON.stringify(c.x)}, pool ${c.poolSize.join('×')}, strides ${(c.strides ?? c.poolSize).join(',')}, ${c.padding}`, () => {
      const x = randomTensor(c.x, random);
      checkGradients([x], () => project(maxPool2d(x, { poolSize: c.poolSize, strides: c.strides, padding: c.padding })));
    });
  }

  it('a small CNN: reshape → conv2d (relu) → max pool → conv2d (same) → flatten → dense → softmax cross-entropy', () => {
    const images = randomTensor([3, 6, 6], random, false, 0, 1);
    const w1 = randomTensor([3, 3, 1, 2], random);
    const b1 = randomTensor([2], random, true, 0.05, 0.2);
    const w2 = randomTensor([2, 2, 2, 3], random);
    const b2 = randomTensor([3], random);
    const w3 = randomTensor([12, 4], random);
    const b3 = randomTensor([4], random);
    const labels = Tensor.from([0, 3, 1]);
    const loss = () => {
      const x = reshape(images, [3, 6, 6, 1]);
      const h1 = maxPool2d(conv2dOp(x, w1, b1, { activation: 'relu' }), { poolSize: 2 });
      const h2 = conv2dOp(h1, w2, b2, { padding: 'same' });
      return sparseCategoricalCrossentropy(softmax(denseOp(flattenOp(h2), w3, b3, 'linear')), labels);
    };
    checkGradients([w1, b1, w2, b2, w3, b3], loss);
  });

  it('a whole network: Dense → ReLU → Dense → softmax cross-entropy', () => {
    const x = randomTensor([5, 6], random, false);
    const w1 = randomTensor([6, 4], random);
    const b1 = randomTensor([4], random, true, 0.05, 0.2);
    const w2 = randomTensor([4, 3], random);
    const b2 = randomTensor([3], random);
    const labels = Tensor.from([0, 1, 2, 1, 0]);
    const loss = () => sparseCategoricalCrossentropy(softmax(biasAdd(matmul(relu(biasAdd(matmul(x, w1), b1)), w2), b2)), labels);
    checkGradients([w1, b1, w2, b2], loss);
    expect(x.grad, 'the input data needs no gradient and gets none').toBeUndefined();
  });
});
