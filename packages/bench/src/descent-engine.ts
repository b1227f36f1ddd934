/** The descent side of every worker task: the bench model, one epoch, inference, accuracy. */
import {
  EarlyStopping, Tensor, adam, backendFallbackReason, backendName, conv2d, dense, dropout, flatten, maxPooling2d, onBackendWarning, sequential, setBackend, setThreads, turnOffJsInlining,
  threadCount, threadsReady, type BackendName, type Callback, type Layer, type Sequential,
} from '@descent/engine';
import { accuracyOf, countClipped, loadSplits, normalizedPixels, peakRssBytes } from './data.js';
import { ENGINE_INFO, MODEL, inferenceBatchOf, type AccuracyRun, type AccuracyTask, type BenchLayer, type BenchModel, type EpochRun, type EpochTask } from './types.js';

export interface BackendInUse {
  backend: string;
  fallbackReason?: string;
}

/**
 * Switch descent's kernels, on `threads` threads (1 unless given: the engine's own default is one
 * per core). A wasm backend that fell back is recorded rather than printed. The wasm kernels run
 * with V8's inlining off, as `descent train` runs them (see the CLI's prepareForTraining).
 */
export function useDescentBackend(name: BackendName, threads = 1): BackendInUse {
  onBackendWarning(() => {});
  if (name === 'wasm') turnOffJsInlining();
  setThreads(threads);
  setBackend(name);
  const backend = backendName();
  return backend === name ? { backend } : { backend, fallbackReason: backendFallbackReason() ?? 'unknown' };
}

/** The engine's backend on its pinned threads, with every worker started before anything is timed. */
async function useEngine(engine: EpochTask['engine']): Promise<BackendInUse> {
  const { backend, threads } = ENGINE_INFO[engine];
  const inUse = useDescentBackend(backend as BackendName, threads);
  await threadsReady();
  if (inUse.fallbackReason === undefined && backend === 'wasm' && threadCount() !== (threads ?? 1)) {
    return { ...inUse, fallbackReason: `ran on ${threadCount()} thread(s), not ${threads}` };
  }
  return inUse;
}

/** descent's layer for a bench layer; the first one gets the model's input shape. */
function descentLayer(layer: BenchLayer, inputShape: number[] | undefined): Layer {
  switch (layer.type) {
    case 'flatten':
      return flatten({ inputShape });
    case 'dense':
      return dense({ units: layer.units, activation: layer.activation, inputShape });
    case 'dropout':
      return dropout({ rate: layer.rate, inputShape });
    case 'conv2d':
      return conv2d({
        filters: layer.filters, kernelSize: layer.kernelSize, strides: layer.strides ?? 1, padding: layer.padding ?? 'valid',
        activation: layer.activation ?? 'linear', inputShape,
      });
    case 'maxpool':
      return maxPooling2d({ poolSize: layer.poolSize, strides: layer.strides ?? layer.poolSize, padding: layer.padding ?? 'valid', inputShape });
  }
}

/**
 * The bench model with Adam 1e-3. `adamForm: 'tfjs'` makes Adam do TensorFlow.js's arithmetic
 * (see the engine's optimizers/adam.ts); the default is Keras's.
 */
export function buildDescentModel(benchModel: BenchModel, seed: number, adamForm: 'keras' | 'tfjs' = 'keras'): Sequential {
  const model = sequential(benchModel.layers.map((layer, i) => descentLayer(layer, i === 0 ? benchModel.inputShape : undefined)), { seed });
  const { learningRate, beta1, beta2, epsilon } = MODEL;
  model.compile({
    optimizer: adam({ learningRate, beta1, beta2, epsilon, form: adamForm }),
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
  });
  return model;
}

/** Trains one epoch from a fresh model, then times inference on the whole test set. */
export async function descentEpoch(task: EpochTask): Promise<EpochRun> {
  const inUse = await useEngine(task.engine);
  const { train, test } = loadSplits(task.files);
  const model = buildDescentModel(task.model, task.seed);

  const started = performance.now();
  const history = await model.fit(train, train.labels, { epochs: 1, batchSize: MODEL.batchSize, shuffle: true, seed: task.seed });
  const seconds = (performance.now() - started) / 1000;
  const trainingPeakRss = peakRssBytes();

  // As tfjs and Keras get it: the test set as float32 scaled /255, made before anything is timed.
  const testTensor = Tensor.from(normalizedPixels(test.images), [test.count, ...task.model.inputShape]);
  const { probabilities, timesMs } = timeInference(model, testTensor, task.inferenceRuns, inferenceBatchOf(task.model));
  testTensor.dispose();
  const fromBytes = timeInference(model, test, task.inferenceRuns, inferenceBatchOf(task.model));
  return {
    available: true,
    ...inUse,
    seconds,
    trainLoss: history.loss[0],
    testAccuracy: accuracyOf(probabilities, test.labels, 10),
    inferenceMs: timesMs,
    inferenceFromBytesMs: fromBytes.timesMs,
    peakRssBytes: trainingPeakRss,
    peakRssAfterInferenceBytes: peakRssBytes(),
  };
}

/** `runs` timed predictions after one warm-up; returns the warm-up's outputs. */
function timeInference(model: Sequential, test: Parameters<Sequential['predict']>[0], runs: number, batchSize: number): { probabilities: Float32Array; timesMs: number[] } {
  const warm = model.predict(test, { batchSize });
  const probabilities = Float32Array.from(warm.data);
  warm.dispose();
  const timesMs: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    const out = model.predict(test, { batchSize });
    timesMs.push(performance.now() - started);
    out.dispose();
  }
  return { probabilities, timesMs };
}

export async function descentAccuracy(task: AccuracyTask): Promise<AccuracyRun> {
  const inUse = await useEngine(task.engine);
  const { train, test } = loadSplits(task.files);
  const model = buildDescentModel(task.model, task.seed);
  // Test accuracy after every epoch, as a Keras callback would take it; its time is not counted.
  const epochAccuracies: number[] = [];
  let evaluatingMs = 0;
  const afterEachEpoch = {
    onEpochEnd: () => {
      const begun = performance.now();
      const out = model.predict(test, { batchSize: inferenceBatchOf(task.model) });
      epochAccuracies.push(accuracyOf(out.data, test.labels, 10));
      out.dispose();
      evaluatingMs += performance.now() - begun;
    },
  };
  const callbacks: Callback[] = [afterEachEpoch];
  // Keras's EarlyStopping(monitor='val_loss', restore_best_weights=True): the best epoch's weights come back when training ends.
  const stopper = task.earlyStoppingPatience === undefined ? undefined : new EarlyStopping({ monitor: 'val_loss', patience: task.earlyStoppingPatience, restoreBestWeights: true, log: () => {} });
  if (stopper) callbacks.push(stopper);
  const started = performance.now();
  const history = await model.fit(train, train.labels, {
    epochs: task.epochs, batchSize: MODEL.batchSize, shuffle: true, seed: task.seed, validationSplit: task.validationSplit ?? 0, callbacks,
  });
  const seconds = (performance.now() - started - evaluatingMs) / 1000;
  const out = model.predict(test, { batchSize: inferenceBatchOf(task.model) });
  const probabilities = out.data;
  const result = {
    ...inUse,
    testAccuracy: accuracyOf(probabilities, test.labels, 10),
    epochAccuracies,
    ...(task.validationSplit ? { valLosses: history.val_loss } : {}),
    ...(stopper?.restoredEpoch !== undefined ? { restoredEpoch: stopper.restoredEpoch } : {}),
    clippedFraction: countClipped(probabilities, test.labels, 10) / test.count,
    seconds,
  };
  out.dispose();
  return result;
}
