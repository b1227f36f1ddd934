/**
 * descent's own training metadata, kept next to model.json in descent-training.json: what was
 * trained on what, the history, and everything an interrupted run needs to continue exactly
 * (optimizer moments, generator state, position inside the epoch). tfjs ignores this file.
 */
import { ConfigError, ModelFormatError } from '../errors.js';
import type { History, Sequential, TrainingPosition } from '../nn/model.js';
import { Adam } from '../optimizers/adam.js';
import type { Optimizer, OptimizerConfig, OptimizerName, OptimizerState } from '../optimizers/optimizer.js';
import { RMSprop } from '../optimizers/rmsprop.js';
import { scheduleFromConfig, type LearningRateSchedule } from '../optimizers/schedules.js';
import { Sgd } from '../optimizers/sgd.js';
import type { LoadedArtifacts } from './files.js';
import { modelFromArtifacts, type ModelFromArtifactsOptions } from './layers-format.js';

export type TrainingStatus = 'complete' | 'interrupted' | 'checkpoint' | 'stopped-early' | 'terminated-nan';

export interface SavedOptimizer {
  name: OptimizerName;
  /** Keras's names: learning_rate (a number, or a schedule's {class_name, config}), beta_1, rho, momentum, ... */
  config: OptimizerConfig;
  /** Step count and slot buffers (Adam's m and v, SGD's velocity), in parameter order. */
  state?: OptimizerState;
}

/** A History as plain arrays (epochs 0-based, as fit counts them). */
export interface HistoryData {
  epoch: number[];
  loss: number[];
  accuracy: number[];
  val_loss: number[];
  val_accuracy: number[];
  seconds: number[];
  /** Other metrics, under their Keras names (sparse_top_k_categorical_accuracy, val_...). */
  [metric: string]: number[];
}

export interface TrainingMetadata {
  status?: TrainingStatus;
  dataset?: string;
  classNames?: string[];
  seed?: number;
  backend?: string;
  /** Epochs fully trained. */
  epochsCompleted?: number;
  /** Epochs the run was asked for. */
  epochs?: number;
  /** Optimizer steps (batches) trained in all, and per epoch. */
  stepsCompleted?: number;
  stepsPerEpoch?: number;
  /** The run's settings (batch size, learning rate, ...), as the program that trained it names them. */
  hyperparameters?: Record<string, unknown>;
  optimizer?: SavedOptimizer;
  /** The model's generator state (`model.random.getState()`). */
  random?: number[];
  /** Where an interrupted epoch stopped (`History.stoppedAt`). */
  position?: TrainingPosition;
  history?: HistoryData;
  test?: { loss: number; accuracy: number };
  /** 0-based epoch whose weights were kept, when not the last one (the best checkpoint, or early stopping's restored weights). */
  weightsFromEpoch?: number;
  /** State of callbacks that must survive a resume (early stopping, checkpoints). */
  callbacks?: Record<string, unknown>;
}

/** The optimizer (with its state) and generator state of a model, ready to save. */
export function captureTrainingState(model: Sequential): Pick<TrainingMetadata, 'optimizer' | 'random'> {
  const optimizer = model.optimizer;
  return {
    random: model.random.getState(),
    ...(optimizer ? { optimizer: { name: optimizer.name, config: optimizer.config(), state: optimizer.getState(model.parameters()) } } : {}),
  };
}

/** A new optimizer with the saved configuration and, when saved, its state for `model`'s parameters. */
export function restoreOptimizer(model: Sequential, saved: SavedOptimizer): Optimizer {
  const optimizer = optimizerFromConfig(saved);
  if (saved.state) {
    try {
      optimizer.setState(model.parameters(), saved.state);
    } catch (err) {
      optimizer.dispose?.();
      throw err;
    }
  }
  return optimizer;
}

/** A saved run, rebuilt to continue training: its model (weights and generator state) and its optimizer. */
export interface RestoredRun {
  model: Sequential;
  optimizer: Optimizer;
  metadata: TrainingMetadata;
}

/**
 * Rebuilds a run from a loaded folder (loadModelArtifacts): the model with its weights, the
 * generator where it stopped, the optimizer with its state. Fails with a typed error, having
 * freed everything it allocated, when any part is missing or does not fit the model.
 */
export function restoreRun(loaded: LoadedArtifacts, options: Pick<ModelFromArtifactsOptions, 'seed'> = {}): RestoredRun {
  const metadata = loaded.metadata;
  const optimizer = metadata?.optimizer;
  if (!metadata || !optimizer?.state || !metadata.random) {
    // The warning names files in this folder: say their names only, the folder starts the message.
    const why = loaded.warnings[0]?.split(`${loaded.dir}/`).join('') ?? (metadata ? 'descent-training.json lacks the optimizer or generator state' : 'descent-training.json is missing');
    throw new ModelFormatError(loaded.dir, `holds no training state to resume from (${why})`);
  }
  const model = modelFromArtifacts(loaded.artifacts, {
    modelFile: loaded.modelFile,
    weightsFile: loaded.weightsFiles.length === 1 ? loaded.weightsFiles[0] : loaded.dir,
    seed: options.seed ?? metadata.seed,
  });
  try {
    model.random.setState(metadata.random);
    const restored = restoreOptimizer(model, optimizer);
    return { model, optimizer: restored, metadata };
  } catch (err) {
    model.dispose();
    if (err instanceof ConfigError) throw new ModelFormatError(`${loaded.dir}/descent-training.json`, err.message);
    throw err;
  }
}

/** An optimizer from a saved name and Keras-style config (learning_rate, beta_1, momentum, ...). */
export function optimizerFromConfig({ name, config }: Pick<SavedOptimizer, 'name' | 'config'>): Optimizer {
  const num = (key: string): number | undefined => (typeof config[key] === 'number' ? (config[key] as number) : undefined);
  const rate = config.learning_rate;
  const learningRate: number | LearningRateSchedule | undefined = rate !== null && typeof rate === 'object' ? scheduleFromConfig(rate) : num('learning_rate');
  if (name === 'adam') return new Adam({ learningRate, beta1: num('beta_1'), beta2: num('beta_2'), epsilon: num('epsilon') });
  if (name === 'sgd') return new Sgd({ learningRate, momentum: num('momentum'), nesterov: config.nesterov === true });
  if (name === 'rmsprop') return new RMSprop({ learningRate, rho: num('rho'), momentum: num('momentum'), epsilon: num('epsilon'), centered: config.centered === true });
  throw new ConfigError(`unknown optimizer "${String(name)}" in saved training state`);
}

export function historyData(history: History): HistoryData {
  return {
    epoch: [...history.epoch],
    loss: [...history.loss],
    accuracy: [...history.accuracy],
    val_loss: [...history.val_loss],
    val_accuracy: [...history.val_accuracy],
    seconds: [...history.seconds],
  };
}

export function emptyHistoryData(): HistoryData {
  return { epoch: [], loss: [], accuracy: [], val_loss: [], val_accuracy: [], seconds: [] };
}
