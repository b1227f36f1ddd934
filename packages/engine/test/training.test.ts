/** End-to-end training on the real Fashion-MNIST fixture subset (2,000 train / 500 test images). */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EarlyStopping, History, TerminateOnNaN, Tensor, adam, dense, dropout, flatten, kernels, loadDataset, sequential, setBackend, sgd,
  type BackendName, type Callback,
} from '../src/index.js';

const fixtureDir = join(import.meta.dirname, '../../../test/fixtures/fashion-mnist');
const data = await loadDataset('fashion-mnist', { dir: fixtureDir });

function defaultModel(seed = 1) {
  const model = sequential(
    [flatten({ inputShape: [28, 28] }), dense({ units: 128, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })],
    { seed },
  );
  model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

function weightBytes(model: ReturnType<typeof defaultModel>): Buffer {
  return Buffer.concat(model.getWeights().map((w) => Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength)));
}

describe.each(['ts', 'wasm'] as BackendName[])('training on the fixture (%s backend)', (backend) => {
  it('reaches at least 75% test accuracy in 3 epochs and is bit-identical across two runs', async () => {
    setBackend(backend);
    const runs: Array<{ weights: Buffer; history: History; accuracy: number }> = [];
    for (let run = 0; run < 2; run++) {
      const model = defaultModel(3);
      const history = await model.fit(data.train, data.train.labels, { epochs: 3, batchSize: 32, seed: 3 });
      const { accuracy } = model.evaluate(data.test, data.test.labels);
      runs.push({ weights: weightBytes(model), history, accuracy });
      model.dispose();
    }
    expect(runs[0].accuracy).toBeGreaterThanOrEqual(0.75);
    expect(runs[0].history.loss[2]).toBeLessThan(runs[0].history.loss[0]);
    expect(runs[1].accuracy).toBe(runs[0].accuracy);
    expect(runs[1].history.loss).toEqual(runs[0].history.loss);
    expect(runs[1].weights.equals(runs[0].weights), 'same seed, same weights, bit for bit').toBe(true);
  });

  it('a steady-state step takes no new backend memory (buffers are reused)', async () => {
    setBackend(backend);
    const model = defaultModel();
    const small = { ...data.train, count: 320, images: data.train.images.subarray(0, 320 * 784) };
    const labels = data.train.labels.subarray(0, 320);
    await model.fit(small, labels, { epochs: 1 });
    const after1 = kernels().memoryBytes();
    await model.fit(small, labels, { epochs: 3 });
    expect(kernels().memoryBytes()).toBe(after1);
    model.dispose();
  });
});

describe('backends agree', () => {
  it('training on the fixture gives the same test accuracy within 0.5 percentage points on ts and wasm', async () => {
    const accuracy: Record<string, number> = {};
    for (const backend of ['ts', 'wasm'] as BackendName[]) {
      setBackend(backend);
      expect(kernels().name).toBe(backend);
      const model = defaultModel(11);
      await model.fit(data.train, data.train.labels, { epochs: 3, batchSize: 32, seed: 11 });
      accuracy[backend] = model.evaluate(data.test, data.test.labels).accuracy;
      model.dispose();
    }
    expect(accuracy.ts).toBeGreaterThanOrEqual(0.75);
    expect(Math.abs(accuracy.ts - accuracy.wasm)).toBeLessThanOrEqual(0.005);
  });
});

describe('training semantics', () => {
  it('validationSplit holds out the last samples, before shuffling', async () => {
    setBackend('ts');
    const model = defaultModel();
    const seen = new Set<number>();
    // Inputs as a float tensor whose every pixel is the sample's index, so batches reveal which samples were used.
    const n = 50;
    const x = Tensor.zeros([n, 28, 28]);
    for (let i = 0; i < n; i++) x.data.fill(i, i * 784, (i + 1) * 784);
    // Seen through call, which steps replayed from a recorded one do not make (as Keras's run_eagerly).
    model.runEagerly = true;
    const original = model.call.bind(model);
    model.call = (input, training) => {
      if (training) for (let r = 0; r < input.shape[0]; r++) seen.add(input.data[r * 784]);
      return original(input, training);
    };
    const history = await model.fit(x, new Uint8Array(n), { epochs: 1, batchSize: 8, validationSplit: 0.2 });
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(history.val_loss).toHaveLength(1);
    expect(history.val_accuracy).toHaveLength(1);
  });

  it('EarlyStopping stops after `patience` epochs without improvement and restores the best weights', async () => {
    setBackend('ts');
    const model = defaultModel();
    const messages: string[] = [];
    // A learning rate so large that the loss gets worse, so the first epoch stays the best.
    model.compile({ optimizer: sgd({ learningRate: 5 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const stopper = new EarlyStopping({ monitor: 'loss', patience: 1, restoreBestWeights: true, log: (m) => messages.push(m) });
    let bestWeights: Float32Array[] = [];
    const recorder: Callback = {
      onEpochEnd: (epoch) => {
        if (epoch === stopper.bestEpoch) bestWeights = model.getWeights().map((w) => w.values);
      },
    };
    const history = await model.fit(data.train, data.train.labels, { epochs: 10, callbacks: [stopper, recorder] });
    expect(history.loss.length).toBeLessThan(10);
    expect(messages.some((m) => m.startsWith('Restoring model weights from the end of the best epoch'))).toBe(true);
    const restored = model.getWeights().map((w) => w.values);
    expect(restored.every((w, i) => Buffer.from(w.buffer).equals(Buffer.from(bestWeights[i].buffer)))).toBe(true);
  });

  it('EarlyStopping with restoreBestWeights restores the best epoch when training runs all its epochs (Keras 3), but not when stopped inside an epoch', async () => {
    setBackend('ts');
    const sameBits = (a: Float32Array[], b: Float32Array[]) => a.length === b.length && a.every((w, i) => Buffer.from(w.buffer).equals(Buffer.from(b[i].buffer)));
    const train = async (stopInEpoch?: number) => {
      const model = defaultModel();
      model.compile({ optimizer: sgd({ learningRate: 5 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
      const stopper = new EarlyStopping({ monitor: 'loss', patience: 10, restoreBestWeights: true, log: () => {} });
      const atEpochEnd: Float32Array[][] = [];
      let atStop: Float32Array[] = [];
      const recorder: Callback = {
        onEpochEnd: () => void atEpochEnd.push(model.getWeights().map((w) => w.values.slice())),
        onBatchEnd: (batch) => {
          if (atEpochEnd.length === stopInEpoch && batch === 2) {
            model.stopTraining = true;
            atStop = model.getWeights().map((w) => w.values.slice());
          }
        },
      };
      const history = await model.fit(data.train, data.train.labels, { epochs: 3, callbacks: [stopper, recorder] });
      return { model, stopper, history, atEpochEnd, atStop, final: model.getWeights().map((w) => w.values) };
    };
    const full = await train();
    expect(full.history.loss).toHaveLength(3);
    expect(full.stopper.stoppedEpoch).toBe(0);
    // The loss gets worse at this learning rate, so an earlier epoch than the last is the best.
    expect(full.stopper.bestEpoch).toBeLessThan(2);
    expect(full.stopper.restoredEpoch).toBe(full.stopper.bestEpoch);
    expect(sameBits(full.final, full.atEpochEnd[full.stopper.bestEpoch])).toBe(true);
    expect(sameBits(full.final, full.atEpochEnd[2])).toBe(false);

    const cut = await train(1);
    expect(cut.history.stoppedAt?.epoch).toBe(1);
    expect(cut.stopper.restoredEpoch).toBeUndefined();
    expect(sameBits(cut.final, cut.atStop)).toBe(true);
  });

  it('TerminateOnNaN stops on the first non-finite loss and keeps the weights from before it', async () => {
    setBackend('ts');
    const model = defaultModel();
    const x = Tensor.zeros([64, 28, 28]);
    x.data.fill(0.5);
    x.data[40 * 784] = NaN; // sample 40 poisons the second batch of 32 (no shuffle)
    let weightsAfterFirstBatch: Float32Array[] = [];
    const messages: string[] = [];
    const history = await model.fit(x, new Uint8Array(64), {
      epochs: 1, batchSize: 32, shuffle: false,
      callbacks: [new TerminateOnNaN((m) => messages.push(m)), { onBatchEnd: () => (weightsAfterFirstBatch = model.getWeights().map((w) => w.values)) }],
    });
    expect(messages[0]).toMatch(/^Epoch 1\/1, batch 2\/2: invalid loss (NaN|Infinity), terminating training$/);
    expect(history.stoppedAt?.batch).toBe(1);
    const now = model.getWeights().map((w) => w.values);
    expect(now.every((w) => w.every(Number.isFinite))).toBe(true);
    expect(now.every((w, i) => Buffer.from(w.buffer).equals(Buffer.from(weightsAfterFirstBatch[i].buffer)))).toBe(true);
  });

  it('stopping mid-epoch and resuming from History.stoppedAt gives bit-identical weights', async () => {
    setBackend('ts');
    const layers = () => [flatten({ inputShape: [28, 28] }), dense({ units: 32, activation: 'relu' }), dropout({ rate: 0.2 }), dense({ units: 10, activation: 'softmax' })];
    const small = { ...data.train, count: 640, images: data.train.images.subarray(0, 640 * 784) };
    const labels = data.train.labels.subarray(0, 640);

    const straight = sequential(layers(), { seed: 5 });
    straight.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const full = await straight.fit(small, labels, { epochs: 2, seed: 9 });

    const first = sequential(layers(), { seed: 5 });
    const optimizer = adam();
    first.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    let epochsSeen = 0;
    const interrupt: Callback = {
      onEpochEnd: () => void epochsSeen++,
      onBatchEnd: (batch) => {
        if (epochsSeen === 1 && batch === 6) first.stopTraining = true; // as Ctrl-C does, mid-way through epoch 2
      },
    };
    const partial = await first.fit(small, labels, { epochs: 2, seed: 9, callbacks: [interrupt] });
    expect(epochsSeen).toBe(1);
    expect(partial.stoppedAt).toMatchObject({ epoch: 1, batch: 7 });

    // A fresh model restored from the saved pieces, as `descent train --resume` does.
    const resumed = sequential(layers(), { seed: 123 });
    const resumedOptimizer = adam();
    resumed.compile({ optimizer: resumedOptimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    resumed.setWeights(first.getWeights().map((w) => w.values));
    resumedOptimizer.setState(resumed.parameters(), JSON.parse(JSON.stringify(optimizer.getState(first.parameters()))));
    const rest = await resumed.fit(small, labels, { epochs: 2, resume: partial.stoppedAt });

    expect(rest.loss).toEqual([full.loss[1]]);
    expect(resumed.getWeights().map((w) => Array.from(w.values))).toEqual(straight.getWeights().map((w) => Array.from(w.values)));
  });
});
