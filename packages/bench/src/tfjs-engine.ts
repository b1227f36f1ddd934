/**
 * The TensorFlow.js side of every worker task. tfjs gets its data the way a Keras-style user
 * prepares it: float32 tensors scaled /255, built once before fit.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { Random } from '@descent/engine';
import { accuracyOf, countClipped, loadSplits, peakRssBytes } from './data.js';
import { INFERENCE_BATCH, MODEL, type AccuracyRun, type AccuracyTask, type EpochRun, type EpochTask, type Unavailable } from './types.js';

export type Tf = typeof TF;
export type TfjsBackend = 'wasm' | 'cpu' | 'node';

const TFJS_NODE = '@tensorflow/tfjs-node';

/** Loads tfjs on one backend. tfjs-backend-wasm needs to be told where its .wasm files are. */
export async function loadTfjs(backend: TfjsBackend): Promise<Tf> {
  if (backend === 'node') {
    const moduleName: string = TFJS_NODE; // not a literal, so the compiler does not need it installed
    const tf = (await import(moduleName)) as Tf;
    await tf.ready();
    return tf;
  }
  const tf = await import('@tensorflow/tfjs');
  if (backend === 'wasm') {
    const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs could not start its ${backend} backend`);
  await tf.ready();
  return tf;
}

/**
 * tfjs shuffles with Math.random and offers no seed. In a worker process that only runs tfjs,
 * a seeded stand-in makes its shuffling, and so its runs, repeatable.
 */
export function seedTfjsShuffling(seed: number): void {
  const random = new Random(seed);
  Math.random = () => random.next();
}

/** The first line of why an import failed, e.g. "Cannot find package '@tensorflow/tfjs-node' ...". */
export function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0].trim();
}

export function buildTfjsModel(tf: Tf, seed: number, { metrics = true } = {}): TF.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [28, 28] }),
      tf.layers.dense({ units: 128, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  model.compile({
    optimizer: tf.train.adam(MODEL.learningRate, MODEL.beta1, MODEL.beta2, MODEL.epsilon),
    loss: 'sparseCategoricalCrossentropy',
    metrics: metrics ? ['accuracy'] : [],
  });
  return model;
}

export function imageTensor(tf: Tf, images: Uint8Array, count: number): TF.Tensor3D {
  return tf.tidy(() => tf.tensor3d(images, [count, 28, 28], 'float32').div<TF.Tensor3D>(255));
}

export function labelTensor(tf: Tf, labels: Uint8Array): TF.Tensor1D {
  return tf.tensor1d(labels, 'float32');
}

export async function tfjsEpoch(task: EpochTask): Promise<EpochRun | Unavailable> {
  const backend: TfjsBackend = task.engine === 'tfjs-wasm' ? 'wasm' : task.engine === 'tfjs-cpu' ? 'cpu' : 'node';
  let tf: Tf;
  try {
    tf = await loadTfjs(backend);
  } catch (error) {
    if (backend === 'node') return { available: false, reason: reasonOf(error) };
    throw error;
  }
  const { train, test } = loadSplits(task.files);
  const x = imageTensor(tf, train.images, train.count);
  const y = labelTensor(tf, train.labels);
  const xTest = imageTensor(tf, test.images, test.count);
  const model = buildTfjsModel(tf, task.seed);
  seedTfjsShuffling(task.seed);

  const started = performance.now();
  const history = await model.fit(x, y, { epochs: 1, batchSize: MODEL.batchSize, shuffle: true, verbose: 0 });
  const seconds = (performance.now() - started) / 1000;
  const trainingPeakRss = peakRssBytes();

  const { probabilities, timesMs } = timeInference(tf, model, xTest, task.inferenceRuns);
  return {
    available: true,
    backend: tf.getBackend(),
    seconds,
    trainLoss: Number(history.history.loss[0]),
    testAccuracy: accuracyOf(probabilities, test.labels, 10),
    inferenceMs: timesMs,
    peakRssBytes: trainingPeakRss,
    peakRssAfterInferenceBytes: peakRssBytes(),
  };
}

/** `runs` timed predictions (outputs read back to JS) after one warm-up; returns the warm-up's outputs. */
function timeInference(tf: Tf, model: TF.Sequential, xTest: TF.Tensor, runs: number): { probabilities: Float32Array; timesMs: number[] } {
  const predict = (): Float32Array => tf.tidy(() => (model.predict(xTest, { batchSize: INFERENCE_BATCH }) as TF.Tensor).dataSync() as Float32Array);
  const probabilities = predict();
  const timesMs: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    predict();
    timesMs.push(performance.now() - started);
  }
  return { probabilities, timesMs };
}

export async function tfjsAccuracy(task: AccuracyTask): Promise<AccuracyRun> {
  const tf = await loadTfjs('wasm');
  const { train, test } = loadSplits(task.files);
  const x = imageTensor(tf, train.images, train.count);
  const y = labelTensor(tf, train.labels);
  const xTest = imageTensor(tf, test.images, test.count);
  const model = buildTfjsModel(tf, task.seed);
  seedTfjsShuffling(task.seed);
  const started = performance.now();
  await model.fit(x, y, { epochs: task.epochs, batchSize: MODEL.batchSize, shuffle: true, verbose: 0 });
  const seconds = (performance.now() - started) / 1000;
  const probabilities = tf.tidy(() => (model.predict(xTest, { batchSize: INFERENCE_BATCH }) as TF.Tensor).dataSync());
  return {
    backend: tf.getBackend(),
    testAccuracy: accuracyOf(probabilities, test.labels, 10),
    clippedFraction: countClipped(probabilities, test.labels, 10) / test.count,
    seconds,
  };
}
