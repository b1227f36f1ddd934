// Convolutional models work both ways with TensorFlow.js, and the convolution and pooling ops
// compute what TensorFlow.js computes, gradients included:
//   - a CNN descent trained and saved loads with tf.loadLayersModel and predicts the same (1e-5);
//   - a CNN tfjs trained and saved imports into descent and predicts the same;
//   - conv2d (strides, both paddings, oblong kernels) and maxPool2d (ties, overlapping windows)
//     give tfjs's outputs and gradients on both descent backends.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Random, Tensor, conv2dOp, loadDataset, matmul, maxPool2d, mean, modelFromArtifacts, reshape, setBackend,
  type BackendName, type ModelArtifacts, type Padding,
} from '../packages/engine/src/index.js';
import { FIXTURE, jsonLines, runCli, temporaryFolder } from './cli-helpers.js';

const tmp = temporaryFolder('descent-cnn-interop-');
afterAll(tmp.remove);
const fixture = await loadDataset('fashion-mnist', { dir: FIXTURE });
const COUNT = 40;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function testImages(shape: number[] = [COUNT, 28, 28]): tf.Tensor {
  return tf.tensor(Float32Array.from(fixture.test.images.subarray(0, COUNT * 784), (v) => v / 255), shape);
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Largest |a − b| / max(1, |b|): float32 sums of many terms differ in their last bits. */
function maxScaledDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return max;
}

describe('a descent CNN in TensorFlow.js', () => {
  it('trained with --layers (Winograd\'s 3×3 layer, strides, same padding, overlapping pooling), it loads in tfjs and predicts the same', async () => {
    const dir = join(tmp.dir, 'descent-cnn');
    // The second layer is 3×3, stride 1, over 8 channels: the WASM backend runs it with Winograd's
    // F(2×2, 3×3), as the tutorial CNN's second layer; the first (one channel) and the third run im2col.
    const layers = 'conv2d:8:3:relu,maxpool:2,conv2d:8:3:relu,conv2d:12:3x2:relu:same:stride=2,maxpool:3:stride=2:same,flatten,dense:16:relu,dropout:0.2';
    const run = await runCli(['train', '--data', FIXTURE, '--epochs', '1', '--layers', layers, '--out', dir, '--json']);
    expect(run.code, run.stderr).toBe(0);

    const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    const weights = readFileSync(join(dir, 'weights.bin'));
    const model = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }));
    expect(model.layers.map((l) => l.getClassName())).toEqual(['Reshape', 'Conv2D', 'MaxPooling2D', 'Conv2D', 'Conv2D', 'MaxPooling2D', 'Flatten', 'Dense', 'Dropout', 'Dense']);
    expect(model.countParams()).toBe(modelJson.weightsManifest[0].weights.reduce((n: number, w: { shape: number[] }) => n + w.shape.reduce((a, b) => a * b, 1), 0));
    const fromTfjs = (model.predict(testImages()) as tf.Tensor).dataSync();

    const indices = Array.from({ length: COUNT }, (_, i) => String(i));
    for (const backend of ['wasm', 'ts']) {
      const predicted = await runCli(['predict', dir, '--data', FIXTURE, '--backend', backend, '--json', '--index', ...indices]);
      expect(predicted.code, predicted.stderr).toBe(0);
      const fromDescent = jsonLines(predicted.stdout).flatMap((p) => p.probabilities as number[]);
      expect(maxDifference(fromDescent, fromTfjs), backend).toBeLessThan(1e-5);
    }
  });
});

describe('a TensorFlow.js CNN in descent', () => {
  it('imports from its saved artifacts and predicts the same on both backends', async () => {
    const model = tf.sequential();
    model.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5, strides: 2, padding: 'same', activation: 'relu' }));
    model.add(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }));
    model.add(tf.layers.conv2d({ filters: 10, kernelSize: [2, 3], activation: 'linear' }));
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'sparseCategoricalCrossentropy' });
    const x = tf.tensor(Float32Array.from(fixture.train.images.subarray(0, 128 * 784), (v) => v / 255), [128, 28, 28, 1]);
    await model.fit(x, tf.tensor1d(Array.from(fixture.train.labels.subarray(0, 128)), 'float32'), { epochs: 1, batchSize: 32, verbose: 0 });
    let artifacts!: tf.io.ModelArtifacts;
    await model.save(tf.io.withSaveHandler(async (saved) => {
      artifacts = saved;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const expected = (model.predict(testImages([COUNT, 28, 28, 1])) as tf.Tensor).dataSync();

    for (const backend of ['wasm', 'ts'] as BackendName[]) {
      setBackend(backend);
      const imported = modelFromArtifacts(artifacts as ModelArtifacts);
      expect(imported.layers.map((l) => l.className)).toEqual(['Conv2D', 'MaxPooling2D', 'Conv2D', 'MaxPooling2D', 'Flatten', 'Dense']);
      expect(imported.perSampleInputShape).toEqual([28, 28, 1]);
      // Byte images [28, 28] go in as they are; the model reads them as [28, 28, 1].
      const out = imported.predict({ images: fixture.test.images.subarray(0, COUNT * 784), count: COUNT, rows: 28, cols: 28 });
      expect(maxDifference(out.data, expected), backend).toBeLessThan(1e-5);
      out.dispose();
      imported.dispose();
    }
  });
});

describe('conv2d and maxPool2d compute what TensorFlow.js computes, gradients included', () => {
  const backends: BackendName[] = ['wasm', 'ts'];

  /** d(Σ r·y)/d(inputs) in descent, with r a fixed random weighting of the output. */
  function descentGrads(inputs: Array<{ shape: number[]; values: Float32Array }>, op: (tensors: Tensor[]) => Tensor, weights: Float32Array) {
    const tensors = inputs.map(({ shape, values }) => Tensor.from(values, shape, true));
    const y = op(tensors);
    const r = Tensor.from(weights, [y.size, 1]);
    mean(matmul(reshape(y, [1, y.size]), r)).backward();
    return { y: Float32Array.from(y.data), grads: tensors.map((t) => Float32Array.from(t.grad!.data)) };
  }

  function tfjsGrads(inputs: Array<{ shape: number[]; values: Float32Array }>, op: (tensors: tf.Tensor[]) => tf.Tensor, weights: Float32Array) {
    const tensors = inputs.map(({ shape, values }) => tf.tensor(values, shape));
    const y = op(tensors);
    const f = (...xs: tf.Tensor[]) => tf.mean(tf.matMul(tf.reshape(op(xs), [1, y.size]), tf.tensor(weights, [y.size, 1])));
    const grads = tf.grads(f)(tensors).map((g) => g.dataSync() as Float32Array);
    return { y: y.dataSync() as Float32Array, grads };
  }

  function random(shape: number[], seed: number, levels = 0): { shape: number[]; values: Float32Array } {
    const r = new Random(seed);
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    // With `levels`, few distinct values: max pooling then meets many ties.
    for (let i = 0; i < values.length; i++) values[i] = levels ? Math.floor(r.next() * levels) / levels : r.uniform(-1, 1);
    return { shape, values };
  }

  const convCases: Array<[number[], number[], number, Padding]> = [
    [[2, 9, 8, 3], [3, 3, 3, 4], 1, 'valid'],
    [[2, 9, 8, 3], [3, 3, 3, 4], 2, 'same'],
    [[1, 7, 7, 5], [2, 3, 5, 6], 2, 'valid'],
    [[1, 6, 6, 4], [4, 4, 4, 3], 1, 'same'],
    [[2, 5, 5, 2], [1, 1, 2, 3], 1, 'valid'],
  ];
  for (const backend of backends) {
    it.each(convCases)(`conv2d on ${backend}: x %j, kernel %j, stride %i, %s`, (xShape, kShape, stride, padding) => {
      setBackend(backend);
      const x = random(xShape, 1), w = random(kShape, 2), b = random([kShape[3]], 3);
      const ySize = (tf.conv2d(tf.zeros(xShape) as tf.Tensor4D, tf.zeros(kShape) as tf.Tensor4D, stride, padding)).size;
      const weights = random([ySize], 4).values;
      const ours = descentGrads([x, w, b], ([X, W, B]) => conv2dOp(X, W, B, { strides: stride, padding }), weights);
      const theirs = tfjsGrads([x, w, b], ([X, W, B]) => tf.add(tf.conv2d(X as tf.Tensor4D, W as tf.Tensor4D, stride, padding), B), weights);
      expect(maxScaledDifference(ours.y, theirs.y)).toBeLessThan(1e-6);
      ours.grads.forEach((g, i) => expect(maxScaledDifference(g, theirs.grads[i]), `gradient ${['x', 'kernel', 'bias'][i]}`).toBeLessThan(1e-6));
    });

    const poolCases: Array<[number[], number, number, Padding]> = [[[2, 8, 8, 3], 2, 2, 'valid'], [[1, 9, 9, 5], 3, 2, 'valid'], [[2, 7, 6, 4], 3, 2, 'same'], [[1, 5, 5, 2], 2, 1, 'same']];
    it.each(poolCases)(`maxPool2d on ${backend} with ties: x %j, pool %i, stride %i, %s`, (xShape, pool, stride, padding) => {
      setBackend(backend);
      const x = random(xShape, 5, 3);
      const ySize = tf.maxPool(tf.zeros(xShape) as tf.Tensor4D, pool, stride, padding).size;
      const weights = random([ySize], 6).values;
      const ours = descentGrads([x], ([X]) => maxPool2d(X, { poolSize: pool, strides: stride, padding }), weights);
      const theirs = tfjsGrads([x], ([X]) => tf.maxPool(X as tf.Tensor4D, pool, stride, padding), weights);
      expect(maxDifference(ours.y, theirs.y)).toBe(0);
      expect(maxDifference(ours.grads[0], theirs.grads[0])).toBeLessThan(1e-7);
    });
  }
});
