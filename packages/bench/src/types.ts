/**
 * The shapes of everything the bench measures: the tasks a worker process runs, what it sends
 * back, and the result file written at the end of a run.
 */
import type { DatasetFiles } from '@descent/engine';
import type { KernelSuiteResult } from './kernel-suite.js';

/** Every training engine the whole-epoch suite compares. */
export const ENGINES = ['descent-wasm', 'descent-ts', 'tfjs-wasm', 'tfjs-cpu', 'tfjs-node'] as const;
export type EngineId = (typeof ENGINES)[number];

export const ENGINE_LABELS: Readonly<Record<EngineId, string>> = {
  'descent-wasm': 'descent (wasm)',
  'descent-ts': 'descent (ts)',
  'tfjs-wasm': '@tensorflow/tfjs-backend-wasm',
  'tfjs-cpu': '@tensorflow/tfjs (cpu)',
  'tfjs-node': '@tensorflow/tfjs-node',
};

export const SUITES = ['kernels', 'epoch', 'parity', 'steps'] as const;
export type SuiteName = (typeof SUITES)[number];

/** The model and hyperparameters every engine trains. */
export const MODEL = {
  layers: 'Flatten -> Dense 128 ReLU -> Dense 10 softmax',
  optimizer: 'Adam',
  learningRate: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-7,
  batchSize: 32,
  loss: 'sparse categorical cross-entropy',
} as const;

/** Inference runs the whole test set as one batch in both engines. */
export const INFERENCE_BATCH = 10_000;

// ---- worker tasks and replies ------------------------------------------------------------

export interface EpochTask {
  kind: 'epoch';
  engine: EngineId;
  files: DatasetFiles;
  seed: number;
  inferenceRuns: number;
}

export interface AccuracyTask {
  kind: 'accuracy';
  engine: 'descent-wasm' | 'tfjs-wasm';
  files: DatasetFiles;
  seed: number;
  epochs: number;
}

export interface StepsTask {
  kind: 'steps';
  /** The TensorFlow.js backend that plays the oracle. */
  tfjsBackend: 'wasm' | 'cpu';
  files: DatasetFiles;
  seed: number;
  steps: number;
}

export type WorkerTask = EpochTask | AccuracyTask | StepsTask;

export interface Unavailable {
  available: false;
  reason: string;
}

export interface EpochRun {
  available: true;
  /** The backend that actually ran (descent's backendName(), tfjs's getBackend()). */
  backend: string;
  /** Why descent's wasm backend fell back to the TS kernels, when it did. */
  fallbackReason?: string;
  seconds: number;
  trainLoss: number;
  testAccuracy: number;
  inferenceMs: number[];
  /** Process high-water mark right after the epoch (before inference). */
  peakRssBytes: number;
  /** The same at the end, after the inference runs. */
  peakRssAfterInferenceBytes: number;
}

export interface AccuracyRun {
  backend: string;
  fallbackReason?: string;
  testAccuracy: number;
  seconds: number;
  /** Test samples whose label probability tfjs's loss would clip (p < 1e-7 or p > 1 - 1e-7). */
  clippedFraction: number;
}

/** One descent configuration trained on the same batches as the tfjs oracle. */
export interface StepVariant {
  descentBackend: string;
  fallbackReason?: string;
  /** 'keras': descent's default Adam; 'tfjs': Adam doing TensorFlow.js's arithmetic. */
  adamForm: 'keras' | 'tfjs';
  losses: number[];
  maxRelativeLossDifference: number;
  /** Step (1-based) where the relative difference peaks. */
  worstStep: number;
  maxAbsWeightDifference: number;
}

export interface StepsRun {
  tfjsBackend: string;
  steps: number;
  batchSize: number;
  /** Weight names and shapes as tfjs exported them (tfjs Layers format), in import order. */
  importedWeights: Array<{ name: string; shape: number[] }>;
  tfjsLosses: number[];
  /** Largest absolute value among tfjs's final weights, to put the weight differences in scale. */
  maxAbsWeight: number;
  /** Samples (over all steps) whose label probability tfjs's loss clipped. */
  clippedSamples: number;
  variants: StepVariant[];
}

export type WorkerReply =
  | { ok: true; result: EpochRun | Unavailable | AccuracyRun | StepsRun }
  | { ok: false; error: string; stack?: string };

// ---- the result file ---------------------------------------------------------------------

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  hostname: string;
  date: string;
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
  engine: 'descent-wasm' | 'tfjs-wasm';
  label: string;
  backend: string;
  fallbackReason?: string;
  seeds: number[];
  accuracies: number[];
  mean: number;
  sd: number;
  secondsPerRun: number[];
  clippedFraction: number[];
}

export interface AccuracySuiteResult {
  epochs: number;
  trainSamples: number;
  testSamples: number;
  note: string;
  engines: AccuracyEngineResult[];
  /** descent mean minus tfjs mean, in percentage points. */
  differencePoints: number;
}

export interface StepsSuiteResult {
  steps: number;
  batchSize: number;
  note: string;
  runs: StepsRun[];
  /** Max relative loss difference between tfjs (wasm) and tfjs (cpu) over the same steps. */
  tfjsBackendsDifference: number;
  /** The headline comparison: descent (wasm) with tfjs's Adam form against tfjs (wasm). */
  primary: { tfjsBackend: string; descentBackend: string; adamForm: string; maxRelativeLossDifference: number; maxAbsWeightDifference: number };
}

export interface TargetCheck {
  name: string;
  goal: string;
  measured: string;
  met: boolean;
}

export interface BenchResult {
  version: 1;
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
  targets: TargetCheck[];
  wallSeconds: number;
}
