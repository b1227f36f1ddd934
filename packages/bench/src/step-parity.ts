/**
 * Step parity: an oracle (Keras, or TensorFlow.js on one of its backends) builds the model with
 * its own fresh weights, which are carried into descent; both see the same batches in the same
 * order (the first steps x 32 training images, no shuffling) and take one Adam step per batch.
 * The loss at every step and the final weights must agree: the proof that descent computes what
 * TensorFlow computes.
 */
import { Tensor, createReferenceKernels, kernels as activeKernels, setBackend, type BackendName } from '@descent/engine';
import type * as TF from '@tensorflow/tfjs';
import { kerasTask, runKeras } from './child.js';
import { countClipped, loadSplits, normalizedPixels } from './data.js';
import { buildDescentModel, useDescentBackend } from './descent-engine.js';
import { exportLayersWeights, importLayersWeights, type LayersWeights } from './layers-format.js';
import { buildTfjsModel, describeBackend, loadTfjsFor, type Tf } from './tfjs-engine.js';
import { ENGINE_INFO, MODEL, ORACLE_ENGINES, type StepDifference, type StepVariant, type StepsRun, type StepsTask, type Unavailable } from './types.js';

/** The batches every engine trains on, as float32 pixels shared by all of them. */
export interface Batches {
  steps: number;
  batchSize: number;
  inputShape: number[];
  batch(step: number): { x: Float32Array; y: Uint8Array };
}

export function firstBatches(task: Pick<StepsTask, 'files' | 'steps' | 'model'>): Batches {
  const { train } = loadSplits(task.files);
  const { batchSize } = MODEL;
  const samples = task.steps * batchSize;
  if (samples > train.count) throw new Error(`${task.steps} steps need ${samples} training images; the dataset has ${train.count}`);
  const pixelsPerImage = train.images.length / train.count;
  // One float copy of the inputs, fed to every engine, so they see bit-identical batches.
  const pixels = normalizedPixels(train.images.subarray(0, samples * pixelsPerImage));
  const labels = train.labels.subarray(0, samples);
  return {
    steps: task.steps,
    batchSize,
    inputShape: task.model.inputShape,
    batch: (step) => ({
      x: pixels.subarray(step * batchSize * pixelsPerImage, (step + 1) * batchSize * pixelsPerImage),
      y: labels.subarray(step * batchSize, (step + 1) * batchSize),
    }),
  };
}

/** What an oracle did: its backend, the weights it started from, its losses and final weights. */
interface OracleSteps {
  backend: string;
  initial: LayersWeights;
  losses: number[];
  final: Float32Array[];
  clippedSamples?: number;
}

/** Loss and weight differences of `losses`/`final` against a reference run. */
export function compareSteps(losses: readonly number[], final: readonly ArrayLike<number>[], reference: { losses: readonly number[]; final: readonly ArrayLike<number>[] }): StepDifference {
  const relative = losses.map((loss, i) => Math.abs(loss - reference.losses[i]) / Math.abs(reference.losses[i]));
  const worst = relative.reduce((best, value, i) => (value > relative[best] ? i : best), 0);
  let maxAbsWeightDifference = 0;
  final.forEach((values, w) => {
    for (let i = 0; i < values.length; i++) maxAbsWeightDifference = Math.max(maxAbsWeightDifference, Math.abs(values[i] - reference.final[w][i]));
  });
  return { maxRelativeLossDifference: relative[worst], worstStep: worst + 1, maxAbsWeightDifference };
}

/** trainOnBatch on every batch; counts the samples whose label probability tfjs's loss clips. */
async function tfjsSteps(tf: Tf, model: TF.Sequential, batches: Batches): Promise<{ losses: number[]; final: Float32Array[]; clippedSamples: number }> {
  const losses: number[] = [];
  let clippedSamples = 0;
  for (let step = 0; step < batches.steps; step++) {
    const { x, y } = batches.batch(step);
    const xb = tf.tensor(x, [batches.batchSize, ...batches.inputShape]);
    const yb = tf.tensor1d(y, 'float32');
    const probabilities = tf.tidy(() => (model.predict(xb) as TF.Tensor).dataSync());
    clippedSamples += countClipped(probabilities, y, probabilities.length / y.length);
    losses.push(Number(await model.trainOnBatch(xb, yb)));
    tf.dispose([xb, yb]);
  }
  return { losses, final: model.getWeights().map((w) => w.dataSync() as Float32Array), clippedSamples };
}

async function tfjsOracle(tf: Tf, task: StepsTask, batches: Batches): Promise<OracleSteps> {
  const model = buildTfjsModel(tf, task.model, task.seed, { metrics: false });
  const initial = await exportLayersWeights(tf, model);
  return { backend: describeBackend(tf), initial, ...(await tfjsSteps(tf, model, batches)) };
}

function decodeFloat32(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

interface KerasSteps {
  backend: string;
  initial: Array<{ name: string; shape: number[]; values: string }>;
  losses: number[];
  final: Array<{ values: string }>;
}

async function kerasOracle(task: StepsTask, options: { onednn?: boolean } = {}): Promise<OracleSteps | Unavailable> {
  const { model, files, seed, steps } = task;
  const reply = await runKeras<KerasSteps>(kerasTask({ kind: 'steps', model, files, seed, steps, threads: ENGINE_INFO[ORACLE_ENGINES.keras].threads ?? 0, ...options }));
  if ('available' in reply) return reply;
  return {
    backend: reply.backend,
    initial: { specs: reply.initial.map(({ name, shape }) => ({ name, shape })), values: reply.initial.map((w) => decodeFloat32(w.values)) },
    losses: reply.losses,
    final: reply.final.map((w) => decodeFloat32(w.values)),
  };
}

/** descent on the active backend, from `initial`, one Adam step per batch: its losses and final weights. */
function descentSteps(task: StepsTask, initial: LayersWeights, batches: Batches, adamForm: 'keras' | 'tfjs'): { losses: number[]; final: ArrayLike<number>[] } {
  const descent = buildDescentModel(task.model, task.seed, adamForm);
  importLayersWeights(descent, initial);
  const losses: number[] = [];
  for (let step = 0; step < batches.steps; step++) {
    const { x, y } = batches.batch(step);
    const xb = Tensor.from(x, [batches.batchSize, ...batches.inputShape]);
    losses.push(descent.trainOnBatch(xb, y));
    xb.dispose();
  }
  const final = descent.getWeights().map(({ values }) => values);
  descent.dispose();
  return { losses, final };
}

/**
 * descent on each backend and Adam form, from the oracle's initial weights, over the same batches;
 * also against a second run of the oracle on other kernels, when there is one.
 */
function descentVariants(task: StepsTask, oracle: OracleSteps, batches: Batches, eigen?: OracleSteps): StepVariant[] {
  const variants: StepVariant[] = [];
  for (const descentBackend of task.descentBackends ?? (['wasm', 'ts'] as BackendName[])) {
    for (const adamForm of ['keras', 'tfjs'] as const) {
      const inUse = useDescentBackend(descentBackend);
      const { losses, final } = descentSteps(task, oracle.initial, batches, adamForm);
      variants.push({
        descentBackend: inUse.backend,
        ...(inUse.fallbackReason ? { fallbackReason: inUse.fallbackReason } : {}),
        adamForm,
        losses,
        ...compareSteps(losses, final, oracle),
        ...(eigen ? { againstKerasEigen: compareSteps(losses, final, eigen) } : {}),
      });
    }
  }
  return variants;
}

/**
 * descent in float64 (its reference kernels, Keras's Adam) from Keras's initial weights: every
 * float32 run, Keras's and descent's alike, rounds its way off this trajectory, so its distance
 * from Keras is the scale of what float32 rounding does to these steps, whichever kernels Keras
 * runs on this machine.
 */
function float64FromKeras(task: StepsTask, keras: OracleSteps, batches: Batches): StepsRun['float64FromKeras'] {
  const previous = activeKernels();
  setBackend(createReferenceKernels('float64'));
  try {
    const { losses, final } = descentSteps(task, keras.initial, batches, 'keras');
    return { losses, ...compareSteps(losses, final, keras) };
  } finally {
    setBackend(previous);
  }
}

/** tfjs-node from Keras's initial weights: how far the two TensorFlow front ends are from each other. */
async function tfjsNodeFromKeras(task: StepsTask, keras: OracleSteps, batches: Batches): Promise<StepsRun['tfjsNodeFromKeras']> {
  const tf = await loadTfjsFor('tfjs-node');
  if ('available' in tf) return tf;
  const model = buildTfjsModel(tf, task.model, task.seed, { metrics: false });
  model.setWeights(keras.initial.values.map((values, i) => tf.tensor(values, keras.initial.specs[i].shape)));
  const { losses, final } = await tfjsSteps(tf, model, batches);
  return { available: true, losses, ...compareSteps(losses, final, keras) };
}

/**
 * Keras again on TensorFlow's Eigen kernels instead of oneDNN's, from the same seed: the same model,
 * batches and Adam; only the kernels (their order of summation) differ. Its distance from Keras is what
 * float32 rounding alone does to these steps, the scale for descent's distance from Keras.
 */
async function kerasOnEigen(task: StepsTask, keras: OracleSteps): Promise<OracleSteps | Unavailable> {
  const eigen = await kerasOracle(task, { onednn: false });
  if ('available' in eigen) return eigen;
  const sameStart = eigen.initial.values.every((values, w) => values.length === keras.initial.values[w].length && values.every((v, i) => v === keras.initial.values[w][i]));
  return sameStart ? eigen : { available: false, reason: 'Keras drew other initial weights with oneDNN off' };
}

async function oracleSteps(task: StepsTask, batches: Batches): Promise<OracleSteps | Unavailable> {
  if (task.oracle === 'keras') return kerasOracle(task);
  const tf = await loadTfjsFor(ORACLE_ENGINES[task.oracle]);
  return 'available' in tf ? tf : tfjsOracle(tf, task, batches);
}

export async function stepParity(task: StepsTask): Promise<StepsRun | Unavailable> {
  const batches = firstBatches(task);
  const oracle = await oracleSteps(task, batches);
  if ('available' in oracle) return oracle;

  const maxAbsWeight = Math.max(...oracle.final.map((values) => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  const crossCheck = task.oracle === 'keras' && task.crossCheckTfjsNode ? await tfjsNodeFromKeras(task, oracle, batches) : undefined;
  const eigen = task.oracle === 'keras' && task.crossCheckKerasEigen ? await kerasOnEigen(task, oracle) : undefined;
  const eigenRun = eigen && !('available' in eigen) ? eigen : undefined;
  const float64 = task.oracle === 'keras' && task.crossCheckFloat64 ? float64FromKeras(task, oracle, batches) : undefined;
  return {
    available: true,
    oracle: task.oracle,
    oracleBackend: oracle.backend,
    steps: task.steps,
    batchSize: batches.batchSize,
    importedWeights: oracle.initial.specs,
    oracleLosses: oracle.losses,
    maxAbsWeight,
    ...(oracle.clippedSamples !== undefined ? { clippedSamples: oracle.clippedSamples } : {}),
    variants: descentVariants(task, oracle, batches, eigenRun),
    ...(crossCheck ? { tfjsNodeFromKeras: crossCheck } : {}),
    ...(eigen ? { kerasEigenFromKeras: eigenRun ? { available: true, losses: eigenRun.losses, ...compareSteps(eigenRun.losses, eigenRun.final, oracle) } : (eigen as Unavailable) } : {}),
    ...(float64 ? { float64FromKeras: float64 } : {}),
  };
}
