// Model files work both ways with TensorFlow.js: a model descent saved loads in tfjs and predicts the
// same; a Flatten/Dense/Dropout model tfjs saved imports into descent and predicts the same.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, loadModel, modelFromArtifacts, modelToArtifacts, setBackend, type ModelArtifacts } from '../packages/engine/src/index.js';
import { FIXTURE, jsonLines, runCli, temporaryFolder } from './cli-helpers.js';

const tmp = temporaryFolder('descent-interop-');
afterAll(tmp.remove);
const fixture = await loadDataset('fashion-mnist', { dir: FIXTURE });
const COUNT = 40;

beforeAll(async () => {
  await tf.setBackend('cpu');
  setBackend('ts');
});

/** The first COUNT test images as a tfjs tensor [COUNT, 28, 28] scaled to [0, 1], like descent scales them. */
function testImages(): tf.Tensor {
  return tf.tensor(Float32Array.from(fixture.test.images.subarray(0, COUNT * 784), (v) => v / 255), [COUNT, 28, 28]);
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('descent → TensorFlow.js', () => {
  it('a model trained and saved by descent loads with tf.loadLayersModel and gives the same predictions', async () => {
    const dir = join(tmp.dir, 'descent-model');
    const run = await runCli(['train', '--data', FIXTURE, '--epochs', '1', '--hidden', '24,12', '--dropout', '0.2', '--backend', 'ts', '--out', dir, '--json']);
    expect(run.code, run.stderr).toBe(0);

    // Read the two files the way any tfjs user would: model.json as JSON, weights.bin as raw bytes.
    const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    const weights = readFileSync(join(dir, 'weights.bin'));
    expect(modelJson.format).toBe('layers-model');
    expect(modelJson.weightsManifest[0].paths).toEqual(['weights.bin']);
    const model = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }));
    expect(model.layers.map((l) => l.getClassName())).toEqual(['Flatten', 'Dense', 'Dropout', 'Dense', 'Dropout', 'Dense']);
    const fromTfjs = (model.predict(testImages()) as tf.Tensor).dataSync();

    const indices = Array.from({ length: COUNT }, (_, i) => String(i));
    const predicted = await runCli(['predict', dir, '--data', FIXTURE, '--backend', 'ts', '--json', '--index', ...indices]);
    expect(predicted.code, predicted.stderr).toBe(0);
    const fromDescent = jsonLines(predicted.stdout).flatMap((p) => p.probabilities as number[]);
    expect(maxDifference(fromDescent, fromTfjs)).toBeLessThan(1e-5);

    // The in-memory route: descent's modelToArtifacts straight into tf.io.fromMemory.
    const loaded = await loadModel(dir);
    const again = await tf.loadLayersModel(tf.io.fromMemory(modelToArtifacts(loaded.model)));
    expect(maxDifference((again.predict(testImages()) as tf.Tensor).dataSync(), fromTfjs)).toBe(0);
  });
});

describe('TensorFlow.js → descent', () => {
  let artifacts: tf.io.ModelArtifacts;
  let expected: Float32Array;

  beforeAll(async () => {
    const model = tf.sequential();
    model.add(tf.layers.flatten({ inputShape: [28, 28] }));
    model.add(tf.layers.dense({ units: 20, activation: 'relu' }));
    model.add(tf.layers.dropout({ rate: 0.3 }));
    model.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
    // A little training, so the weights are not just their initial values.
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'sparseCategoricalCrossentropy' });
    const x = tf.tensor(Float32Array.from(fixture.train.images.subarray(0, 256 * 784), (v) => v / 255), [256, 28, 28]);
    await model.fit(x, tf.tensor1d(Array.from(fixture.train.labels.subarray(0, 256)), 'float32'), { epochs: 2, batchSize: 32, verbose: 0 });
    await model.save(tf.io.withSaveHandler(async (saved) => {
      artifacts = saved;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    expected = Float32Array.from((model.predict(testImages()) as tf.Tensor).dataSync());
  });

  it('the in-memory artifacts import into descent and predict the same', () => {
    expect((artifacts.weightSpecs ?? []).map((s) => s.name)).toEqual(['dense_Dense1/kernel', 'dense_Dense1/bias', 'dense_Dense2/kernel', 'dense_Dense2/bias']);
    const model = modelFromArtifacts(artifacts as ModelArtifacts);
    expect(model.layers.map((l) => `${l.className}:${l.name}`)).toEqual(['Flatten:flatten_Flatten1', 'Dense:dense_Dense1', 'Dropout:dropout_Dropout1', 'Dense:dense_Dense2']);
    const out = model.predict({ images: fixture.test.images.subarray(0, COUNT * 784), count: COUNT, rows: 28, cols: 28 });
    expect(maxDifference(out.data, expected)).toBeLessThan(1e-5);
  });

  it('written as model.json + weights.bin, the files work with every descent command', async () => {
    const dir = join(tmp.dir, 'tfjs-model');
    mkdirSync(dir);
    const { modelTopology, weightSpecs, weightData, format, generatedBy, convertedBy } = artifacts;
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ modelTopology, format, generatedBy, convertedBy, weightsManifest: [{ paths: ['weights.bin'], weights: weightSpecs }] }));
    writeFileSync(join(dir, 'weights.bin'), new Uint8Array(weightData as ArrayBuffer));

    const loaded = await loadModel(dir);
    expect(loaded.metadata).toBeUndefined();
    expect(loaded.warnings).toEqual([]);

    const indices = Array.from({ length: COUNT }, (_, i) => String(i));
    const predicted = await runCli(['predict', dir, '--data', FIXTURE, '--backend', 'ts', '--json', '--index', ...indices]);
    expect(predicted.code, predicted.stderr).toBe(0);
    const fromDescent = jsonLines(predicted.stdout).flatMap((p) => p.probabilities as number[]);
    expect(maxDifference(fromDescent, expected)).toBeLessThan(1e-5);

    const summary = await runCli(['summary', dir]);
    expect(summary.code, summary.stderr).toBe(0);
    expect(summary.stdout).toMatch(/dense_Dense1 \(Dense\)\s+\(None, 20\)\s+15,700/);
    expect(summary.stdout).toContain('Saved by TensorFlow.js tfjs-layers v4.22.0');

    const evaluated = await runCli(['evaluate', dir, '--data', FIXTURE, '--backend', 'ts', '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect((jsonLines(evaluated.stdout)[0].confusion as number[][]).flat().reduce((a, b) => a + b, 0)).toBe(500);
  });

  it('an unsupported layer from tfjs is refused with its name', async () => {
    const model = tf.sequential();
    model.add(tf.layers.flatten({ inputShape: [28, 28] }));
    model.add(tf.layers.dense({ units: 4, activation: 'tanh' }));
    model.add(tf.layers.batchNormalization());
    let saved!: tf.io.ModelArtifacts;
    await model.save(tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    expect(() => modelFromArtifacts(saved as ModelArtifacts, { modelFile: 'model.json' })).toThrow(/model\.json: layer 'dense_Dense\d+' \(Dense\): activation is not supported .*, got "tanh"$/);
    const topology = structuredClone(saved.modelTopology) as { config: { layers: Array<{ config: { activation?: string } }> } };
    topology.config.layers[1].config.activation = 'relu';
    expect(() => modelFromArtifacts({ ...(saved as ModelArtifacts), modelTopology: topology })).toThrow(/\(BatchNormalization\): layer class "BatchNormalization" is not supported/);
  });
});
