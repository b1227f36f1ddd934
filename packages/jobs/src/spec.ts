/**
 * A training job: everything needed to train one model anywhere (a worker thread here, a
 * `descent worker` on another machine), as plain JSON. The same spec and the same data give the
 * same weights, bit for bit, wherever it runs: the seed drives initialisation, shuffling and dropout.
 */
import {
  base64ToFloat32, float32ToBase64, type DatasetName, type EarlyStoppingState, type HistoryData, type SavedOptimizer,
  type Sequential, type TrainingPosition,
} from '@descent/engine';

/**
 * The classifier to build: with `layers` (a one-line definition, the grammar of @descent/engine's
 * parseLayers, e.g. 'conv2d:32:3:relu,maxpool:2,flatten,dense:128:relu'), those layers and a
 * softmax output; otherwise Flatten → Dense(h, relu) [→ Dropout(p)] … → Dense(classes, softmax).
 */
export interface ModelDefinition {
  hidden: number[];
  dropout: number;
  layers?: string | null;
}

export interface OptimizerSpec {
  name: 'adam' | 'sgd';
  learningRate: number;
  /** SGD only. */
  momentum?: number;
}

/**
 * Where a worker finds the images: a dataset name and, optionally, the folder of its IDX files;
 * or, with `store`, a dataset of that name in a descent store (a --db value), which the worker
 * reads itself.
 */
export interface DataRef {
  dataset: DatasetName | (string & {});
  dir: string | null;
  store?: string | null;
}

export type MetricName = 'val_accuracy' | 'val_loss' | 'accuracy' | 'loss';

/** A metric and whether bigger is better. */
export interface Objective {
  name: MetricName;
  direction: 'max' | 'min';
}

export interface EarlyStoppingSpec {
  monitor: MetricName;
  patience: number;
  restoreBestWeights: boolean;
}

/** Weights as JSON: one base64 string of little-endian float32 per tensor, in parameter order. */
export interface EncodedWeights {
  shapes: number[][];
  values: string[];
}

export interface TrainingJobSpec {
  /** Unique among the jobs of one runner (a search uses its trial ids). */
  id: string;
  data: DataRef;
  model: ModelDefinition;
  optimizer: OptimizerSpec;
  /** Train up to this epoch count (Keras's `epochs`, counted from 0 even when starting later). */
  epochs: number;
  /** First epoch to train (Keras's `initial_epoch`): set when continuing from `initialWeights`. */
  initialEpoch: number;
  batchSize: number;
  validationSplit: number;
  seed: number;
  earlyStopping: EarlyStoppingSpec | null;
  /** Keep (and return) the weights of the epoch that is best by this metric, as keras-tuner does. Null: the last epoch's. */
  keepBest: Objective | null;
  /** Start from these weights instead of fresh ones (a continued Hyperband trial). */
  initialWeights: EncodedWeights | null;
  /** Send a progress event every this many batches (0: only at the end of each epoch). */
  progressEvery: number;
  /** Send a checkpoint event at the end of every epoch (and when cancelled), to resume from later. */
  checkpoints: boolean;
  /** Continue exactly from a checkpoint of this same job. */
  resume: JobCheckpoint | null;
  /** Also test the kept weights on the dataset's test split (result.test). */
  evaluate?: boolean;
}

/** The kept weights on the test split: Keras's loss and accuracy, and confusion[true][predicted]. */
export interface JobEvaluation {
  loss: number;
  accuracy: number;
  confusion: number[][];
  count: number;
}

/** Everything needed to continue a job so that it ends with the same weights as an uninterrupted run. */
export interface JobCheckpoint {
  jobId: string;
  /** Epochs fully trained (counted from 0, like `epochs`). */
  epochsCompleted: number;
  /** Where an interrupted epoch stopped; absent at an epoch boundary. */
  position: TrainingPosition | null;
  weights: EncodedWeights;
  optimizer: Omit<SavedOptimizer, 'state'> & { state: { iterations: number; slots: Record<string, string[]> } };
  random: number[];
  history: HistoryData;
  earlyStopping: (Omit<EarlyStoppingState, 'best' | 'bestWeights'> & { best: number | null; bestWeights: EncodedWeights | null }) | null;
  best: BestEpoch | null;
}

export interface BestEpoch {
  /** 0-based epoch. */
  epoch: number;
  value: number;
  weights: EncodedWeights;
}

export type JobStatus = 'complete' | 'stopped-early' | 'terminated-nan' | 'cancelled';

export interface JobResult {
  id: string;
  status: JobStatus;
  /** The epochs this job trained (0-based numbers, from initialEpoch). */
  history: HistoryData;
  /** The best epoch by `keepBest`, when asked for. */
  best: { epoch: number; value: number } | null;
  /** The weights kept: the best epoch's with `keepBest`, else the last (or early stopping's restored ones). */
  weights: EncodedWeights;
  /** Wall-clock seconds of training, validation included. */
  seconds: number;
  /** Set when cancelled: where to resume from. */
  checkpoint: JobCheckpoint | null;
  /** Threads the job's WASM kernels could use (set by the thread that ran it). */
  threads?: number;
  /** With `evaluate`, when the job finished (not cancelled) and the dataset has test images. */
  test?: JobEvaluation | null;
}

export interface BatchProgress {
  type: 'batch';
  jobId: string;
  epoch: number;
  /** Batches done in this epoch, and per epoch. */
  batch: number;
  batches: number;
  loss: number;
  accuracy: number | null;
}

export interface EpochProgress {
  type: 'epoch';
  jobId: string;
  epoch: number;
  loss: number;
  accuracy: number | null;
  val_loss: number | null;
  val_accuracy: number | null;
  seconds: number;
}

export interface CheckpointEvent {
  type: 'checkpoint';
  jobId: string;
  checkpoint: JobCheckpoint;
}

export type JobEvent = BatchProgress | EpochProgress | CheckpointEvent;

export function encodeWeights(model: Sequential): EncodedWeights {
  const weights = model.getWeights();
  return encodeArrays(weights.map((w) => w.values), weights.map((w) => w.shape));
}

export function encodeArrays(arrays: ReadonlyArray<ArrayLike<number>>, shapes: number[][]): EncodedWeights {
  return { shapes, values: arrays.map((values) => float32ToBase64(values)) };
}

export function decodeWeights(weights: EncodedWeights): Float32Array[] {
  return weights.values.map(base64ToFloat32);
}

/** A spec with the defaults a plain training run takes; `id`, `data`, `model` and `optimizer` are needed. */
export function trainingJob(spec: Pick<TrainingJobSpec, 'id' | 'data' | 'model' | 'optimizer'> & Partial<TrainingJobSpec>): TrainingJobSpec {
  return {
    epochs: 1,
    initialEpoch: 0,
    batchSize: 32,
    validationSplit: 0,
    seed: 42,
    earlyStopping: null,
    keepBest: null,
    initialWeights: null,
    progressEvery: 0,
    checkpoints: false,
    resume: null,
    ...spec,
  };
}

/** Bigger is better for accuracies, smaller for losses (Keras's 'auto'). */
export function objectiveOf(name: MetricName): Objective {
  return { name, direction: name.includes('acc') ? 'max' : 'min' };
}

/** Whether `a` is strictly better than `b` for the objective. */
export function better(objective: Objective, a: number, b: number): boolean {
  return objective.direction === 'max' ? a > b : a < b;
}
