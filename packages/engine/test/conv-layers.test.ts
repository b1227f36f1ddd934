/**
 * Convolution, max pooling and the layers built on them: values worked out by hand, Keras's
 * padding rules, initializers, the layers' saved configs, and CNN training on the fixture.
 * Gradients are checked by finite differences in gradients.test.ts, the kernels against the
 * reference in kernels-parity.test.ts, and against TensorFlow.js in test/cnn-interop.test.ts.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CNN_LAYERS, Conv2D, Dense, MaxPooling2D, Random, Reshape, Tensor, adam, conv2d, conv2dOp, defineModel, dense, flatten, initialKernel,
  kernels, loadDataset, maxPool2d, maxPooling2d, modelFromArtifacts, modelToArtifacts, parseLayers, reshapeLayer, sequential, setBackend,
  windowAxis, type BackendName, type Kernels, type Sequential, type VarianceScaling,
} from '../src/index.js';
import type { WasmKernels } from '../src/backend/wasm.js';

const fixtureDir = join(import.meta.dirname, '../../../test/fixtures/fashion-mnist');
const data = await loadDataset('fashion-mnist', { dir: fixtureDir });

let previous: Kernels;
beforeAll(() => {
  previous = setBackend('ts');
});
afterAll(() => {
  setBackend(previous);
});

describe.each(['ts', 'wasm'] as BackendName[])('conv2d and maxPool2d by hand (%s backend)', (backend) => {
  beforeAll(() => {
    setBackend(backend);
  });

  it('a 2×2 kernel over a 3×3 image, valid: each output is the weighted sum of one 2×2 block, plus the bias', () => {
    // x: 1 2 3 / 4 5 6 / 7 8 9 (one channel); kernel [[1, 0], [0, -1]] (top-left minus bottom-right).
    const x = Tensor.from([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const w = Tensor.from([1, 0, 0, -1], [2, 2, 1, 1]);
    const y = conv2dOp(x, w, Tensor.from([10]));
    expect(y.shape).toEqual([1, 2, 2, 1]);
    expect(y.toArray()).toEqual([1 - 5 + 10, 2 - 6 + 10, 4 - 8 + 10, 5 - 9 + 10]);
  });

  it('same padding with stride 2: 5×5 → 3×3, the padding (one row and column on each side) reads as zero', () => {
    const x = Tensor.from(Array.from({ length: 25 }, (_, i) => i + 1), [1, 5, 5, 1]);
    const ones = Tensor.from(new Array(9).fill(1), [3, 3, 1, 1]);
    const y = conv2dOp(x, ones, Tensor.from([0]), { strides: 2, padding: 'same' });
    expect(y.shape).toEqual([1, 3, 3, 1]);
    // Output (0, 0) sums rows 0–1 and columns 0–1 (its window starts at -1): 1 + 2 + 6 + 7.
    expect(y.toArray()).toEqual([16, 33, 28, 69, 117, 87, 76, 123, 88]);
  });

  it('channels in and filters out, NHWC, and the fused ReLU', () => {
    // One pixel with channels [1, 2]; a 1×1 kernel with filters [c0 + c1, c0 − c1, −c1].
    const x = Tensor.from([1, 2], [1, 1, 1, 2]);
    const w = Tensor.from([1, 1, 0, 1, -1, -1], [1, 1, 2, 3]);
    expect(conv2dOp(x, w, Tensor.from([0, 0, 0])).toArray()).toEqual([3, -1, -2]);
    expect(conv2dOp(x, w, Tensor.from([0, 0, 0]), { activation: 'relu' }).toArray()).toEqual([3, 0, 0]);
  });

  it('max pooling: the largest of each window; ties send the gradient to the first one, row by row', () => {
    // 4×4, one channel: windows hold a tie (top-left), a unique max, and equal values.
    const x = Tensor.from([
      5, 1, 2, 9,
      5, 5, 3, 4,
      0, 0, 7, 7,
      0, 0, 7, 7,
    ], [1, 4, 4, 1], true);
    const y = maxPool2d(x, { poolSize: 2 });
    expect(y.toArray()).toEqual([5, 9, 0, 7]);
    const r = Tensor.from([1, 2, 3, 4], [1, 2, 2, 1]);
    const dy = Tensor.zeros([1, 2, 2, 1]);
    dy.data.set(r.data);
    y.creator!.backward(dy);
    expect(x.grad!.toArray()).toEqual([
      1, 0, 0, 2,
      0, 0, 0, 0,
      3, 0, 4, 0,
      0, 0, 0, 0,
    ]);
  });

  it('overlapping windows (3×3, stride 2) add their gradients where they share the maximum', () => {
    const values = new Array(25).fill(0);
    values[12] = 1; // the centre pixel is in all four windows
    const x = Tensor.from(values, [1, 5, 5, 1], true);
    const y = maxPool2d(x, { poolSize: 3, strides: 2 });
    expect(y.toArray()).toEqual([1, 1, 1, 1]);
    const dy = Tensor.from([1, 2, 3, 4], [1, 2, 2, 1]);
    y.creator!.backward(dy);
    expect(x.grad!.data[12]).toBe(10);
    expect(x.grad!.toArray().reduce((a, b) => a + b, 0)).toBe(10);
  });
});

describe('Keras padding rules', () => {
  it('valid keeps windows inside; same gives ⌈in/stride⌉ with the smaller half of the padding first', () => {
    expect(windowAxis(28, 3, 1, 'valid')).toEqual({ out: 26, padBefore: 0 });
    expect(windowAxis(13, 2, 2, 'valid')).toEqual({ out: 6, padBefore: 0 });
    expect(windowAxis(11, 2, 2, 'valid')).toEqual({ out: 5, padBefore: 0 });
    expect(windowAxis(28, 3, 1, 'same')).toEqual({ out: 28, padBefore: 1 });
    expect(windowAxis(28, 5, 2, 'same')).toEqual({ out: 14, padBefore: 1 }); // total 3: 1 before, 2 after
    expect(windowAxis(5, 2, 1, 'same')).toEqual({ out: 5, padBefore: 0 }); // total 1: all after
    expect(windowAxis(7, 3, 3, 'same')).toEqual({ out: 3, padBefore: 1 });
    expect(windowAxis(2, 3, 1, 'valid').out).toBe(0);
  });
});

describe('initializers', () => {
  const cases: Array<[string, VarianceScaling, number]> = [
    ['Glorot uniform', { scale: 1, mode: 'fan_avg', distribution: 'uniform' }, 2 / (288 + 576)],
    ['Glorot normal (truncated)', { scale: 1, mode: 'fan_avg', distribution: 'truncated_normal' }, 2 / (288 + 576)],
    ['He normal', { scale: 2, mode: 'fan_in', distribution: 'truncated_normal' }, 2 / 288],
    ['untruncated normal, fan out', { scale: 1, mode: 'fan_out', distribution: 'untruncated_normal' }, 1 / 576],
  ];
  it.each(cases)('%s draws values with variance scale / n, seeded', (_name, init, variance) => {
    setBackend('ts');
    const kernel = initialKernel(init, 288, 576, new Random(5), [3, 3, 32, 64]);
    const values = kernel.toArray();
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const sampleVariance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
    expect(Math.abs(mean)).toBeLessThan(0.01 * Math.sqrt(variance) * 10);
    expect(sampleVariance / variance).toBeGreaterThan(0.97);
    expect(sampleVariance / variance).toBeLessThan(1.03);
    const bound = init.distribution === 'uniform' ? Math.sqrt(3 * variance) : init.distribution === 'truncated_normal' ? 2 * Math.sqrt(variance) / 0.87962566103423978 : Infinity;
    expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(initialKernel(init, 288, 576, new Random(5), [3, 3, 32, 64]).toArray()).toEqual(values);
  });
});

describe('the layers', () => {
  beforeAll(() => {
    setBackend('ts');
  });

  it('save their configs in the tfjs Layers format and load back with the same predictions', () => {
    const model = sequential([
      reshapeLayer({ targetShape: [28, 28, 1], inputShape: [28, 28] }),
      conv2d({ filters: 3, kernelSize: [3, 2], strides: [2, 1], padding: 'same', activation: 'relu' }),
      maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
      conv2d({ filters: 2, kernelSize: 1, kernelInitializer: { scale: 2, mode: 'fan_in', distribution: 'truncated_normal' } }),
      flatten(),
      dense({ units: 10, activation: 'softmax' }),
    ], { seed: 3 });
    const artifacts = modelToArtifacts(model);
    const [reshape, conv, pool, conv1x1] = artifacts.modelTopology.config.layers;
    expect(reshape).toMatchObject({ class_name: 'Reshape', config: { name: 'reshape', target_shape: [28, 28, 1], batch_input_shape: [null, 28, 28] } });
    expect(conv).toMatchObject({ class_name: 'Conv2D', config: { name: 'conv2d', filters: 3, kernel_size: [3, 2], strides: [2, 1], padding: 'same', activation: 'relu', data_format: 'channels_last', dilation_rate: [1, 1], use_bias: true } });
    expect(pool).toMatchObject({ class_name: 'MaxPooling2D', config: { name: 'max_pooling2d', pool_size: [3, 3], strides: [2, 2], padding: 'same' } });
    expect(conv1x1.config.kernel_initializer).toEqual({ class_name: 'HeNormal', config: { seed: null } });
    expect(artifacts.weightSpecs.map((s) => `${s.name} ${s.shape.join('x')}`)).toEqual([
      'conv2d/kernel 3x2x1x3', 'conv2d/bias 3', 'conv2d_1/kernel 1x1x3x2', 'conv2d_1/bias 2', 'dense/kernel 196x10', 'dense/bias 10',
    ]);
    const loaded = modelFromArtifacts(artifacts);
    expect(loaded.layers.map((l) => l.describe())).toEqual(model.layers.map((l) => l.describe()));
    const images = { images: data.test.images.subarray(0, 8 * 784), count: 8, rows: 28, cols: 28 };
    expect(loaded.predict(images).toArray()).toEqual(model.predict(images).toArray());
  });

  it('check their options and shapes, naming the layer', () => {
    expect(() => new Conv2D({ filters: 0, kernelSize: 3 })).toThrow(/conv2d: filters must be a positive integer, got 0/);
    expect(() => new Conv2D({ filters: 2, kernelSize: [3, 0] })).toThrow(/kernel size must be a positive integer or two of them/);
    expect(() => new Conv2D({ filters: 2, kernelSize: 3, padding: 'causal' as 'same' })).toThrow(/padding must be 'valid' or 'same'/);
    expect(() => new MaxPooling2D({ poolSize: 2.5 })).toThrow(/pool size must be a positive integer/);
    expect(() => new Reshape({ targetShape: [-1, -1] })).toThrow(/at most one of them -1/);
    expect(new Reshape({ targetShape: [-1, 28, 1] }).outputShape([28, 28])).toEqual([28, 28, 1]);
    expect(() => sequential([conv2d({ filters: 2, kernelSize: 3, inputShape: [28, 28] })])).toThrow(/conv2d 'conv2d' needs images of \[height, width, channels\] per sample, got \[28, 28\]; add a reshape layer first/);
    expect(() => sequential([maxPooling2d({ poolSize: 5, inputShape: [4, 4, 1] })])).toThrow(/a 5×5 window does not fit in a 4×4 input/);
    expect(() => sequential([conv2d({ filters: 2, kernelSize: 3, inputShape: [8, 8, 1] }), dense({ units: 3 })])).toThrow(/dense 'dense' needs flat inputs, got per-sample shape \[6, 6, 2\]; add a flatten layer first/);
  });
});

/** A small CNN for the fixture: fast on both backends. */
function smallCnn(seed: number): Sequential {
  const model = defineModel(parseLayers('conv2d:6:3:relu,maxpool:2,conv2d:8:3:relu:same,maxpool:3:stride=2,flatten,dense:16:relu'), { inputShape: [28, 28], classes: 10, seed });
  model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

function weightBytes(model: Sequential): Buffer {
  return Buffer.concat(model.getWeights().map((w) => Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength)));
}

describe('training CNNs on the fixture', () => {
  it('the tutorial CNN (wasm) reaches 75% test accuracy in 2 epochs', async () => {
    setBackend('wasm');
    const model = defineModel(parseLayers(CNN_LAYERS), { inputShape: [28, 28], classes: 10, seed: 4 });
    model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    const history = await model.fit(data.train, data.train.labels, { epochs: 2, batchSize: 32, seed: 4 });
    expect(model.evaluate(data.test, data.test.labels).accuracy).toBeGreaterThanOrEqual(0.75);
    expect(history.loss[1]).toBeLessThan(history.loss[0]);
    model.dispose();
  });

  it.each(['ts', 'wasm'] as BackendName[])('the same seed gives the same weights, bit for bit (%s)', async (backend) => {
    setBackend(backend);
    const count = 160;
    const images = { ...data.train, count, images: data.train.images.subarray(0, count * 784) };
    const runs = [];
    for (let run = 0; run < 2; run++) {
      const model = smallCnn(8);
      const history = await model.fit(images, data.train.labels.subarray(0, count), { epochs: 1, batchSize: 16, seed: 8 });
      runs.push({ weights: weightBytes(model), loss: history.loss });
      model.dispose();
    }
    expect(runs[1].loss).toEqual(runs[0].loss);
    expect(runs[1].weights.equals(runs[0].weights)).toBe(true);
  });

  it('ts and wasm take the same steps: losses agree to float32 rounding over 30 steps', async () => {
    const count = 30 * 16;
    const images = { ...data.train, count, images: data.train.images.subarray(0, count * 784) };
    const labels = data.train.labels.subarray(0, count);
    const losses: Record<string, number[]> = {};
    for (const backend of ['ts', 'wasm'] as BackendName[]) {
      setBackend(backend);
      const model = smallCnn(6);
      losses[backend] = [];
      const recorder = { onBatchEnd: (_batch: number, logs: { loss: number }) => losses[backend].push(logs.loss) };
      await model.fit(images, labels, { epochs: 1, batchSize: 16, shuffle: false, callbacks: [recorder] });
      model.dispose();
    }
    expect(losses.wasm).toHaveLength(30);
    for (let i = 0; i < 30; i++) expect(Math.abs(losses.wasm[i] - losses.ts[i]) / losses.ts[i], `step ${i + 1}`).toBeLessThan(1e-4);
  });

  it.each(['ts', 'wasm'] as BackendName[])('outputs and fresh gradients left unzeroed are written in full: NaN in every such buffer changes no bit (%s)', async (backend) => {
    // Ops take their outputs and first gradients as Tensor.empty when the kernel writes every
    // element (pixels no window reads get a 0 gradient). Here every such buffer starts as NaN.
    const clean = setBackend(backend);
    const poisoned = new Proxy(clean, {
      get(target, property) {
        if (property === 'alloc') {
          return (length: number, zeroed = true) => {
            const storage = target.alloc(length, zeroed);
            if (!zeroed) storage.data.fill(NaN);
            return storage;
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const count = 48;
    const images = { ...data.train, count, images: data.train.images.subarray(0, count * 784) };
    const labels = data.train.labels.subarray(0, count);
    // Winograd (3×3 over 6 channels), im2col (stride 2, same), pooling that leaves a row and a
    // column out (13 → 6) and overlapping same-padded pooling.
    const spec = 'conv2d:6:3:relu:stride=2:same,conv2d:8:3:relu,conv2d:8:2:relu,maxpool:2,maxpool:3:stride=2:same,flatten,dense:12:relu,dropout:0.25';
    const runs = [];
    for (const kernelsInUse of [clean, poisoned]) {
      setBackend(kernelsInUse as Kernels);
      const model = defineModel(parseLayers(spec), { inputShape: [28, 28], classes: 10, seed: 5 });
      model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy' });
      const history = await model.fit(images, labels, { epochs: 2, batchSize: 16, seed: 5 });
      runs.push({ loss: history.loss, weights: weightBytes(model) });
      model.dispose();
    }
    expect(runs[0].loss.every(Number.isFinite)).toBe(true);
    expect(runs[1].loss).toEqual(runs[0].loss);
    expect(runs[1].weights.equals(runs[0].weights)).toBe(true);
  });

  it('a steady-state step takes no new memory on either backend (the patch matrix is reused)', async () => {
    for (const backend of ['ts', 'wasm'] as BackendName[]) {
      setBackend(backend);
      const model = smallCnn(2);
      const small = { ...data.train, count: 96, images: data.train.images.subarray(0, 96 * 784) };
      const labels = data.train.labels.subarray(0, 96);
      await model.fit(small, labels, { epochs: 1 });
      const live = kernels().memoryBytes();
      const reserved = backend === 'wasm' ? (kernels() as WasmKernels).reservedBytes() : 0;
      await model.fit(small, labels, { epochs: 2 });
      expect(kernels().memoryBytes(), backend).toBe(live);
      if (backend === 'wasm') expect((kernels() as WasmKernels).reservedBytes()).toBe(reserved);
      model.dispose();
    }
  });

  it('Dense layers see flat inputs only: the CNN keeps its 4-D tensors until Flatten', () => {
    setBackend('ts');
    const model = smallCnn(1);
    const outputs: Tensor[] = [];
    model.call(Tensor.zeros([2, 28, 28]), false, outputs);
    expect(outputs.map((t) => t.shape.join('x'))).toEqual(['2x28x28x1', '2x26x26x6', '2x13x13x6', '2x13x13x8', '2x6x6x8', '2x288', '2x16', '2x10']);
    expect(model.layers.filter((l) => l instanceof Dense)).toHaveLength(2);
  });
});
