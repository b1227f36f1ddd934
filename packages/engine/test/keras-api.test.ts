/** What Keras users expect of the API: fit's verbose progress, and its callbacks, on a tiny real subset. */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Adam, ExponentialDecay, RMSprop, ReduceLROnPlateau, Sgd, TerminateOnNaN, Tensor, adam, countInTopK, dense, flatten, kernels, loadDataset, optimizerFromConfig,
  sequential, setBackend, sparseTopKCategoricalAccuracy, type BackendName, type Optimizer,
} from '../src/index.js';

const fixtureDir = join(import.meta.dirname, '../../../test/fixtures/fashion-mnist');
const data = await loadDataset('fashion-mnist', { dir: fixtureDir });
const small = { ...data.train, count: 256, images: data.train.images.subarray(0, 256 * 784) };
const smallLabels = data.train.labels.subarray(0, 256);

function tinyModel(seed = 1) {
  const model = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 8, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })], { seed });
  model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

afterEach(() => vi.restoreAllMocks());

describe('fit({ verbose })', () => {
  it('verbose 1 off a terminal prints the CLI\'s line per epoch; verbose 0 (the default) prints nothing', async () => {
    setBackend('ts');
    const written: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const model = tinyModel();
    const history = await model.fit(small, smallLabels, { epochs: 2, batchSize: 32, validationSplit: 0.25, verbose: 1 });
    await model.fit(small, smallLabels, { epochs: 1, batchSize: 32 });
    vi.restoreAllMocks();
    const lines = written.join('').split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    lines.forEach((line, epoch) => {
      expect(line).toMatch(/^Epoch \d\/2 - \d+s \d+(us|ms|s)\/step - loss: \d\.\d{4} - accuracy: \d\.\d{4} - val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}$/);
      expect(line).toContain(`Epoch ${epoch + 1}/2 `);
      expect(line).toContain(`loss: ${history.loss[epoch].toFixed(4)} `);
      expect(line).toContain(`val_accuracy: ${history.val_accuracy[epoch].toFixed(4)}`);
    });
    model.dispose();
  });
});

describe('TerminateOnNaN', () => {
  it('counts from 1, knows the run\'s size, and keeps the weights of the last epoch that ended finite', async () => {
    setBackend('ts');
    const model = tinyModel();
    const x = Tensor.zeros([64, 28, 28]);
    x.data.set(Float32Array.from(small.images.subarray(0, 64 * 784), (v) => v / 255));
    const endOfEpoch: Float32Array[][] = [];
    const messages: string[] = [];
    const terminate = new TerminateOnNaN({ log: (m) => messages.push(m) });
    const history = await model.fit(x, smallLabels.subarray(0, 64), {
      epochs: 3, batchSize: 32, shuffle: false,
      callbacks: [
        terminate,
        { onEpochBegin: (epoch) => void (epoch === 1 && (x.data[40 * 784] = NaN)) }, // the second batch of epoch 2 turns NaN
        { onEpochEnd: () => void endOfEpoch.push(model.getWeights().map((w) => w.values)) },
      ],
    });
    expect(messages).toEqual(['Epoch 2/3, batch 2/2: invalid loss NaN, terminating training']);
    expect(terminate.terminatedAt).toMatchObject({ epoch: 1, batch: 1 });
    expect(history.loss).toHaveLength(1);
    expect(terminate.lastFinite?.epoch).toBe(0);
    expect(terminate.lastFinite!.weights.map((w) => Array.from(w))).toEqual(endOfEpoch[0].map((w) => Array.from(w)));
    x.dispose();
    model.dispose();
  });
});

/** Three steps on loss = Σw²/2 (gradient w) from w = [1, -2, 0.5]: the weights after each. */
function quadraticSteps(optimizer: Optimizer, steps = 3): number[][] {
  const w = Tensor.from([1, -2, 0.5], undefined, true);
  const after: number[][] = [];
  for (let i = 0; i < steps; i++) {
    w.grad = Tensor.from(Array.from(w.data));
    optimizer.step([{ name: 'w', tensor: w }]);
    after.push(Array.from(w.data));
  }
  return after;
}

function expectClose(actual: number[][], expected: number[][], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) => row.forEach((value, j) => expect(value, `step ${i + 1}, weight ${j}`).toBeCloseTo(expected[i][j], digits)));
}

describe.each(['ts', 'wasm'] as BackendName[])('optimizers against Keras\'s formulas (%s backend)', (backend) => {
  // Expected values: Keras's update rules evaluated in float64 by hand (see the comments in the optimizers).
  it('RMSprop: plain, with momentum, centered, centered with momentum', () => {
    setBackend(backend);
    expectClose(quadraticSteps(new RMSprop({ learningRate: 0.01 })), [
      [0.9683772392096927, -1.9683772273511626, 0.46837728664367967],
      [0.9457880465069629, -1.9456096421256432, 0.4461585473450963],
      [0.9270531230585962, -1.9266336882319675, 0.42792897292412857],
    ]);
    expectClose(quadraticSteps(new RMSprop({ learningRate: 0.01, momentum: 0.9 })), [
      [0.9683772392096927, -1.9683772273511626, 0.46837728664367967],
      [0.9173275617956863, -1.9171491467416895, 0.417698105324408],
      [0.8530196558663297, -1.8522469571986073, 0.3546587176111304],
    ]);
    expectClose(quadraticSteps(new RMSprop({ learningRate: 0.01, centered: true })), [
      [0.9666666851851697, -1.9666666712962952, 0.4666667407404938],
      [0.9415901692607475, -1.9413801591797848, 0.4420284681334853],
      [0.9197005330174725, -1.9191804081369852, 0.4207946161162366],
    ]);
    expectClose(quadraticSteps(new RMSprop({ learningRate: 0.01, centered: true, momentum: 0.5 })), [
      [0.9666666851851697, -1.9666666712962952, 0.4666667407404938],
      [0.9249235118533323, -1.9247134948279325, 0.4253618385037322],
      [0.8824184144101326, -1.8816602431815275, 0.38402986673535955],
    ]);
  });

  it('SGD with Nesterov momentum', () => {
    setBackend(backend);
    expectClose(quadraticSteps(new Sgd({ learningRate: 0.1, momentum: 0.9, nesterov: true })), [
      [0.81, -1.62, 0.405],
      [0.5751, -1.1502, 0.28755],
      [0.327321, -0.654642, 0.1636605],
    ]);
  });

  it('dispose() gives every slot buffer back to the backend', () => {
    setBackend(backend);
    const before = kernels().memoryBytes();
    const w = Tensor.from([1, -2, 0.5], undefined, true);
    w.grad = Tensor.from([1, -2, 0.5]);
    const withWeights = kernels().memoryBytes();
    for (const optimizer of [new Adam(), new Sgd({ momentum: 0.9 }), new RMSprop({ momentum: 0.9, centered: true })]) {
      optimizer.step([{ name: 'w', tensor: w }]);
      expect(kernels().memoryBytes(), optimizer.name).toBeGreaterThan(withWeights);
      optimizer.dispose!();
      expect(kernels().memoryBytes(), optimizer.name).toBe(withWeights);
    }
    w.grad.dispose();
    w.dispose();
    expect(kernels().memoryBytes()).toBe(before);
  });

  it('a learning-rate schedule drives the step size by the step count', () => {
    setBackend(backend);
    // Decay by 0.5 every step (staircase): plain SGD steps of lr 0.1, 0.05, 0.025 on gradient w.
    const schedule = new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 1, decayRate: 0.5, staircase: true });
    expectClose(quadraticSteps(new Sgd({ learningRate: schedule })), [
      [0.9, -1.8, 0.45],
      [0.855, -1.71, 0.4275],
      [0.833625, -1.66725, 0.4168125],
    ]);
  });
});

describe('RMSprop against TensorFlow.js', () => {
  it('matches tf.train.rmsprop step for step (uncentered, with and without momentum)', async () => {
    const tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    for (const momentum of [0, 0.9]) {
      const variable = tf.variable(tf.tensor1d([1, -2, 0.5]));
      const theirs = tf.train.rmsprop(0.01, 0.9, momentum, 1e-7);
      const oracle: number[][] = [];
      for (let i = 0; i < 5; i++) {
        theirs.minimize(() => tf.sum(tf.square(variable)).div(2) as import('@tensorflow/tfjs').Scalar, false, [variable]);
        oracle.push(Array.from(variable.dataSync()));
      }
      for (const backend of ['ts', 'wasm'] as BackendName[]) {
        setBackend(backend);
        expectClose(quadraticSteps(new RMSprop({ learningRate: 0.01, momentum }), 5), oracle, 6);
      }
      variable.dispose();
    }
  });
});

describe('ExponentialDecay', () => {
  it('gives Keras\'s values (its docs\' example: 0.1, every 100000 steps by 0.96)', () => {
    const smooth = new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 100000, decayRate: 0.96 });
    const stairs = new ExponentialDecay({ initialLearningRate: 0.1, decaySteps: 100000, decayRate: 0.96, staircase: true });
    expect(smooth.at(0)).toBe(0.1);
    expect(smooth.at(50000)).toBeCloseTo(0.09797958971132713, 15);
    expect(smooth.at(150000)).toBeCloseTo(0.09406040612287403, 15);
    expect(stairs.at(150000)).toBeCloseTo(0.096, 15);
    expect(stairs.at(99999)).toBe(0.1);
  });

  it('is saved under Keras\'s names and restored from them, with the optimizer', () => {
    const optimizer = new Adam({ learningRate: new ExponentialDecay({ initialLearningRate: 0.01, decaySteps: 10, decayRate: 0.9 }) });
    expect(optimizer.config()).toEqual({
      learning_rate: { class_name: 'ExponentialDecay', config: { initial_learning_rate: 0.01, decay_steps: 10, decay_rate: 0.9, staircase: false, name: 'ExponentialDecay' } },
      beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7,
    });
    const restored = optimizerFromConfig({ name: 'adam', config: optimizer.config() });
    expect(restored.schedule?.at(25)).toBe(optimizer.schedule?.at(25));
    expect(() => (restored.learningRate = 0.5)).toThrow(/follows a schedule/);
    expect(new RMSprop().config()).toEqual({ learning_rate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7, centered: false });
    const rms = optimizerFromConfig({ name: 'rmsprop', config: { learning_rate: 0.002, rho: 0.8, momentum: 0.5, epsilon: 1e-6, centered: true } }) as RMSprop;
    expect([rms.learningRate, rms.rho, rms.momentum, rms.epsilon, rms.centered]).toEqual([0.002, 0.8, 0.5, 1e-6, true]);
  });
});

describe('ReduceLROnPlateau', () => {
  it('lowers the rate after `patience` epochs without an improvement above min_delta, then cools down', async () => {
    setBackend('ts');
    const model = tinyModel();
    // Monitored values per epoch, and Keras's learning rate after each (factor 0.5, patience 2, cooldown 1, min_lr 0.0003).
    // Epoch 1 sets the best (1.0); 2: 0.99995 is not 1e-4 better, wait 1; 3: 0.9 better; 4-5: wait 1, 2 -> halve to 5e-4,
    // cooldown 1; 6: cooldown ends, wait 1; 7: wait 2 -> 2.5e-4, raised to min_lr 3e-4; 8-10: at min_lr, no more reductions.
    const values = [1.0, 0.99995, 0.9, 0.95, 0.95, 0.95, 0.96, 0.97, 0.98, 0.99];
    const expected = [1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 3e-4, 3e-4, 3e-4, 3e-4];
    const messages: string[] = [];
    const reduce = new ReduceLROnPlateau({ monitor: 'fake', factor: 0.5, patience: 2, cooldown: 1, minLr: 3e-4, log: (m) => messages.push(m) });
    const seen: number[] = [];
    await model.fit(small, smallLabels, {
      epochs: values.length, batchSize: 256,
      callbacks: [
        { onEpochEnd: (epoch, logs) => void (logs.fake = values[epoch]) },
        reduce,
        { onEpochEnd: () => void seen.push(model.optimizer!.learningRate) },
      ],
    });
    expect(seen).toEqual(expected);
    expect(messages).toEqual(['Epoch 5: ReduceLROnPlateau reducing learning rate to 0.0005.', 'Epoch 7: ReduceLROnPlateau reducing learning rate to 0.0003.']);
    model.dispose();
  });
});

describe('sparse top-k categorical accuracy', () => {
  it('counts labels among the k largest outputs, ties with the k-th included (Keras\'s in_top_k)', () => {
    // Keras's docs: labels [2, 1], outputs [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]: 0.5 with k = 1, 1.0 with k = 2.
    const scores = [0.1, 0.9, 0.8, 0.05, 0.95, 0];
    expect(countInTopK(scores, [2, 1], 2, 3, 1)).toBe(1);
    expect(countInTopK(scores, [2, 1], 2, 3, 2)).toBe(2);
    expect(countInTopK([0.4, 0.4, 0.2], [1], 1, 3, 1)).toBe(1); // tied for first: in
    expect(countInTopK([0.5, 0.3, 0.2], [2], 1, 3, 2)).toBe(0);
    expect(countInTopK([NaN, 0.3, 0.2], [0], 1, 3, 3)).toBe(0);
  });

  it('is logged by fit and evaluate under Keras\'s name, with val_ for validation, and equals a count over predict', async () => {
    setBackend('wasm');
    const model = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 8, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })], { seed: 1 });
    model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy', sparseTopKCategoricalAccuracy({ k: 3 })] });
    const history = await model.fit(small, smallLabels, { epochs: 2, validationSplit: 0.25 });
    expect(Object.keys(history.history)).toEqual(['loss', 'accuracy', 'sparse_top_k_categorical_accuracy', 'val_loss', 'val_accuracy', 'val_sparse_top_k_categorical_accuracy']);
    for (const [i, top3] of history.history.sparse_top_k_categorical_accuracy.entries()) expect(top3).toBeGreaterThanOrEqual(history.accuracy[i]);
    const result = model.evaluate(data.test, data.test.labels);
    const probabilities = model.predict(data.test);
    expect(result.sparse_top_k_categorical_accuracy).toBe(countInTopK(probabilities.data, data.test.labels, data.test.count, 10, 3) / data.test.count);
    probabilities.dispose();
    model.dispose();
  });
});

describe('predict on a tensor', () => {
  /**
   * The fixture's first `count` images as floats, scaled as the backend scales bytes: the WASM
   * kernel multiplies by float32(1/255), the reference one by 1/255 in float64.
   */
  function pixels(count: number, backend: BackendName = 'wasm'): Float32Array {
    const scale = backend === 'wasm' ? Math.fround(1 / 255) : 1 / 255;
    return Float32Array.from(small.images.subarray(0, count * 784), (byte) => byte * scale);
  }

  function bitsOf(t: Tensor): Buffer {
    return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }

  it.each<BackendName>(['ts', 'wasm'])('%s: the whole input as one batch is read where it is: no batch buffer, the input untouched, the same floats as batches copied from it or from bytes', (backend) => {
    setBackend(backend);
    const model = tinyModel(3);
    const count = 100;
    const x = Tensor.from(pixels(count, backend), [count, 28, 28]);
    const before = Float32Array.from(x.data);
    expect(kernels().holds(x.storage)).toBe(true);

    const held = kernels().memoryBytes();
    const whole = model.predict(x, { batchSize: count });
    // The output stays; a copied batch would also have kept count × 784 floats of input buffer.
    expect(kernels().memoryBytes() - held).toBeLessThan(count * 784 * 4);
    const batched = model.predict(x, { batchSize: 32 });
    expect(kernels().memoryBytes() - held).toBeGreaterThan(32 * 784 * 4);
    const fromBytes = model.predict({ ...small, count, images: small.images.subarray(0, count * 784) }, { batchSize: count });

    expect(bitsOf(whole).equals(bitsOf(batched))).toBe(true);
    expect(bitsOf(whole).equals(bitsOf(fromBytes))).toBe(true);
    expect(x.data).toEqual(before);
    for (const t of [whole, batched, fromBytes, x]) t.dispose();
    model.dispose();
  });

  it('a tensor made under another backend is copied, not read where it is', () => {
    setBackend('ts');
    const foreign = Tensor.from(pixels(40), [40, 28, 28]);
    setBackend('wasm');
    expect(kernels().holds(foreign.storage)).toBe(false);
    const own = Tensor.from(pixels(40), [40, 28, 28]);
    const model = tinyModel(4);
    const a = model.predict(foreign, { batchSize: 40 });
    const b = model.predict(own, { batchSize: 40 });
    expect(bitsOf(a).equals(bitsOf(b))).toBe(true);
    for (const t of [a, b, own]) t.dispose();
    model.dispose();
  });

  it('holds() knows its own live buffers only', () => {
    for (const backend of ['ts', 'wasm'] as const) {
      const k = setBackend(backend);
      const storage = k.alloc(8);
      expect(k.holds(storage), backend).toBe(true);
      k.free(storage);
      if (backend === 'wasm') expect(k.holds(storage), 'freed').toBe(false);
    }
    const wasmStorage = setBackend('wasm').alloc(4);
    expect(setBackend('ts').holds(wasmStorage)).toBe(false);
    const tsStorage = kernels().alloc(4);
    expect(setBackend('wasm').holds(tsStorage)).toBe(false);
  });

  it('any batch size gives the floats of one whole batch (seeded property)', () => {
    setBackend('wasm');
    const model = tinyModel(5);
    const all = pixels(64);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 80 }), (count, batchSize) => {
        const x = Tensor.from(all.subarray(0, count * 784), [count, 28, 28]);
        const whole = model.predict(x, { batchSize: count });
        const batched = model.predict(x, { batchSize });
        const same = bitsOf(whole).equals(bitsOf(batched));
        for (const t of [whole, batched, x]) t.dispose();
        return same;
      }),
      { seed: 20261204, numRuns: 40 },
    );
    model.dispose();
  });
});
