/**
 * The shapes of everything the bench measures: the tasks a worker process runs, what it sends
 * back, and the result file written at the end of a run.
 */
import type { DatasetFiles } from '@descent/engine';
import type { ConvSuiteResult } from './conv-suite.js';
import type { KernelSuiteResult } from './kernel-suite.js';

/**
 * Every training engine the whole-epoch suite compares, in the order of its table: descent, then
 * TensorFlow itself (Keras, tfjs-node), then TensorFlow.js. A `-<n>t` suffix pins the engine to n
 * threads; without one it runs with its own default.
 */
export const ENGINES = ['descent-wasm', 'descent-wasm-2t', 'descent-ts', 'keras-1t', 'keras-2t', 'tfjs-node-1t', 'tfjs-node', 'tfjs-wasm', 'tfjs-cpu'] as const;
export type EngineId = (typeof ENGINES)[number];

export interface EngineInfo {
  label: string;
  /** Who runs it: descent's engine, TensorFlow.js in a Node worker, or Keras in a Python child. */
  runtime: 'descent' | 'tfjs' | 'keras';
  /** descent's kernels ('wasm' | 'ts') or tfjs's backend ('wasm' | 'cpu' | 'node'). */
  backend?: 'wasm' | 'ts' | 'cpu' | 'node';
  /** Threads it is pinned to; undefined: the engine's default. */
  threads?: number;
}

export const ENGINE_INFO: Readonly<Record<EngineId, EngineInfo>> = {
  'descent-wasm': { label: 'descent (wasm), 1 thread', runtime: 'descent', backend: 'wasm', threads: 1 },
  'descent-wasm-2t': { label: 'descent (wasm), 2 threads', runtime: 'descent', backend: 'wasm', threads: 2 },
  'descent-ts': { label: 'descent (ts)', runtime: 'descent', backend: 'ts' },
  'keras-1t': { label: 'Keras (TensorFlow), 1 thread', runtime: 'keras', threads: 1 },
  'keras-2t': { label: 'Keras (TensorFlow), 2 threads', runtime: 'keras', threads: 2 },
  'tfjs-node-1t': { label: '@tensorflow/tfjs-node, 1 thread', runtime: 'tfjs', backend: 'node', threads: 1 },
  'tfjs-node': { label: '@tensorflow/tfjs-node, default threads', runtime: 'tfjs', backend: 'node' },
  'tfjs-wasm': { label: '@tensorflow/tfjs-backend-wasm', runtime: 'tfjs', backend: 'wasm' },
  'tfjs-cpu': { label: '@tensorflow/tfjs (cpu)', runtime: 'tfjs', backend: 'cpu' },
};

export const ENGINE_LABELS: Readonly<Record<EngineId, string>> = Object.fromEntries(
  ENGINES.map((id) => [id, ENGINE_INFO[id].label]),
) as Record<EngineId, string>;

/**
 * kernels, epoch, parity and steps measure the MLP; conv measures the convolution kernels; cnn
 * trains the tutorial CNN (epoch time against TensorFlow, step parity), cnn-parity its accuracy after
 * 10 epochs, and cnn-early its accuracy with a validation split and early stopping.
 */
export const SUITES = ['kernels', 'epoch', 'parity', 'steps', 'conv', 'cnn', 'cnn-parity', 'cnn-early'] as const;
export type SuiteName = (typeof SUITES)[number];

/**
 * One layer of a bench model, as every engine builds it (Keras and tfjs names in brackets).
 * Images are 28x28; a model whose first layer needs channels says inputShape [28, 28, 1].
 */
export type BenchLayer =
  | { type: 'flatten' } // Flatten
  | { type: 'dense'; units: number; activation?: 'relu' | 'softmax' | 'linear' } // Dense
  | { type: 'dropout'; rate: number } // Dropout
  | { type: 'conv2d'; filters: number; kernelSize: number; strides?: number; padding?: 'valid' | 'same'; activation?: 'relu' | 'linear' } // Conv2D
  | { type: 'maxpool'; poolSize: number; strides?: number; padding?: 'valid' | 'same' }; // MaxPooling2D

export interface BenchModel {
  name: string;
  /** Per-image input shape, without the batch: [28, 28], or [28, 28, 1] for convolutions. */
  inputShape: number[];
  layers: BenchLayer[];
  /** Images per inference batch, when not the whole test set (see inferenceBatchOf). */
  inferenceBatch?: number;
}

/** The default model: Flatten -> Dense 128 ReLU -> Dense 10 softmax. */
export const MLP: BenchModel = {
  name: 'mlp',
  inputShape: [28, 28],
  layers: [{ type: 'flatten' }, { type: 'dense', units: 128, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }],
};

/**
 * The tutorial CNN: Conv2D 32 3x3 ReLU -> MaxPool 2 -> Conv2D 64 3x3 ReLU -> MaxPool 2 -> Flatten
 * -> Dense 128 ReLU -> Dense 10 softmax, on 28x28x1 images (the same bytes as the MLP's).
 */
export const CNN: BenchModel = {
  name: 'cnn',
  inputShape: [28, 28, 1],
  layers: [
    { type: 'conv2d', filters: 32, kernelSize: 3, activation: 'relu' },
    { type: 'maxpool', poolSize: 2 },
    { type: 'conv2d', filters: 64, kernelSize: 3, activation: 'relu' },
    { type: 'maxpool', poolSize: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 128, activation: 'relu' },
    { type: 'dense', units: 10, activation: 'softmax' },
  ],
  // The CNN's activations for 10,000 images at once (the first layer's output alone is 865 MB) do
  // not fit a 32-bit WASM memory: every engine predicts it 1,000 images at a time.
  inferenceBatch: 1_000,
};

/** 'Flatten -> Dense 128 ReLU -> Dense 10 softmax' and the like. */
export function describeModel(model: BenchModel): string {
  const word = (layer: BenchLayer): string => {
    const activation = 'activation' in layer && layer.activation && layer.activation !== 'linear' ? ` ${layer.activation === 'relu' ? 'ReLU' : layer.activation}` : '';
    switch (layer.type) {
      case 'flatten':
        return 'Flatten';
      case 'dense':
        return `Dense ${layer.units}${activation}`;
      case 'dropout':
        return `Dropout ${layer.rate}`;
      case 'conv2d':
        return `Conv2D ${layer.filters} ${layer.kernelSize}x${layer.kernelSize}${layer.strides && layer.strides > 1 ? ` /${layer.strides}` : ''}${layer.padding === 'same' ? ' same' : ''}${activation}`;
      case 'maxpool':
        return `MaxPool ${layer.poolSize}x${layer.poolSize}`;
    }
  };
  return model.layers.map(word).join(' -> ');
}

/** The optimizer and batch size every engine trains with. */
export const MODEL = {
  layers: describeModel(MLP),
  optimizer: 'Adam',
  learningRate: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-7,
  batchSize: 32,
  loss: 'sparse categorical cross-entropy',
} as const;

/** Inference runs the whole test set as one batch in every engine (unless the model says otherwise). */
export const INFERENCE_BATCH = 10_000;

/** The inference batch of a model, the same in every engine. */
export function inferenceBatchOf(model: BenchModel): number {
  return model.inferenceBatch ?? INFERENCE_BATCH;
}

// ---- worker tasks and replies ------------------------------------------------------------

export interface EpochTask {
  kind: 'epoch';
  engine: EngineId;
  model: BenchModel;
  files: DatasetFiles;
  seed: number;
  inferenceRuns: number;
}

export interface AccuracyTask {
  kind: 'accuracy';
  engine: EngineId;
  model: BenchModel;
  files: DatasetFiles;
  seed: number;
  epochs: number;
  /** Hold out this last fraction of the training images (before shuffling, as Keras's validation_split). */
  validationSplit?: number;
  /** Keras's EarlyStopping on val_loss with restore_best_weights: stop after this many epochs without improvement, then put back the best epoch's weights. */
  earlyStoppingPatience?: number;
}

/** The references step parity runs against: TensorFlow itself, then TensorFlow.js's backends. */
export const ORACLES = ['keras', 'tfjs-node', 'tfjs-wasm', 'tfjs-cpu'] as const;
export type OracleId = (typeof ORACLES)[number];

/** The engine each oracle runs as (Keras with one thread, so its arithmetic has one order). */
export const ORACLE_ENGINES: Readonly<Record<OracleId, EngineId>> = {
  keras: 'keras-1t',
  'tfjs-node': 'tfjs-node',
  'tfjs-wasm': 'tfjs-wasm',
  'tfjs-cpu': 'tfjs-cpu',
};

/** The Adam arithmetic each oracle does, which descent's `form` option reproduces. */
export const ORACLE_ADAM_FORMS: Readonly<Record<OracleId, 'keras' | 'tfjs'>> = {
  keras: 'keras',
  'tfjs-node': 'tfjs',
  'tfjs-wasm': 'tfjs',
  'tfjs-cpu': 'tfjs',
};

export interface StepsTask {
  kind: 'steps';
  oracle: OracleId;
  model: BenchModel;
  files: DatasetFiles;
  seed: number;
  steps: number;
  /** descent's kernels to compare (default wasm and ts). */
  descentBackends?: Array<'wasm' | 'ts'>;
  /** With the Keras oracle: also train tfjs-node from Keras's initial weights, to compare the two oracles. */
  crossCheckTfjsNode?: boolean;
  /**
   * With the Keras oracle: also train Keras again on TensorFlow's Eigen kernels instead of oneDNN's,
   * the same arithmetic summed in other orders: how far float32 rounding alone carries the losses.
   */
  crossCheckKerasEigen?: boolean;
  /**
   * With the Keras oracle: also train descent in float64 (its reference kernels) from Keras's
   * initial weights: how far float32 rounding carries the losses from exact-ish arithmetic.
   */
  crossCheckFloat64?: boolean;
}

export type WorkerTask = EpochTask | AccuracyTask | StepsTask;

export interface Unavailable {
  available: false;
  reason: string;
}

export interface EpochRun {
  available: true;
  /** The backend that actually ran (descent's backendName(), tfjs's getBackend(), Keras's versions). */
  backend: string;
  /** Why descent's wasm backend fell back to the TS kernels, when it did. */
  fallbackReason?: string;
  seconds: number;
  trainLoss: number;
  testAccuracy: number;
  inferenceMs: number[];
  /**
   * descent only: the same inference from the test set's bytes, which predict copies into its batch
   * buffer and scales inside each timed call (inferenceMs starts from a float32 tensor, as tfjs and Keras do).
   */
  inferenceFromBytesMs?: number[];
  /** Process high-water mark right after the epoch (before inference). */
  peakRssBytes: number;
  /** The same at the end, after the inference runs. */
  peakRssAfterInferenceBytes: number;
}

export interface AccuracyRun {
  available?: true;
  backend: string;
  fallbackReason?: string;
  testAccuracy: number;
  /** Test accuracy after each epoch (the last is testAccuracy, unless early stopping restored an earlier epoch). */
  epochAccuracies?: number[];
  /** With a validation split: val_loss after each epoch. */
  valLosses?: number[];
  /** With early stopping: the epoch (0-based) whose weights were restored at the end. */
  restoredEpoch?: number;
  seconds: number;
  /** Test samples whose label probability tfjs's loss would clip (p < 1e-7 or p > 1 - 1e-7). */
  clippedFraction: number;
}

/** Loss and weight differences between two runs over the same steps. */
export interface StepDifference {
  maxRelativeLossDifference: number;
  /** Step (1-based) where the relative difference peaks. */
  worstStep: number;
  maxAbsWeightDifference: number;
}

/** One descent configuration trained on the same batches as the oracle, from its weights. */
export interface StepVariant extends StepDifference {
  descentBackend: string;
  fallbackReason?: string;
  /** 'keras': descent's default Adam; 'tfjs': Adam doing TensorFlow.js's arithmetic. */
  adamForm: 'keras' | 'tfjs';
  losses: number[];
  /** With the Keras oracle's Eigen cross-check: the same against Keras on Eigen kernels. */
  againstKerasEigen?: StepDifference;
}

export interface StepsRun {
  available: true;
  oracle: OracleId;
  /** What ran: tfjs's backend name, or Keras's and TensorFlow's versions. */
  oracleBackend: string;
  steps: number;
  batchSize: number;
  /** Weight names and shapes as the oracle exported them, in import order. */
  importedWeights: Array<{ name: string; shape: number[] }>;
  oracleLosses: number[];
  /** Largest absolute value among the oracle's final weights, to put the weight differences in scale. */
  maxAbsWeight: number;
  /** tfjs only: samples (over all steps) whose label probability its loss clipped (Keras's works from logits). */
  clippedSamples?: number;
  variants: StepVariant[];
  /** Keras only: tfjs-node trained from Keras's initial weights on the same batches, against Keras. */
  tfjsNodeFromKeras?: (StepDifference & { available: true; losses: number[] }) | Unavailable;
  /** Keras only: Keras on TensorFlow's Eigen kernels (oneDNN off), from the same seed, against Keras. */
  kerasEigenFromKeras?: (StepDifference & { available: true; losses: number[] }) | Unavailable;
  /** Keras only: descent in float64 (reference kernels, Adam form 'keras'), from Keras's initial weights, against Keras. */
  float64FromKeras?: StepDifference & { losses: number[] };
}

export type WorkerReply =
  | { ok: true; result: EpochRun | AccuracyRun | StepsRun | Unavailable }
  | { ok: false; error: string; stack?: string };

// ---- the result file ---------------------------------------------------------------------

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export interface MachineInfo {
  cpu: string;
  /** The CPU's family, model and widest vector instructions where the system says ('family 26, model 2, AVX-512'; see parseCpuDetails). */
  cpuDetails?: string;
  cores: number;
  node: string;
  platform: string;
  hostname: string;
  date: string;
  /**
   * Each core's speed on one short loop, relative to the fastest core, measured one core at a
   * time when a suite started (and at 'end'); absent where cores cannot be pinned (see coreSpeeds).
   */
  coreSpeeds?: Record<string, number[]>;
}

export interface EpochEngineResult {
  engine: EngineId;
  label: string;
  available: boolean;
  /** Why the engine could not be measured. */
  reason?: string;
  backend?: string;
  fallbackReason?: string;
  runs: number;
  /** Why it ran fewer times than the others. */
  runsNote?: string;
  seconds: number[];
  secondsPerEpoch?: Summary;
  /** Median seconds per epoch divided by descent-wasm's: how many times slower than descent-wasm. */
  ratioToDescentWasm?: number;
  /** Highest peak resident set size over the engine's runs, measured right after the epoch. */
  peakRssMiB?: number;
  peakRssMiBPerRun: number[];
  /** The same measured at the end of the run, after inference. */
  peakRssAfterInferenceMiBPerRun: number[];
  /** Median over runs of each run's median inference time on the test set. */
  inferenceMs?: number;
  inferenceMsPerRun: number[];
  /** descent: the median over runs of inference from the test set's bytes (see EpochRun). */
  inferenceFromBytesMs?: number;
  inferenceFromBytesMsPerRun?: number[];
  trainLoss: number[];
  testAccuracy: number[];
}

export interface EpochSuiteResult {
  trainSamples: number;
  testSamples: number;
  batchSize: number;
  inferenceBatch: number;
  note: string;
  engines: EpochEngineResult[];
}

export interface AccuracyEngineResult {
  engine: EngineId;
  label: string;
  available: boolean;
  /** Why the engine could not be measured. */
  reason?: string;
  backend?: string;
  fallbackReason?: string;
  seeds: number[];
  accuracies: number[];
  mean?: number;
  sd?: number;
  /** Per seed, the test accuracy after each epoch. */
  epochAccuracies?: number[][];
  /** Mean over seeds of each seed's best test accuracy after any epoch (within the epochs run). */
  bestMean?: number;
  /** With early stopping: per seed, the epochs run and the epoch (1-based) whose weights were kept. */
  epochsRun?: number[];
  keptEpochs?: number[];
  /** With early stopping: per seed, val_loss after each epoch. */
  valLosses?: number[][];
  secondsPerRun: number[];
  clippedFraction: number[];
}

export interface AccuracySuiteResult {
  epochs: number;
  /** Set when the runs held out a validation split and stopped early on val_loss, restoring the best weights (suite cnn-early). */
  earlyStopping?: { validationSplit: number; patience: number };
  trainSamples: number;
  testSamples: number;
  note: string;
  /** descent (wasm) first, then the references. */
  engines: AccuracyEngineResult[];
  /** descent's mean minus each measured reference's mean, in percentage points. */
  differences: Array<{ engine: EngineId; label: string; points: number }>;
}

/** Two oracles compared over the same steps from the same weights, to put descent's differences in scale. */
export interface OracleDifference {
  between: [string, string];
  /** Why they differ at all. */
  why: string;
  maxRelativeLossDifference: number;
  worstStep?: number;
  maxAbsWeightDifference?: number;
}

/** The comparisons the targets are about: descent (wasm) in each oracle's own Adam arithmetic. */
export interface StepsHeadline extends StepDifference {
  oracle: OracleId;
  oracleBackend: string;
  descentBackend: string;
  adamForm: 'keras' | 'tfjs';
  /** The largest relative loss difference the target allows. */
  goal: number;
}

export interface StepsSuiteResult {
  steps: number;
  batchSize: number;
  note: string;
  runs: StepsRun[];
  unavailable: Array<{ oracle: OracleId; reason: string }>;
  oracleDifferences: OracleDifference[];
  headlines: StepsHeadline[];
}

export interface CnnSuiteResult {
  /** describeModel(CNN). */
  layers: string;
  epoch?: EpochSuiteResult;
  steps?: StepsSuiteResult;
  parity?: AccuracySuiteResult;
  /** cnn-early: accuracy with a validation split and early stopping, as a Keras user trains. */
  early?: AccuracySuiteResult;
}

export interface TargetCheck {
  name: string;
  goal: string;
  measured: string;
  met: boolean;
}

export interface BenchResult {
  version: 2;
  quick: boolean;
  command: string;
  machine: MachineInfo;
  dataset: { dir: string; trainSamples: number; testSamples: number };
  model: typeof MODEL;
  suites: SuiteName[];
  kernels?: KernelSuiteResult;
  kernelsMarkdown?: string;
  epoch?: EpochSuiteResult;
  parity?: AccuracySuiteResult;
  steps?: StepsSuiteResult;
  conv?: ConvSuiteResult;
  convMarkdown?: string;
  /** The tutorial CNN: one epoch per engine, step parity, and (cnn-parity) accuracy. */
  cnn?: CnnSuiteResult;
  targets: TargetCheck[];
  wallSeconds: number;
}
