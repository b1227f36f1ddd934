/**
 * The training trace reports, per layer, numbers a learner reads as "is training healthy?".
 * Each is recomputed here for one step, independently of the engine (plain float64 loops and
 * finite differences), and a longer run on the fixture checks they stay finite and in range,
 * that only the asked-for steps are observed, and that tracing does not change training.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Random, Tensor, TraceCallback, adam, createReferenceKernels, dense, flatten, formatTrace, loadImageDataset, sequential,
  setBackend, subset, type Callback, type Kernels, type StepTrace,
} from '../src/index.js';
import { centralDifferences, forward, lossOf, norm, type MlpSizes, type MlpWeights } from './helpers/mlp-reference.js';

const sizes: MlpSizes = { n: 6, inputs: 6, hidden: 4, classes: 3 };

function tinyModel() {
  return sequential([
    flatten({ inputShape: [2, 3] }),
    dense({ units: sizes.hidden, activation: 'relu' }),
    dense({ units: sizes.classes, activation: 'softmax' }),
  ], { seed: 3 });
}

describe.each([
  ['float64 reference kernels', () => createReferenceKernels('float64'), 1e-9],
  ['float32 reference kernels', () => createReferenceKernels('float32'), 2e-4],
] as const)('one traced step on a tiny model (%s)', (_name, backend, tolerance) => {
  let previous: Kernels;
  beforeAll(() => {
    previous = setBackend('ts');
    setBackend(backend());
  });
  afterAll(() => {
    setBackend(previous);
  });

  it('reports norms, update ratio, dead units and activation stats equal to an independent computation', async () => {
    const random = new Random(11);
    const x = Array.from({ length: sizes.n * sizes.inputs }, () => random.uniform(0, 1));
    const labels = [0, 1, 2, 0, 1, 2];
    const model = tinyModel();
    // Hidden unit 0 gets only negative weights: with positive inputs it is 0 for every sample (dead).
    const start = model.getWeights().map((w) => Array.from(w.values));
    for (let k = 0; k < sizes.inputs; k++) start[0][k * sizes.hidden] = -Math.abs(start[0][k * sizes.hidden]) - 0.1;
    start[1] = [0.1, -0.05, 0.02, 0.03]; // non-zero hidden biases so their gradients and norms matter
    model.setWeights(start);
    const before = weightsOf(model);
    model.compile({ optimizer: adam({ learningRate: 0.01 }), loss: 'sparseCategoricalCrossentropy' });

    const traces: StepTrace[] = [];
    await model.fit(Tensor.from(x, [sizes.n, 2, 3]), labels, {
      batchSize: sizes.n, epochs: 1, shuffle: false, callbacks: [new TraceCallback({ every: 1, onTrace: (t) => traces.push(t) })],
    });
    const after = weightsOf(model);
    expect(traces).toHaveLength(1);
    const [trace] = traces;
    expect([trace.step, trace.epoch, trace.batch]).toEqual([1, 1, 1]);
    expect(trace.layers.map((l) => `${l.name}/${l.className}`)).toEqual(['flatten/Flatten', 'dense/Dense', 'dense_1/Dense']);

    // Independent numbers: float64 forward pass, finite-difference gradients, weights read back.
    const f = forward(x, before, sizes);
    const close = (actual: number | null, expected: number, what: string) => {
      expect(actual, what).not.toBeNull();
      expect(Math.abs(actual! - expected) / Math.max(1e-12, Math.abs(expected)), `${what}: ${actual} vs ${expected}`).toBeLessThan(tolerance);
    };
    close(trace.loss, lossOf(x, labels, before, sizes), 'loss');
    const grad = (key: keyof MlpWeights) => centralDifferences(before[key], (v) => lossOf(x, labels, { ...before, [key]: v }, sizes));
    const diff = (key: keyof MlpWeights) => after[key].map((w, i) => w - before[key][i]);

    const [flat, hidden, output] = trace.layers;
    expect([flat.weightNorm, flat.gradNorm, flat.updateRatio, flat.deadFraction]).toEqual([null, null, null, null]);
    close(flat.activationMean, x.reduce((a, b) => a + b) / x.length, 'flatten mean');
    close(flat.activationMax, Math.max(...x), 'flatten max');

    close(hidden.weightNorm, norm([...before.W1, ...before.b1]), 'hidden ‖w‖');
    close(hidden.gradNorm, norm([...grad('W1'), ...grad('b1')]), 'hidden ‖grad‖');
    close(hidden.updateRatio, norm([...diff('W1'), ...diff('b1')]) / norm([...before.W1, ...before.b1]), 'hidden ‖Δw‖/‖w‖');
    close(hidden.activationMean, f.h1.reduce((a, b) => a + b) / f.h1.length, 'hidden mean');
    close(hidden.activationMax, Math.max(...f.h1), 'hidden max');
    const deadUnits = [0, 1, 2, 3].filter((j) => [0, 1, 2, 3, 4, 5].every((i) => f.h1[i * sizes.hidden + j] === 0)).length;
    expect(deadUnits, 'the test model has a dead unit').toBeGreaterThanOrEqual(1);
    expect(hidden.deadFraction).toBe(deadUnits / sizes.hidden);
    expect(hidden.zeroFraction).toBe(f.h1.filter((v) => v === 0).length / f.h1.length);

    close(output.weightNorm, norm([...before.W2, ...before.b2]), 'output ‖w‖');
    close(output.gradNorm, norm([...grad('W2'), ...grad('b2')]), 'output ‖grad‖');
    close(output.updateRatio, norm([...diff('W2'), ...diff('b2')]) / norm([...before.W2, ...before.b2]), 'output ‖Δw‖/‖w‖');
    expect(output.deadFraction, 'softmax layers have no dead-ReLU count').toBeNull();
    close(output.activationMean, 1 / sizes.classes, 'softmax outputs average 1/classes');
    close(output.activationMax, Math.max(...f.p), 'output max');

    const table = formatTrace(trace);
    expect(table).toContain('step 1 (epoch 1, batch 1)');
    expect(table).toContain(hidden.weightNorm!.toPrecision(4));
    expect(table).toContain(`${(100 * hidden.deadFraction!).toFixed(1)}%`);
  });
});

describe('tracing a run on the Fashion-MNIST fixture', () => {
  const dir = resolve(import.meta.dirname, '../../../test/fixtures/fashion-mnist');
  const data = subset(loadImageDataset(`${dir}/train-images-idx3-ubyte.gz`, `${dir}/train-labels-idx1-ubyte.gz`), 0, 320);
  const model = () => {
    const m = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 32, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })], { seed: 1 });
    m.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    return m;
  };

  it('traces the first step and every 4th, with finite values in range, and observes no other step', async () => {
    setBackend('ts');
    const traces: StepTrace[] = [];
    const trace = new TraceCallback({ every: 4, onTrace: (t) => traces.push(t) });
    let observed = 0;
    const counter: Callback = { observesStep: (step) => trace.observesStep(step), onGradients: () => void observed++ };
    await model().fit(data, data.labels, { batchSize: 32, epochs: 2, callbacks: [trace, counter] });
    expect(traces.map((t) => t.step)).toEqual([1, 4, 8, 12, 16, 20]);
    expect(observed).toBe(6);
    expect(traces.map((t) => [t.epoch, t.batch])).toEqual([[1, 1], [1, 4], [1, 8], [2, 2], [2, 6], [2, 10]]);
    for (const t of traces) {
      expect(Number.isFinite(t.loss)).toBe(true);
      for (const layer of t.layers.slice(1)) {
        for (const v of [layer.weightNorm, layer.gradNorm, layer.updateRatio, layer.activationMean, layer.activationMax]) {
          expect(Number.isFinite(v), `${layer.name} at step ${t.step}`).toBe(true);
          expect(v!).toBeGreaterThanOrEqual(0);
        }
        expect(layer.gradNorm!).toBeGreaterThan(0);
        expect(layer.updateRatio!).toBeLessThan(0.1);
      }
      const hidden = t.layers[1];
      expect(hidden.deadFraction! >= 0 && hidden.deadFraction! <= hidden.zeroFraction!).toBe(true);
      expect(t.layers[2].activationMax).toBeLessThanOrEqual(1);
    }
  });

  it('does not change training: same weights with and without the trace', async () => {
    setBackend('ts');
    const plain = model();
    await plain.fit(data, data.labels, { batchSize: 32, epochs: 1, seed: 5 });
    const traced = model();
    await traced.fit(data, data.labels, { batchSize: 32, epochs: 1, seed: 5, callbacks: [new TraceCallback({ every: 1, onTrace: () => {} })] });
    expect(traced.getWeights().map((w) => Array.from(w.values))).toEqual(plain.getWeights().map((w) => Array.from(w.values)));
  });

  it('rejects a step interval that is not a positive integer', () => {
    expect(() => new TraceCallback({ every: 0, onTrace: () => {} })).toThrow(/every must be a positive integer, got 0/);
  });
});

/** The weights at full precision (getWeights copies to float32). */
function weightsOf(model: ReturnType<typeof tinyModel>): MlpWeights {
  const [W1, b1, W2, b2] = model.parameters().map((p) => Array.from(p.tensor.data));
  return { W1, b1, W2, b2 };
}
