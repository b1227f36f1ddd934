/**
 * Step parity: tfjs and descent start from the same weights (tfjs's fresh initialisation,
 * carried over in the tfjs Layers format), see the same batches in the same order (the first
 * steps × 32 training images, no shuffling), and take one Adam step per batch. The loss at every
 * step and the final weights must agree: the proof that descent computes what tfjs computes.
 */
import { Tensor, type BackendName } from '@descent/engine';
import type * as TF from '@tensorflow/tfjs';
import { countClipped, loadSplits, normalizedPixels } from './data.js';
import { buildDescentModel, useDescentBackend } from './descent-engine.js';
import { exportLayersWeights, importLayersWeights } from './layers-format.js';
import { buildTfjsModel, loadTfjs } from './tfjs-engine.js';
import { MODEL, type StepVariant, type StepsRun, type StepsTask } from './types.js';

const PIXELS = 28 * 28;

export async function stepParity(task: StepsTask): Promise<StepsRun> {
  const tf = await loadTfjs(task.tfjsBackend);
  const { train } = loadSplits(task.files);
  const { batchSize } = MODEL;
  const samples = task.steps * batchSize;
  if (samples > train.count) throw new Error(`${task.steps} steps need ${samples} training images; the dataset has ${train.count}`);
  // One float copy of the inputs, fed to both engines, so they see bit-identical batches.
  const pixels = normalizedPixels(train.images.subarray(0, samples * PIXELS));
  const labels = train.labels.subarray(0, samples);
  const batch = (step: number) => ({
    x: pixels.subarray(step * batchSize * PIXELS, (step + 1) * batchSize * PIXELS),
    y: labels.subarray(step * batchSize, (step + 1) * batchSize),
  });

  const model = buildTfjsModel(tf, task.seed, { metrics: false });
  const initial = await exportLayersWeights(tf, model);
  const tfjsLosses: number[] = [];
  let clippedSamples = 0;
  for (let step = 0; step < task.steps; step++) {
    const { x, y } = batch(step);
    const xb = tf.tensor3d(x, [batchSize, 28, 28]);
    const yb = tf.tensor1d(y, 'float32');
    const probabilities = tf.tidy(() => (model.predict(xb) as TF.Tensor).dataSync());
    clippedSamples += countClipped(probabilities, y, 10);
    tfjsLosses.push(Number(await model.trainOnBatch(xb, yb)));
    tf.dispose([xb, yb]);
  }
  const tfjsFinal = model.getWeights().map((w) => w.dataSync() as Float32Array);
  const maxAbsWeight = Math.max(...tfjsFinal.map((values) => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));

  const variants: StepVariant[] = [];
  for (const descentBackend of ['wasm', 'ts'] as BackendName[]) {
    for (const adamForm of ['tfjs', 'keras'] as const) {
      const inUse = useDescentBackend(descentBackend);
      const descent = buildDescentModel(task.seed, adamForm);
      importLayersWeights(descent, initial);
      const losses: number[] = [];
      for (let step = 0; step < task.steps; step++) {
        const { x, y } = batch(step);
        const xb = Tensor.from(x, [batchSize, 28, 28]);
        losses.push(descent.trainOnBatch(xb, y));
        xb.dispose();
      }
      const relative = losses.map((loss, i) => Math.abs(loss - tfjsLosses[i]) / Math.abs(tfjsLosses[i]));
      const worst = relative.reduce((best, value, i) => (value > relative[best] ? i : best), 0);
      const final = descent.getWeights();
      let maxAbsWeightDifference = 0;
      final.forEach(({ values }, w) => {
        for (let i = 0; i < values.length; i++) maxAbsWeightDifference = Math.max(maxAbsWeightDifference, Math.abs(values[i] - tfjsFinal[w][i]));
      });
      descent.dispose();
      variants.push({
        descentBackend: inUse.backend,
        ...(inUse.fallbackReason ? { fallbackReason: inUse.fallbackReason } : {}),
        adamForm,
        losses,
        maxRelativeLossDifference: relative[worst],
        worstStep: worst + 1,
        maxAbsWeightDifference,
      });
    }
  }
  return {
    tfjsBackend: tf.getBackend(),
    steps: task.steps,
    batchSize,
    importedWeights: initial.specs,
    tfjsLosses,
    maxAbsWeight,
    clippedSamples,
    variants,
  };
}
