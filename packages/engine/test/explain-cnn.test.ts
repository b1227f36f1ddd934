/**
 * `explainCnnStep` shows every number of one training step of a small CNN; these tests check them
 * against an independent float64 computation with plain loops (convolution, ReLU, max pooling,
 * dense, softmax), the weight gradients against central finite differences, the routing of the
 * pooling gradient against its rule, Adam against its formula, and the whole step against `fit`.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EXPLAIN_CNN_EXAMPLE, FASHION_MNIST_CLASS_NAMES, conv2d, createReferenceKernels, dense, explainCnnStep, flatten, formatExplanation,
  loadImageDataset, maxPooling2d, reshapeLayer, sequential, setBackend, type Explanation, type Kernels,
} from '../src/index.js';
import { affine, centralDifferences, crossEntropyFromLogits, reluOf, softmaxRows } from './helpers/mlp-reference.js';

const { rows, cols, filters, kernelSize: K, poolSize: P, labels, classNames } = EXPLAIN_CNN_EXAMPLE;
const N = labels.length, C = classNames.length;
const OH = rows - K + 1, PH = Math.floor(OH / P), FLAT = PH * PH * filters;

interface Weights { K1: number[]; b1: number[]; W2: number[]; b2: number[] }

/** z1[i,r,c,f] = Σ_{a,b} x[i,r+a,c+b]·K1[a,b,0,f] + b1[f], plain loops. */
function convolve(x: number[], K1: number[], b1: number[]): number[] {
  const z = new Array<number>(N * OH * OH * filters).fill(0);
  for (let i = 0; i < N; i++) {
    for (let r = 0; r < OH; r++) {
      for (let c = 0; c < OH; c++) {
        for (let f = 0; f < filters; f++) {
          let sum = b1[f];
          for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) sum += x[(i * rows + r + a) * cols + c + b] * K1[(a * K + b) * filters + f];
          z[((i * OH + r) * OH + c) * filters + f] = sum;
        }
      }
    }
  }
  return z;
}

/** Max of each P×P block, and the index (into h) of the first maximum, row by row. */
function pool(h: number[]): { m: number[]; argmax: number[] } {
  const m: number[] = [], argmax: number[] = [];
  for (let i = 0; i < N; i++) {
    for (let r = 0; r < PH; r++) {
      for (let c = 0; c < PH; c++) {
        for (let f = 0; f < filters; f++) {
          let best = -Infinity, at = -1;
          for (let a = 0; a < P; a++) {
            for (let b = 0; b < P; b++) {
              const index = ((i * OH + r * P + a) * OH + c * P + b) * filters + f;
              if (h[index] > best) [best, at] = [h[index], index];
            }
          }
          m.push(best);
          argmax.push(at);
        }
      }
    }
  }
  return { m, argmax };
}

function forward(x: number[], w: Weights) {
  const z1 = convolve(x, w.K1, w.b1);
  const h1 = reluOf(z1);
  const { m: m1, argmax } = pool(h1);
  const z2 = affine(m1, w.W2, w.b2, N, FLAT, C);
  return { z1, h1, m1, argmax, z2, p: softmaxRows(z2, N, C) };
}

const lossOf = (x: number[], w: Weights): number => crossEntropyFromLogits(forward(x, w).z2, labels, C);

function value(e: Explanation, key: string): number[] {
  const step = e.steps.find((s) => s.key === key);
  if (!step) throw new Error(`no step '${key}'`);
  return step.values;
}

function expectClose(actual: number[], expected: number[], tolerance: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]) / Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${a} vs ${expected[i]}`).toBeLessThan(tolerance));
}

describe('explainCnnStep on the float64 reference kernels', () => {
  let previous: Kernels;
  let e: Explanation;
  let x: number[];
  let w: Weights;
  beforeAll(() => {
    previous = setBackend('ts');
    setBackend(createReferenceKernels('float64'));
    e = explainCnnStep();
    x = value(e, 'x');
    w = { K1: value(e, 'K1'), b1: value(e, 'b1'), W2: value(e, 'W2'), b2: value(e, 'b2') };
  });
  afterAll(() => {
    setBackend(previous);
  });

  it('lists the image, feature maps, pooled maps and every gradient with their shapes', () => {
    const shapes = Object.fromEntries(e.steps.map((s) => [s.key, s.shape]));
    expect(shapes).toMatchObject({
      pixels: [2, 6, 6], x: [2, 6, 6, 1], K1: [3, 3, 1, 2], b1: [2], z1: [2, 4, 4, 2], h1: [2, 4, 4, 2], m1: [2, 2, 2, 2], f: [2, 8],
      W2: [8, 3], z2: [2, 3], p: [2, 3], loss: [], dz2: [2, 3], dW2: [8, 3], df: [2, 8], dm1: [2, 2, 2, 2], dh1: [2, 4, 4, 2],
      dz1: [2, 4, 4, 2], dK1: [3, 3, 1, 2], db1: [2], K1_new: [3, 3, 1, 2], loss_after: [],
    });
    for (const step of e.steps) expect(step.values.length, step.key).toBe(step.shape.reduce((a, b) => a * b, 1));
    expectClose(x, EXPLAIN_CNN_EXAMPLE.pixels.map((p) => p / 255), 1e-12, 'x');
    const limit = Math.sqrt(6 / (9 + 18));
    expect(w.K1.every((k) => Math.abs(k) < limit)).toBe(true);
    expect([...w.b1, ...w.b2].every((b) => b === 0)).toBe(true);
  });

  it('forward values match plain loops, and the example shows ReLU zeros and pooling at work', () => {
    const f = forward(x, w);
    expectClose(value(e, 'z1'), f.z1, 1e-12, 'z1');
    expectClose(value(e, 'h1'), f.h1, 1e-12, 'h1');
    expectClose(value(e, 'm1'), f.m1, 1e-12, 'm1');
    expectClose(value(e, 'f'), f.m1, 1e-12, 'f');
    expectClose(value(e, 'p'), f.p, 1e-12, 'p');
    expect(value(e, 'loss')[0]).toBeCloseTo(lossOf(x, w), 12);
    const h1 = value(e, 'h1');
    for (let filter = 0; filter < filters; filter++) {
      const map = h1.filter((_, i) => i % filters === filter);
      expect(map.some((v) => v === 0) && map.some((v) => v > 0), `filter ${filter} has zeros and positive values`).toBe(true);
    }
  });

  it('weight gradients match central finite differences; the pooling gradient goes to each block\'s first maximum', () => {
    // No pre-activation sits at the ReLU's kink, so the loss is smooth in the weights here.
    expect(value(e, 'z1').every((v) => Math.abs(v) > 1e-2)).toBe(true);
    expectClose(value(e, 'dK1'), centralDifferences(w.K1, (K1) => lossOf(x, { ...w, K1 })), 1e-6, 'dK1');
    expectClose(value(e, 'db1'), centralDifferences(w.b1, (b1) => lossOf(x, { ...w, b1 })), 1e-6, 'db1');
    expectClose(value(e, 'dW2'), centralDifferences(w.W2, (W2) => lossOf(x, { ...w, W2 })), 1e-6, 'dW2');
    expectClose(value(e, 'db2'), centralDifferences(w.b2, (b2) => lossOf(x, { ...w, b2 })), 1e-6, 'db2');
    const { m1, argmax } = forward(x, w);
    const fromPooled = (m: number[]) => crossEntropyFromLogits(affine(m, w.W2, w.b2, N, FLAT, C), labels, C);
    expectClose(value(e, 'df'), centralDifferences(m1, fromPooled), 1e-6, 'df');
    expect(value(e, 'dm1')).toEqual(value(e, 'df'));
    const dh1 = new Array<number>(N * OH * OH * filters).fill(0);
    value(e, 'dm1').forEach((g, j) => (dh1[argmax[j]] += g));
    expectClose(value(e, 'dh1'), dh1, 1e-12, 'dh1');
    const z1 = value(e, 'z1');
    expectClose(value(e, 'dz1'), dh1.map((g, i) => (z1[i] > 0 ? g : 0)), 1e-12, 'dz1');
  });

  it('the Adam update follows the formula, and the loss went down', () => {
    const lrT = (1e-3 * Math.sqrt(1 - 0.999)) / (1 - 0.9);
    for (const name of ['K1', 'b1', 'W2', 'b2'] as const) {
      const g = value(e, `d${name}`);
      const step = g.map((gi) => (lrT * 0.1 * gi) / (Math.sqrt(0.001 * gi * gi) + 1e-7));
      expectClose(value(e, `step_${name}`), step, 1e-12, `step_${name}`);
      expectClose(value(e, `${name}_new`), w[name].map((v, i) => v - step[i]), 1e-12, `${name}_new`);
    }
    const after = lossOf(x, { K1: value(e, 'K1_new'), b1: value(e, 'b1_new'), W2: value(e, 'W2_new'), b2: value(e, 'b2_new') });
    expect(value(e, 'loss_after')[0]).toBeCloseTo(after, 12);
    expect(after).toBeLessThan(value(e, 'loss')[0]);
  });

  it('prints 4-D values as one map per image and channel, side by side', () => {
    const text = formatExplanation(e);
    const block = text.split('\n\n').find((b) => b.startsWith('m1['))!;
    const lines = block.split('\n').slice(2);
    expect(lines).toHaveLength(PH);
    const m1 = value(e, 'm1');
    // Row 0 shows image 0 filter 0, image 0 filter 1, image 1 filter 0, image 1 filter 1.
    const printed = lines[0].split('|').map((part) => part.trim().split(/\s+/).map(Number));
    const expected = [[0, 0], [0, 1], [1, 0], [1, 1]].map(([i, f]) => [0, 1].map((c) => m1[((i * PH + 0) * PH + c) * filters + f]));
    printed.forEach((numbers, k) => numbers.forEach((n, j) => expect(Math.abs(n - expected[k][j])).toBeLessThan(5.01e-5)));
  });
});

describe('explainCnnStep is the step fit takes', () => {
  it('gives the same loss and updated weights as Sequential.fit with the layers (float32 reference kernels)', async () => {
    setBackend('ts');
    const e = explainCnnStep();
    const model = sequential([
      reshapeLayer({ targetShape: [rows, cols, 1], inputShape: [rows, cols] }),
      conv2d({ filters, kernelSize: K, activation: 'relu' }),
      maxPooling2d({ poolSize: P }),
      flatten(),
      dense({ units: C, activation: 'softmax' }),
    ], { seed: EXPLAIN_CNN_EXAMPLE.seed });
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    expect(model.getWeights().map((v) => Array.from(v.values))).toEqual(['K1', 'b1', 'W2', 'b2'].map((k) => value(e, k)));
    const history = await model.fit({ images: Uint8Array.from(EXPLAIN_CNN_EXAMPLE.pixels), count: 2, rows, cols }, labels, { batchSize: 2, epochs: 1, shuffle: false });
    expect(history.loss[0]).toBe(value(e, 'loss')[0]);
    expect(model.getWeights().map((v) => Array.from(v.values))).toEqual(['K1_new', 'b1_new', 'W2_new', 'b2_new'].map((k) => value(e, k)));
  });

  it('its images are the fixture images it names, cropped to 24×24 and shrunk by 4×4 block means', () => {
    const dir = resolve(import.meta.dirname, '../../../test/fixtures/fashion-mnist');
    const ds = loadImageDataset(`${dir}/train-images-idx3-ubyte.gz`, `${dir}/train-labels-idx1-ubyte.gz`, { classNames: FASHION_MNIST_CLASS_NAMES });
    const { crop, block } = EXPLAIN_CNN_EXAMPLE;
    const shrunk: number[] = [];
    EXPLAIN_CNN_EXAMPLE.fixtureIndices.forEach((index, i) => {
      expect(FASHION_MNIST_CLASS_NAMES[ds.labels[index]]).toBe(classNames[labels[i]]);
      const image = ds.images.subarray(index * 784, (index + 1) * 784);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          let sum = 0;
          for (let a = 0; a < block; a++) for (let b = 0; b < block; b++) sum += image[(crop + r * block + a) * 28 + crop + c * block + b];
          shrunk.push(Math.round(sum / (block * block)));
        }
      }
    });
    expect(shrunk).toEqual([...EXPLAIN_CNN_EXAMPLE.pixels]);
  });
});
