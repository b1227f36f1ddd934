/**
 * `explainOneStep` shows a learner every number of one training step; these tests check each of
 * them against an independent float64 computation: forward values against plain loops, every
 * gradient against central finite differences, Adam against its formula, the printed text against
 * the values, and the whole step against what `fit` does with the same model and batch.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EXPLAIN_EXAMPLE, FASHION_MNIST_CLASS_NAMES, createReferenceKernels, dense, explainOneStep, flatten, formatExplanation,
  loadImageDataset, sequential, setBackend, type Explanation, type Kernels,
} from '../src/index.js';
import {
  affine, centralDifferences, crossEntropyFromLogits, forward, lossOf, reluOf, type MlpSizes, type MlpWeights,
} from './helpers/mlp-reference.js';

const sizes: MlpSizes = { n: 2, inputs: 16, hidden: 4, classes: 3 };
const labels = [...EXPLAIN_EXAMPLE.labels];

function value(explanation: Explanation, key: string): number[] {
  const step = explanation.steps.find((s) => s.key === key);
  if (!step) throw new Error(`no step '${key}'`);
  return step.values;
}

function expectClose(actual: number[], expected: number[], tolerance: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  actual.forEach((a, i) => {
    const scale = Math.max(1, Math.abs(expected[i]));
    expect(Math.abs(a - expected[i]) / scale, `${what}[${i}]: ${a} vs ${expected[i]}`).toBeLessThan(tolerance);
  });
}

const EXPECTED_SHAPES: Record<string, number[]> = {
  pixels: [2, 4, 4], y: [2], x: [2, 16], W1: [16, 4], b1: [4], z1: [2, 4], h1: [2, 4], W2: [4, 3], b2: [3],
  z2: [2, 3], p: [2, 3], loss: [], onehot: [2, 3], dz2: [2, 3], dW2: [4, 3], db2: [3], dh1: [2, 4], dz1: [2, 4],
  dW1: [16, 4], db1: [4], lr_t: [],
  m_W1: [16, 4], v_W1: [16, 4], step_W1: [16, 4], W1_new: [16, 4],
  m_b1: [4], v_b1: [4], step_b1: [4], b1_new: [4],
  m_W2: [4, 3], v_W2: [4, 3], step_W2: [4, 3], W2_new: [4, 3],
  m_b2: [3], v_b2: [3], step_b2: [3], b2_new: [3],
  loss_after: [],
};

describe('explainOneStep on the float64 reference kernels', () => {
  let previous: Kernels;
  let e: Explanation;
  let x: number[];
  let weights: MlpWeights;
  beforeAll(() => {
    previous = setBackend('ts');
    setBackend(createReferenceKernels('float64'));
    e = explainOneStep();
    x = value(e, 'x');
    weights = { W1: value(e, 'W1'), b1: value(e, 'b1'), W2: value(e, 'W2'), b2: value(e, 'b2') };
  });
  afterAll(() => {
    setBackend(previous);
  });

  it('lists every value with the shape it is printed with', () => {
    expect(Object.fromEntries(e.steps.map((s) => [s.key, s.shape]))).toEqual(EXPECTED_SHAPES);
    for (const step of e.steps) {
      expect(step.values.length, step.key).toBe(step.shape.reduce((a, b) => a * b, 1));
      expect(step.values.every(Number.isFinite), step.key).toBe(true);
    }
  });

  it('inputs are the example pixels / 255, and the weights start as Keras starts them', () => {
    expectClose(x, EXPLAIN_EXAMPLE.pixels.map((p) => p / 255), 1e-12, 'x');
    expect(value(e, 'y')).toEqual(labels);
    const limit1 = Math.sqrt(6 / (16 + 4)), limit2 = Math.sqrt(6 / (4 + 3));
    expect(weights.W1.every((w) => Math.abs(w) < limit1)).toBe(true);
    expect(weights.W2.every((w) => Math.abs(w) < limit2)).toBe(true);
    expect([...weights.b1, ...weights.b2].every((b) => b === 0)).toBe(true);
  });

  it('forward values match plain loops', () => {
    const f = forward(x, weights, sizes);
    expectClose(value(e, 'z1'), f.z1, 1e-12, 'z1');
    expectClose(value(e, 'h1'), f.h1, 1e-12, 'h1');
    expectClose(value(e, 'z2'), f.z2, 1e-12, 'z2');
    expectClose(value(e, 'p'), f.p, 1e-12, 'p');
    expect(value(e, 'loss')[0]).toBeCloseTo(-(Math.log(f.p[labels[0]]) + Math.log(f.p[3 + labels[1]])) / 2, 12);
  });

  it('takes other pixels and starting weights (a changed pixel and weight move every number after them, as plain loops say)', () => {
    const pixels = [...EXPLAIN_EXAMPLE.pixels];
    pixels[5] = 255;
    const changed = { ...weights, W2: weights.W2.map((w, i) => (i === 4 ? w + 0.5 : w)) };
    const edited = explainOneStep({ pixels, weights: { W2: changed.W2 } });
    expect(value(edited, 'pixels')).toEqual(pixels);
    expect(value(edited, 'W1')).toEqual(weights.W1);
    expect(value(edited, 'W2')).toEqual(changed.W2);
    const f = forward(value(edited, 'x'), changed, sizes);
    expect(value(edited, 'x')[5]).toBe(1);
    expectClose(value(edited, 'z1'), f.z1, 1e-12, 'z1');
    expectClose(value(edited, 'p'), f.p, 1e-12, 'p');
    for (const key of ['z1', 'p', 'loss', 'dz2', 'dW1', 'm_W1', 'W1_new', 'loss_after']) expect(value(edited, key), key).not.toEqual(value(e, key));
    // The same starting weights given by hand give the same step as the seed that drew them.
    expect(explainOneStep({ seed: 99, weights }).steps).toEqual(e.steps);
  });

  it('refuses pixels and weights of the wrong size or out of range', () => {
    expect(() => explainOneStep({ pixels: [1, 2, 3] })).toThrow(/pixels must be 32 values from 0 to 255/);
    expect(() => explainOneStep({ pixels: EXPLAIN_EXAMPLE.pixels.map(() => 300) })).toThrow(/pixels/);
    expect(() => explainOneStep({ weights: { b1: [0, 0] } })).toThrow(/b1 must be 4 finite numbers/);
    expect(() => explainOneStep({ weights: { b2: [0, NaN, 0] } })).toThrow(/b2/);
  });

  it('the example shows a ReLU at work: some hidden values are 0, some are not', () => {
    const h1 = value(e, 'h1');
    expect(h1.some((v) => v === 0)).toBe(true);
    expect(h1.some((v) => v > 0)).toBe(true);
  });

  it('every gradient matches central finite differences of the loss', () => {
    const { n, hidden, classes } = sizes;
    const z1 = value(e, 'z1');
    const h1 = value(e, 'h1');
    const fromLogits = (z2: number[]) => crossEntropyFromLogits(z2, labels, classes);
    const fromHidden = (h: number[]) => fromLogits(affine(h, weights.W2, weights.b2, n, hidden, classes));
    const fromPreActivation = (z: number[]) => fromHidden(reluOf(z));
    const check = (key: string, numeric: number[]) => expectClose(value(e, key), numeric, 1e-6, key);

    check('dz2', centralDifferences(value(e, 'z2'), fromLogits));
    check('dh1', centralDifferences(h1, fromHidden));
    // The ReLU has a kink at 0; every z1 of the example is far enough from it for h = 1e-6.
    expect(z1.every((v) => Math.abs(v) > 1e-3)).toBe(true);
    check('dz1', centralDifferences(z1, fromPreActivation));
    check('dW2', centralDifferences(weights.W2, (W2) => lossOf(x, labels, { ...weights, W2 }, sizes)));
    check('db2', centralDifferences(weights.b2, (b2) => lossOf(x, labels, { ...weights, b2 }, sizes)));
    check('dW1', centralDifferences(weights.W1, (W1) => lossOf(x, labels, { ...weights, W1 }, sizes)));
    check('db1', centralDifferences(weights.b1, (b1) => lossOf(x, labels, { ...weights, b1 }, sizes)));
    // And the closed form the walk-through prints for the output layer.
    const p = value(e, 'p');
    const onehot = value(e, 'onehot');
    expect(onehot).toEqual([1, 0, 0, 0, 1, 0]);
    expectClose(value(e, 'dz2'), p.map((pi, i) => (pi - onehot[i]) / n), 1e-12, 'dz2 = (p − onehot)/N');
  });

  it('the Adam update follows the formula with Keras defaults (t = 1)', () => {
    const lr = 1e-3, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;
    const lrT = (lr * Math.sqrt(1 - beta2)) / (1 - beta1);
    expect(value(e, 'lr_t')[0]).toBeCloseTo(lrT, 15);
    for (const name of ['W1', 'b1', 'W2', 'b2'] as const) {
      const g = value(e, `d${name}`);
      const m = g.map((gi) => (1 - beta1) * gi);
      const v = g.map((gi) => (1 - beta2) * gi * gi);
      const step = m.map((mi, i) => (lrT * mi) / (Math.sqrt(v[i]) + epsilon));
      expectClose(value(e, `m_${name}`), m, 1e-12, `m_${name}`);
      expectClose(value(e, `v_${name}`), v, 1e-12, `v_${name}`);
      expectClose(value(e, `step_${name}`), step, 1e-12, `step_${name}`);
      expectClose(value(e, `${name}_new`), weights[name].map((w, i) => w - step[i]), 1e-12, `${name}_new`);
      // The first step moves every weight by about lr against its gradient, and leaves the rest.
      g.forEach((gi, i) => expect(Math.abs(step[i])).toBeCloseTo(gi === 0 ? 0 : lr, 5));
    }
  });

  it('the loss after the update is the loss of the new weights, and it went down', () => {
    const updated: MlpWeights = { W1: value(e, 'W1_new'), b1: value(e, 'b1_new'), W2: value(e, 'W2_new'), b2: value(e, 'b2_new') };
    const after = lossOf(x, labels, updated, sizes);
    expect(value(e, 'loss_after')[0]).toBeCloseTo(after, 12);
    expect(after).toBeLessThan(value(e, 'loss')[0]);
  });

  it('prints every value with its formula and shape, and every printed number is the value', () => {
    const text = formatExplanation(e);
    const blocks = parseBlocks(text);
    expect(blocks.map((b) => b.formula)).toEqual(e.steps.map((s) => s.formula));
    blocks.forEach((block, i) => {
      const step = e.steps[i];
      expect(block.shape, step.key).toBe(`[${step.shape.join(', ')}]`);
      const columnBlocks = step.shape.length === 2 ? Math.ceil(step.shape[1] / 8) : 1;
      expect(block.rows, `${step.key}: one printed row per matrix row (per block of 8 columns)`).toBe(
        (step.shape.length >= 2 ? step.shape[step.shape.length - 2] : 1) * columnBlocks,
      );
      expect(block.numbers.length, `${step.key}: every value printed`).toBe(step.values.length);
      const order = step.shape.length === 3 ? sideBySideOrder(step.shape) : step.shape.length === 2 ? columnBlockOrder(step.shape) : step.values.map((_, j) => j);
      block.numbers.forEach((printed, j) => {
        const actual = step.values[order[j]];
        const tolerance = printed.includes('e') ? 5.01e-4 * Math.abs(actual) : printed.includes('.') ? 5.01e-5 : 0;
        expect(Math.abs(Number(printed) - actual), `${step.key}: printed ${printed} for ${actual}`).toBeLessThanOrEqual(tolerance);
      });
    });
  });
});

describe('explainOneStep is the step fit takes', () => {
  it('gives the same updated weights as Sequential.fit on the same batch (float32 reference kernels)', async () => {
    setBackend('ts');
    const e = explainOneStep();
    const { rows, cols, pixels, classNames, hiddenUnits, seed } = EXPLAIN_EXAMPLE;
    const model = sequential([
      flatten({ inputShape: [rows, cols] }),
      dense({ units: hiddenUnits, activation: 'relu' }),
      dense({ units: classNames.length, activation: 'softmax' }),
    ], { seed });
    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    expect(model.getWeights().map((w) => Array.from(w.values))).toEqual(['W1', 'b1', 'W2', 'b2'].map((k) => value(e, k)));
    const history = await model.fit({ images: Uint8Array.from(pixels), count: 2, rows, cols }, labels, { batchSize: 2, epochs: 1, shuffle: false });
    expect(history.loss[0]).toBe(value(e, 'loss')[0]);
    expect(model.getWeights().map((w) => Array.from(w.values))).toEqual(['W1_new', 'b1_new', 'W2_new', 'b2_new'].map((k) => value(e, k)));
  });

  it('the excerpts and numbers quoted in docs/learn/one-step.md are what it prints', () => {
    setBackend('ts');
    const e = explainOneStep();
    const printed = formatExplanation(e);
    const doc = readFileSync(resolve(import.meta.dirname, '../../../docs/learn/one-step.md'), 'utf8');
    const excerpts = [...doc.matchAll(/<!-- checked: descent explain[^>]*-->\n```text\n([\s\S]*?)```/g)].map((m) => m[1].trimEnd());
    expect(excerpts.length).toBeGreaterThanOrEqual(2);
    // An excerpt may skip values, but each block it shows (formula, note, numbers) is verbatim.
    for (const block of excerpts.flatMap((excerpt) => excerpt.split('\n\n'))) expect(printed, 'a quoted block appears verbatim').toContain(`\n${block}\n`);
    const p = value(e, 'p');
    for (const quoted of [p[0], p[4], value(e, 'loss')[0], value(e, 'loss_after')[0]]) expect(doc).toContain(quoted.toFixed(4));
  });

  it('its images are the fixture images it names, shrunk by 7×7 block means', () => {
    const dir = resolve(import.meta.dirname, '../../../test/fixtures/fashion-mnist');
    const ds = loadImageDataset(`${dir}/train-images-idx3-ubyte.gz`, `${dir}/train-labels-idx1-ubyte.gz`, { classNames: FASHION_MNIST_CLASS_NAMES });
    const shrunk: number[] = [];
    EXPLAIN_EXAMPLE.fixtureIndices.forEach((index, i) => {
      expect(FASHION_MNIST_CLASS_NAMES[ds.labels[index]]).toBe(EXPLAIN_EXAMPLE.classNames[EXPLAIN_EXAMPLE.labels[i]]);
      const image = ds.images.subarray(index * 784, (index + 1) * 784);
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 4; c++) {
          let sum = 0;
          for (let i2 = 0; i2 < 7; i2++) for (let j = 0; j < 7; j++) sum += image[(r * 7 + i2) * 28 + c * 7 + j];
          shrunk.push(Math.round(sum / 49));
        }
      }
    });
    expect(shrunk).toEqual([...EXPLAIN_EXAMPLE.pixels]);
  });
});

interface Block {
  formula: string;
  shape: string;
  rows: number;
  numbers: string[];
}

/** Splits the printed walk-through into (formula, shape, numbers) blocks, in order. */
function parseBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const header = /^(\S.*?) {4}shape (\[[^\]]*\])/.exec(lines[i]);
    if (!header) continue;
    const block: Block = { formula: header[1], shape: header[2], rows: 0, numbers: [] };
    expect(lines[i + 1].startsWith('  ') && !lines[i + 1].startsWith('    '), `a one-line explanation follows ${header[1]}`).toBe(true);
    for (i += 2; i < lines.length && lines[i].startsWith('    '); i++) {
      if (/^ {4}\(columns \d+–\d+\)$/.test(lines[i])) continue;
      block.rows++;
      block.numbers.push(...lines[i].trim().split(/\s+/).filter((t) => t !== '|'));
    }
    blocks.push(block);
  }
  return blocks;
}

/** Matrices wider than 8 columns are printed in blocks of 8 columns, each block row by row. */
function columnBlockOrder([rows, cols]: number[]): number[] {
  const order: number[] = [];
  for (let from = 0; from < cols; from += 8) {
    for (let r = 0; r < rows; r++) for (let c = from; c < Math.min(cols, from + 8); c++) order.push(r * cols + c);
  }
  return order;
}

/** Images [count, rows, cols] are printed row by row with the images side by side. */
function sideBySideOrder([count, rows, cols]: number[]): number[] {
  const order: number[] = [];
  for (let r = 0; r < rows; r++) for (let s = 0; s < count; s++) for (let c = 0; c < cols; c++) order.push(s * rows * cols + r * cols + c);
  return order;
}
