/**
 * The TensorFlow.js side of every worker task. tfjs gets its data the way a Keras-style user
 * prepares it: float32 tensors scaled /255, built once before fit.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { Random } from '@descent/engine';
import { accuracyOf, countClipped, loadSplits, peakRssBytes } from './data.js';
import {
  ENGINE_INFO, MODEL, inferenceBatchOf, type AccuracyRun, type AccuracyTask, type BenchModel, type EngineId, type EpochRun, type EpochTask, type Unavailable,
} from './types.js';

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

/**
 * The bench model in tfjs. Kernels are glorot-uniform seeded seed, seed + 1, ... layer by layer
 * (tfjs's random numbers come from its own seeded generator, the same on every backend).
 */
export function buildTfjsModel(tf: Tf, model: BenchModel, seed: number, { metrics = true } = {}): TF.Sequential {
  let weighted = 0;
  const kernelInitializer = () => tf.initializers.glorotUniform({ seed: seed + weighted++ });
  const layers = model.layers.map((layer, i) => {
    const first = i === 0 ? { inputShape: model.inputShape } : {};
    switch (layer.type) {
      case 'flatten':
        return tf.layers.flatten(first);
      case 'dense':
        return tf.layers.dense({ ...first, units: layer.units, activation: layer.activation ?? 'linear', kernelInitializer: kernelInitializer() });
      case 'dropout':
        return tf.layers.dropout({ ...first, rate: layer.rate, seed: seed + 1000 + i });
      case 'conv2d':
        return tf.layers.conv2d({
          ...first, filters: layer.filters, kernelSize: layer.kernelSize, strides: layer.strides ?? 1, padding: layer.padding ?? 'valid',
          activation: layer.activation ?? 'linear', kernelInitializer: kernelInitializer(),
        });
      case 'maxpool':
        return tf.layers.maxPooling2d({ ...first, poolSize: layer.poolSize, strides: layer.strides ?? layer.poolSize, padding: layer.padding ?? 'valid' });
    }
  });
  const sequential = tf.sequential({ layers });
  sequential.compile({
    optimizer: tf.train.adam(MODEL.learningRate, MODEL.beta1, MODEL.beta2, MODEL.epsilon),
    loss: 'sparseCategoricalCrossentropy',
    metrics: metrics ? ['accuracy'] : [],
  });
  return sequential;
}

/** Images as float32 scaled /255 in the model's input shape. */
export function imageTensor(tf: Tf, images: Uint8Array, count: number, inputShape: number[]): TF.Tensor {
  return tf.tidy(() => tf.tensor(images, [count, ...inputShape], 'float32').div(255));
}

export function labelTensor(tf: Tf, labels: Uint8Array): TF.Tensor1D {
  return tf.tensor1d(labels, 'float32');
}

/** tfjs's backend name, with TensorFlow's version when it is tfjs-node. */
export function describeBackend(tf: Tf): string {
  const binding = (tf.backend() as { binding?: { TF_Version?: string } }).binding;
  return binding?.TF_Version ? `${tf.getBackend()} (TF ${binding.TF_Version})` : tf.getBackend();
}

/** tfjs on an engine's backend, or why it cannot run (tfjs-node is optional). */
export async function loadTfjsFor(engine: EngineId): Promise<Tf | Unavailable> {
  const backend = ENGINE_INFO[engine].backend as TfjsBackend;
  try {
    return await loadTfjs(backend);
  } catch (error) {
    if (backend === 'node') return { available: false, reason: reasonOf(error) };
    throw error;
  }
}

export async function tfjsEpoch(task: EpochTask): Promise<EpochRun | Unavailable> {
  const tf = await loadTfjsFor(task.engine);
  if ('available' in tf) return tf;
  const { train, test } = loadSplits(task.files);
  const x = imageTensor(tf, train.images, train.count, task.model.inputShape);
  const y = labelTensor(tf, train.labels);
  const xTest = imageTensor(tf, test.images, test.count, task.model.inputShape);
  const model = buildTfjsModel(tf, task.model, task.seed);
  seedTfjsShuffling(task.seed);

  const started = performance.now();
  const history = await model.fit(x, y, { epochs: 1, batchSize: MODEL.batchSize, shuffle: true, verbose: 0 });
  const seconds = (performance.now() - started) / 1000;
  const trainingPeakRss = peakRssBytes();

  const { probabilities, timesMs } = timeInference(tf, model, xTest, task.inferenceRuns, inferenceBatchOf(task.model));
  return {
    available: true,
    backend: describeBackend(tf),
    seconds,
    trainLoss: Number(history.history.loss[0]),
    testAccuracy: accuracyOf(probabilities, test.labels, 10),
    inferenceMs: timesMs,
    peakRssBytes: trainingPeakRss,
    peakRssAfterInferenceBytes: peakRssBytes(),
  };
}

/** `runs` timed predictions (outputs read back to JS) after one warm-up; returns the warm-up's outputs. */
function timeInference(tf: Tf, model: TF.Sequential, xTest: TF.Tensor, runs: number, batchSize: number): { probabilities: Float32Array; timesMs: number[] } {
  const predict = (): Float32Array => tf.tidy(() => (model.predict(xTest, { batchSize }) as TF.Tensor).dataSync() as Float32Array);
  const probabilities = predict();
  const timesMs: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    predict();
    timesMs.push(performance.now() - started);
  }
  return { probabilities, timesMs };
}

export async function tfjsAccuracy(task: AccuracyTask): Promise<AccuracyRun | Unavailable> {
  const tf = await loadTfjsFor(task.engine);
  if ('available' in tf) return tf;
  const { train, test } = loadSplits(task.files);
  const x = imageTensor(tf, train.images, train.count, task.model.inputShape);
  const y = labelTensor(tf, train.labels);
  const xTest = imageTensor(tf, test.images, test.count, task.model.inputShape);
  const model = buildTfjsModel(tf, task.model, task.seed);
  seedTfjsShuffling(task.seed);
  const started = performance.now();
  await model.fit(x, y, { epochs: task.epochs, batchSize: MODEL.batchSize, shuffle: true, verbose: 0 });
  const seconds = (performance.now() - started) / 1000;
  const probabilities = tf.tidy(() => (model.predict(xTest, { batchSize: inferenceBatchOf(task.model) }) as TF.Tensor).dataSync());
  return {
    backend: describeBackend(tf),
    testAccuracy: accuracyOf(probabilities, test.labels, 10),
    clippedFraction: countClipped(probabilities, test.labels, 10) / test.count,
    seconds,
  };
}
