/**
 * Recorded and replayed training steps (step-recording.ts): a recording logs a step's kernel
 * calls, keeps the buffers the step freed, and replays the calls and the ops' marked JavaScript
 * in order; `fit` with replayed steps ends with the same weights, losses and metrics, to the bit,
 * as `fit` running every step op by op (runEagerly), on both backends, 1 to 3 threads, with
 * dropout, convolutions, mean squared error and batches that leave a short last one.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Tensor, adam, conv2d, dense, dropout, flatten, kernels, loadDataset, maxPooling2d, reshapeLayer, sequential, setBackend, setThreads, sgd,
  threadsReady, type Callback, type Layer,
} from '../src/index.js';
import { sparseCategoricalCrossentropy } from '../src/ops/cross-entropy.js';
import { hostStep, recordStep, unrecorded } from '../src/step-recording.js';

const fixtureDir = join(import.meta.dirname, '../../../test/fixtures/fashion-mnist');
const data = await loadDataset('fashion-mnist', { dir: fixtureDir });

afterAll(() => {
  setThreads('auto');
  setBackend('wasm');
});

/** The first `count` training images of the fixture, as byte images with their labels. */
function firstImages(count: number) {
  const { train } = data;
  return { images: { ...train, count, images: train.images.subarray(0, count * 784) }, labels: train.labels.subarray(0, count) };
}

function weightBytes(model: { getWeights(): Array<{ values: Float32Array | Float64Array }> }): Buffer {
  return Buffer.concat(model.getWeights().map((w) => Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength)));
}

describe('recordStep', () => {
  it('logs kernel calls and zeroing, keeps freed buffers, reruns marked JavaScript, and leaves out what runs unrecorded', () => {
    setBackend('ts');
    const k = kernels();
    const a = Tensor.from([1, 2, 3, 4]);
    const b = Tensor.from([10, 20, 30, 40]);
    const out = Tensor.zeros([4]);
    const untouched = Tensor.zeros([4]);
    const baseline = k.memoryBytes();
    let hostRuns = 0;
    const { recording, marks } = recordStep((mark) => {
      const K = kernels();
      const temporary = K.alloc(4); // zeroed: logged as a fill with 0
      K.axpy(1, a.storage, temporary);
      mark('middle');
      K.copy(temporary, out.storage);
      K.axpy(2, b.storage, out.storage);
      K.free(temporary); // put off: a replay writes it again
      hostStep(() => {
        hostRuns++;
        out.data[0] = K.sum(a.storage);
      });
      unrecorded(() => K.fill(untouched.storage, 5));
    });
    expect(Array.from(out.data)).toEqual([10, 42, 63, 84]);
    expect(hostRuns).toBe(1);
    expect(recording.length).toBe(5);
    expect(marks.get('middle')).toBe(2);
    expect(k.memoryBytes()).toBeGreaterThan(baseline);

    a.data.set([2, 3, 4, 5]);
    untouched.data.fill(7);
    recording.replay();
    expect(Array.from(out.data)).toEqual([14, 43, 64, 85]);
    expect(hostRuns).toBe(2);
    expect(Array.from(untouched.data)).toEqual([7, 7, 7, 7]);
    // From a mark on: the copy starts from the temporary the last replay left.
    out.data.fill(0);
    recording.replay(marks.get('middle'));
    expect(Array.from(out.data)).toEqual([14, 43, 64, 85]);

    recording.dispose();
    recording.dispose();
    expect(k.memoryBytes()).toBe(baseline);
    expect(() => recording.replay()).toThrow(/disposed/);
    for (const t of [a, b, out, untouched]) t.dispose();
  });

  it('a step that throws while recorded frees what it kept, and the next recording starts clean', () => {
    setBackend('ts');
    const k = kernels();
    const baseline = k.memoryBytes();
    expect(() => recordStep(() => {
      kernels().free(kernels().alloc(16));
      throw new Error('boom');
    })).toThrow('boom');
    expect(k.memoryBytes()).toBe(baseline);
    expect(() => recordStep(() => recordStep(() => 0))).toThrow(/already being recorded/);
    const { recording } = recordStep(() => kernels().free(kernels().alloc(8)));
    expect(recording.length).toBe(1);
    recording.dispose();
    expect(k.memoryBytes()).toBe(baseline);
  });
});

/** A model of `kind` on 28×28 images, compiled with Adam (or SGD), replaying its steps or not. */
function modelOf(kind: 'dense' | 'dropout' | 'cnn' | 'mse', runEagerly: boolean, units: number, rate: number) {
  const layers: Layer[] = kind === 'cnn'
    ? [reshapeLayer({ targetShape: [28, 28, 1], inputShape: [28, 28] }), conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }), maxPooling2d({ poolSize: 2 }), flatten(), dense({ units: 10, activation: 'softmax' })]
    : [flatten({ inputShape: [28, 28] }), dense({ units, activation: 'relu' }), ...(kind === 'dropout' ? [dropout({ rate })] : []), dense({ units: 10, activation: kind === 'mse' ? 'linear' : 'softmax' })];
  const model = sequential(layers, { seed: 7 });
  model.compile({
    optimizer: kind === 'mse' ? sgd({ learningRate: 0.01, momentum: 0.9 }) : adam(),
    loss: kind === 'mse' ? 'mse' : 'sparseCategoricalCrossentropy',
    metrics: kind === 'mse' ? [] : ['accuracy', 'sparse_top_k_categorical_accuracy'],
    runEagerly,
  });
  return model;
}

/** One-hot targets of the labels, for the mean squared error. */
function oneHot(labels: Uint8Array): Tensor {
  const t = Tensor.zeros([labels.length, 10]);
  labels.forEach((label, i) => (t.data[i * 10 + label] = 1));
  return t;
}

async function trainBoth(kind: 'dense' | 'dropout' | 'cnn' | 'mse', count: number, batchSize: number, units: number, rate: number, validationSplit: number) {
  const { images, labels } = firstImages(count);
  const targets = kind === 'mse' ? oneHot(labels) : labels;
  const runs = [];
  for (const runEagerly of [true, false]) {
    const model = modelOf(kind, runEagerly, units, rate);
    const history = await model.fit(images, targets, { epochs: 2, batchSize, seed: 3, validationSplit });
    runs.push({ weights: weightBytes(model), history: history.history, replayed: model.replayedSteps });
  }
  if (targets instanceof Tensor) targets.dispose();
  return runs;
}

describe('fit with replayed steps', () => {
  it.each([
    ['wasm', 1], ['wasm', 2], ['wasm', 3], ['ts', 1],
  ] as const)('gives the same weights, losses and metrics as running every step (%s backend, %i thread(s))', async (backend, threads) => {
    setThreads(threads);
    setBackend(backend);
    await threadsReady();
    for (const kind of ['dense', 'dropout', 'cnn', 'mse'] as const) {
      const [eager, replayed] = await trainBoth(kind, 200, 16, 32, 0.3, 0.2);
      expect(eager.replayed, kind).toBe(0);
      // 160 training samples in batches of 16: 10 steps an epoch. The second step is recorded and
      // the rest of the fit replays it: 8 steps of the first epoch, all 10 of the second.
      expect(replayed.replayed, kind).toBe(18);
      expect(replayed.history, kind).toEqual(eager.history);
      expect(replayed.weights.equals(eager.weights), kind).toBe(true);
    }
  });

  it('over random batch sizes, widths, dropout rates and thread counts (seeded property)', async () => {
    setBackend('wasm');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('dense', 'dropout', 'mse'), fc.integer({ min: 3, max: 40 }), fc.integer({ min: 1, max: 48 }),
        fc.double({ min: 0.05, max: 0.7, noNaN: true }), fc.integer({ min: 1, max: 3 }),
        async (kind, batchSize, units, rate, threads) => {
          setThreads(threads);
          await threadsReady();
          const [eager, replayed] = await trainBoth(kind, 120, batchSize, units, rate, 0);
          expect(replayed.replayed).toBeGreaterThan(0);
          expect(replayed.history).toEqual(eager.history);
          expect(replayed.weights.equals(eager.weights)).toBe(true);
        },
      ),
      { seed: 20261203, numRuns: 12 },
    );
  });

  it('runs every step the usual way when callbacks watch the steps, the loss is a custom one, or runEagerly is set', async () => {
    setThreads(1);
    setBackend('wasm');
    const { images, labels } = firstImages(96);
    const watcher: Callback = { onGradients: () => {} };
    const watched = modelOf('dense', false, 16, 0);
    await watched.fit(images, labels, { epochs: 1, batchSize: 16, callbacks: [watcher] });
    expect(watched.replayedSteps).toBe(0);
    const custom = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 10, activation: 'softmax' })], { seed: 1 });
    custom.compile({ optimizer: adam(), loss: { name: 'mine', fn: (p, t) => sparseLoss(p, t) } });
    await custom.fit(images, labels, { epochs: 1, batchSize: 16 });
    expect(custom.replayedSteps).toBe(0);
    const plain = modelOf('dense', false, 16, 0);
    await plain.fit(images, labels, { epochs: 1, batchSize: 16 });
    expect(plain.replayedSteps).toBe(4);
    plain.runEagerly = true;
    await plain.fit(images, labels, { epochs: 1, batchSize: 16 });
    expect(plain.replayedSteps).toBe(0);
  });

  it('gives back every buffer of the recording when fit ends, and when it throws', async () => {
    setThreads(2);
    setBackend('wasm');
    await threadsReady();
    const { images, labels } = firstImages(128);
    const model = modelOf('dropout', false, 24, 0.2);
    await model.fit(images, labels, { epochs: 1, batchSize: 16 });
    const after = kernels().memoryBytes();
    await model.fit(images, labels, { epochs: 2, batchSize: 16 });
    expect(model.replayedSteps).toBeGreaterThan(0);
    expect(kernels().memoryBytes()).toBe(after);
    let batches = 0;
    const failing: Callback = { onBatchEnd: () => {
      if (++batches === 5) throw new Error('stop here');
    } };
    await expect(model.fit(images, labels, { epochs: 1, batchSize: 16, callbacks: [failing] })).rejects.toThrow('stop here');
    expect(kernels().memoryBytes()).toBe(after);
  });
});

/** A custom loss: descent's own sparse cross-entropy, but unknown to fit. */
function sparseLoss(predictions: Tensor, targets: Tensor): Tensor {
  return sparseCategoricalCrossentropy(predictions, targets);
}
