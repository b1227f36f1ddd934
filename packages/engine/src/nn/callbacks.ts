/**
 * Training callbacks with Keras's semantics: EarlyStopping and TerminateOnNaN live here;
 * callbacks that write files (checkpoints, CSV logs) live with the code that owns the files.
 */
import { ConfigError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import type { Layer, Parameter } from './layers.js';
import type { Sequential } from './model.js';

/** What `fit` reports at the end of an epoch (val_* only with validation data). */
export interface EpochLogs {
  loss: number;
  accuracy?: number;
  val_loss?: number;
  val_accuracy?: number;
  /** Wall-clock seconds the epoch took, validation included. */
  seconds: number;
  [metric: string]: number | undefined;
}

export interface BatchLogs {
  /** Mean loss and metrics so far this epoch (weighted by batch size, as Keras shows them). */
  loss: number;
  accuracy?: number;
  /** Samples in this batch. */
  size: number;
  [metric: string]: number | undefined;
}

/** What fit tells its callbacks before training (Keras's `params`). */
export interface TrainingParams {
  epochs: number;
  /** Batches per epoch. */
  steps: number;
  batchSize: number;
}

export interface Callback {
  setModel?(model: Sequential): void;
  setParams?(params: TrainingParams): void;
  onTrainBegin?(): void | Promise<void>;
  onEpochBegin?(epoch: number): void | Promise<void>;
  onBatchEnd?(batch: number, logs: BatchLogs): void;
  onEpochEnd?(epoch: number, logs: EpochLogs): void | Promise<void>;
  onTrainEnd?(): void | Promise<void>;
  /**
   * Called (before the update is applied) when a batch's loss is NaN or infinite. Returning true
   * stops training with the weights from before that batch.
   */
  onNonFiniteLoss?(batch: number, loss: number): boolean;

  // Step observers (see learn/trace.ts). Only callbacks with onGradients or onUpdate are asked,
  // and only steps they observe keep the layer outputs, so training without them costs nothing.
  /** Whether to observe step `step` (0-based count of updates before it). Default: every step. */
  observesStep?(step: number): boolean;
  /** After backward, before the optimizer update: every parameter's `.grad` is filled in. */
  onGradients?(step: StepView): void;
  /** Right after the optimizer update: the weights are new, `.grad` still holds what was used. */
  onUpdate?(step: StepView): void;
}

/**
 * One training step as an observer sees it. Every tensor is released when the step ends, so
 * copy what you need during the call.
 */
export interface StepView {
  /** Updates applied before this one (the optimizer's iteration count): 0 for the first step. */
  step: number;
  /** 0-based epoch and batch within it. */
  epoch: number;
  batch: number;
  /** Mean loss of the batch, before the update. */
  loss: number;
  /** The batch as the first layer sees it, and its targets. */
  input: Tensor;
  targets: Tensor;
  /** Every layer with its output for this batch, in order. */
  layers: ReadonlyArray<{ layer: Layer; output: Tensor }>;
  /** The trainable parameters, in `model.parameters()` order. */
  parameters: readonly Parameter[];
}

type Log = (message: string) => void;

/** Whether a monitored value is better when larger: accuracy-like metrics improve upwards, losses downwards (Keras's 'auto'). */
export function improvesUpward(monitor: string, mode: 'auto' | 'min' | 'max' = 'auto'): boolean {
  return mode === 'max' || (mode === 'auto' && monitor.includes('acc'));
}

export interface EarlyStoppingOptions {
  monitor?: string;
  minDelta?: number;
  patience?: number;
  mode?: 'auto' | 'min' | 'max';
  restoreBestWeights?: boolean;
  log?: Log;
}

/** EarlyStopping's progress; `best` is the monitored value times -1 for metrics that improve upwards. */
export interface EarlyStoppingState {
  wait: number;
  best: number;
  bestEpoch: number;
  stoppedEpoch: number;
  bestWeights?: Float32Array[];
}

/**
 * Stop when the monitored value has not improved by more than `minDelta` for `patience` epochs.
 * With `restoreBestWeights`, put back the weights of the best epoch when training ends, as Keras 3
 * does: whether this callback stopped it or it ran all its epochs. A run stopped inside an epoch
 * (interrupted, or a non-finite loss) or by another callback keeps its current weights, so that it
 * can be resumed or inspected where it stopped.
 */
export class EarlyStopping implements Callback {
  readonly monitor: string;
  readonly minDelta: number;
  readonly patience: number;
  readonly restoreBestWeights: boolean;
  /** 0-based epoch at which training stopped, or 0 if it ran to the end. */
  stoppedEpoch = 0;
  bestEpoch = 0;
  /** The best epoch whose weights were put back when training ended, if they were. */
  restoredEpoch?: number;
  best = Infinity;
  private wait = 0;
  private readonly sign: 1 | -1;
  private bestWeights?: Float32Array[];
  private model?: Sequential;
  private readonly log: Log;
  private resumeFrom?: EarlyStoppingState;
  private epochs = 0;
  private lastEpochEnded = -1;

  constructor({ monitor = 'val_loss', minDelta = 0, patience = 0, mode = 'auto', restoreBestWeights = false, log = console.log }: EarlyStoppingOptions = {}) {
    if (!Number.isInteger(patience) || patience < 0) throw new ConfigError(`early stopping: patience must be a non-negative integer, got ${patience}`);
    this.monitor = monitor;
    this.minDelta = Math.abs(minDelta);
    this.patience = patience;
    this.restoreBestWeights = restoreBestWeights;
    this.sign = improvesUpward(monitor, mode) ? -1 : 1;
    this.log = log;
  }

  setModel(model: Sequential): void {
    this.model = model;
  }

  setParams(params: TrainingParams): void {
    this.epochs = params.epochs;
  }

  onTrainBegin(): void {
    this.restoredEpoch = undefined;
    this.lastEpochEnded = -1;
    const state = this.resumeFrom;
    this.resumeFrom = undefined;
    this.wait = state?.wait ?? 0;
    this.stoppedEpoch = state?.stoppedEpoch ?? 0;
    this.best = state?.best ?? Infinity;
    this.bestWeights = state?.bestWeights?.map((w) => w.slice());
    this.bestEpoch = state?.bestEpoch ?? 0;
  }

  /** Everything needed to continue after an interruption exactly as if there had been none. */
  getState(): EarlyStoppingState {
    return { wait: this.wait, best: this.best, bestEpoch: this.bestEpoch, stoppedEpoch: this.stoppedEpoch, bestWeights: this.bestWeights?.map((w) => w.slice()) };
  }

  /** Continue from `getState()` of an earlier run: applied when the next training begins, instead of starting afresh. */
  setState(state: EarlyStoppingState): void {
    this.resumeFrom = state;
  }

  onEpochEnd(epoch: number, logs: EpochLogs): void {
    this.lastEpochEnded = epoch;
    const value = logs[this.monitor];
    if (value === undefined) {
      this.log(`Early stopping conditioned on metric \`${this.monitor}\` which is not available. Available metrics are: ${Object.keys(logs).join(',')}`);
      return;
    }
    // Until an epoch improves (a NaN never does), the first epoch's weights count as the best.
    if (this.restoreBestWeights && !this.bestWeights) this.keepBest(epoch);
    const score = this.sign * value;
    if (score < this.best - this.minDelta) {
      this.best = score;
      this.wait = 0;
      this.keepBest(epoch);
      return;
    }
    this.wait++;
    if (this.wait >= this.patience && epoch > 0 && this.model) {
      this.stoppedEpoch = epoch;
      this.model.stopTraining = true;
    }
  }

  onTrainEnd(): void {
    if (this.stoppedEpoch > 0) this.log(`Epoch ${this.stoppedEpoch + 1}: early stopping`);
    // Stopped inside an epoch, or after one by something else: the last epoch to end is neither.
    const endedNormally = this.lastEpochEnded >= 0 && ((this.stoppedEpoch > 0 && this.stoppedEpoch === this.lastEpochEnded) || this.lastEpochEnded === this.epochs - 1);
    if (this.restoreBestWeights && this.bestWeights && this.model && endedNormally) {
      this.log(`Restoring model weights from the end of the best epoch: ${this.bestEpoch + 1}.`);
      this.model.setWeights(this.bestWeights);
      this.restoredEpoch = this.bestEpoch;
    }
  }

  private keepBest(epoch: number): void {
    this.bestEpoch = epoch;
    if (this.restoreBestWeights) this.bestWeights = this.model?.getWeights().map((w) => w.values.slice());
  }
}

export interface TerminateOnNaNOptions {
  log?: Log;
  /** Keep a copy of the weights at the end of every epoch whose metrics are all finite (see `lastFinite`). Default true. */
  keepLastFinite?: boolean;
}

/**
 * Stop as soon as a batch's loss is NaN or infinite, as Keras's TerminateOnNaN does, and say
 * where, counting epochs and batches from 1 as the progress bar does. Unlike Keras, the bad
 * batch's update is not applied, so the model keeps the weights from before that batch; and the
 * weights at the end of the last epoch whose metrics were all finite stay available in
 * `lastFinite`, for when the weights from before the bad batch are themselves unusable.
 */
export class TerminateOnNaN implements Callback {
  /** Where training stopped (0-based epoch and batch), once it has. */
  terminatedAt?: { epoch: number; batch: number; loss: number };
  /** Weights at the end of the last epoch (0-based) whose loss and metrics were all finite. */
  lastFinite?: { epoch: number; weights: Float32Array[] };
  private readonly log: Log;
  private readonly keepLastFinite: boolean;
  private params?: TrainingParams;
  private epoch = 0;
  private model?: Sequential;

  constructor(options: Log | TerminateOnNaNOptions = {}) {
    const { log = console.log, keepLastFinite = true } = typeof options === 'function' ? { log: options } : options;
    this.log = log;
    this.keepLastFinite = keepLastFinite;
  }

  setModel(model: Sequential): void {
    this.model = model;
  }

  setParams(params: TrainingParams): void {
    this.params = params;
  }

  onEpochBegin(epoch: number): void {
    this.epoch = epoch;
  }

  onEpochEnd(epoch: number, logs: EpochLogs): void {
    if (!this.keepLastFinite || !this.model) return;
    const finite = Object.entries(logs).every(([, value]) => value === undefined || Number.isFinite(value));
    if (finite) this.lastFinite = { epoch, weights: this.model.getWeights().map((w) => w.values) };
  }

  onNonFiniteLoss(batch: number, loss: number): boolean {
    this.terminatedAt = { epoch: this.epoch, batch, loss };
    const epochs = this.params ? `/${this.params.epochs}` : '';
    const steps = this.params ? `/${this.params.steps}` : '';
    this.log(`Epoch ${this.epoch + 1}${epochs}, batch ${batch + 1}${steps}: invalid loss ${loss}, terminating training`);
    return true;
  }
}

export interface ReduceLROnPlateauOptions {
  monitor?: string;
  /** new_lr = lr · factor; below 1. */
  factor?: number;
  /** Epochs without improvement before the rate is lowered. */
  patience?: number;
  mode?: 'auto' | 'min' | 'max';
  /** An improvement must beat the best by more than this. */
  minDelta?: number;
  /** Epochs to wait after lowering the rate before counting again. */
  cooldown?: number;
  /** The rate is never lowered below this. */
  minLr?: number;
  log?: Log;
}

/** ReduceLROnPlateau's progress, to continue a run exactly after an interruption. */
export interface ReduceLROnPlateauState {
  /** Best monitored value so far, or null before the first epoch. */
  best: number | null;
  wait: number;
  cooldownCounter: number;
}

/**
 * Lower the learning rate when the monitored value stops improving, as Keras's ReduceLROnPlateau
 * (defaults: val_loss, factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0):
 *   at each epoch's end, in cooldown: count it down and reset the wait;
 *   improved (by more than min_delta) on the best: remember it, reset the wait;
 *   otherwise, out of cooldown: wait += 1, and at `patience` set lr = max(lr · factor, min_lr)
 *   (if lr is still above min_lr), start the cooldown and reset the wait.
 * The optimizer's learning rate must be a number, not a schedule (as in Keras).
 */
export class ReduceLROnPlateau implements Callback {
  readonly monitor: string;
  readonly factor: number;
  readonly patience: number;
  readonly minDelta: number;
  readonly cooldown: number;
  readonly minLr: number;
  private readonly maximize: boolean;
  private readonly log: Log;
  private model?: Sequential;
  private best: number | null = null;
  private wait = 0;
  private cooldownCounter = 0;
  private resumeFrom?: ReduceLROnPlateauState;

  constructor({ monitor = 'val_loss', factor = 0.1, patience = 10, mode = 'auto', minDelta = 1e-4, cooldown = 0, minLr = 0, log = console.log }: ReduceLROnPlateauOptions = {}) {
    if (!(factor > 0 && factor < 1)) throw new ConfigError(`ReduceLROnPlateau: factor must be in (0, 1), got ${factor}`);
    if (!Number.isInteger(patience) || patience < 0) throw new ConfigError(`ReduceLROnPlateau: patience must be a non-negative integer, got ${patience}`);
    if (!Number.isInteger(cooldown) || cooldown < 0) throw new ConfigError(`ReduceLROnPlateau: cooldown must be a non-negative integer, got ${cooldown}`);
    if (!(minLr >= 0)) throw new ConfigError(`ReduceLROnPlateau: min_lr must be zero or more, got ${minLr}`);
    this.monitor = monitor;
    this.factor = factor;
    this.patience = patience;
    this.minDelta = Math.abs(minDelta);
    this.cooldown = cooldown;
    this.minLr = minLr;
    this.maximize = improvesUpward(monitor, mode);
    this.log = log;
  }

  setModel(model: Sequential): void {
    this.model = model;
  }

  onTrainBegin(): void {
    const state = this.resumeFrom;
    this.resumeFrom = undefined;
    this.best = state?.best ?? null;
    this.wait = state?.wait ?? 0;
    this.cooldownCounter = state?.cooldownCounter ?? 0;
    if (this.model?.optimizer?.schedule) throw new ConfigError('ReduceLROnPlateau: the optimizer\'s learning rate follows a schedule, so it cannot be lowered (as in Keras)');
  }

  getState(): ReduceLROnPlateauState {
    return { best: this.best, wait: this.wait, cooldownCounter: this.cooldownCounter };
  }

  /** Continue from `getState()` of an earlier run, when the next training begins. */
  setState(state: ReduceLROnPlateauState): void {
    this.resumeFrom = state;
  }

  onEpochEnd(epoch: number, logs: EpochLogs): void {
    const current = logs[this.monitor];
    const optimizer = this.model?.optimizer;
    if (current === undefined) {
      this.log(`Learning rate reduction is conditioned on metric \`${this.monitor}\` which is not available. Available metrics are: ${Object.keys(logs).join(',')}`);
      return;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.wait = 0;
    }
    const improved = this.best === null || (this.maximize ? current - this.minDelta > this.best : current + this.minDelta < this.best);
    if (improved) {
      this.best = current;
      this.wait = 0;
      return;
    }
    if (this.cooldownCounter > 0 || !optimizer) return;
    this.wait++;
    if (this.wait < this.patience) return;
    const old = optimizer.learningRate;
    if (old > Math.fround(this.minLr)) {
      const lowered = Math.max(old * this.factor, this.minLr);
      optimizer.learningRate = lowered;
      this.log(`Epoch ${epoch + 1}: ReduceLROnPlateau reducing learning rate to ${lowered}.`);
      this.cooldownCounter = this.cooldown;
      this.wait = 0;
    }
  }
}
