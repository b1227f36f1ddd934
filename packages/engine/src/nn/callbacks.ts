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
  /** Mean loss and accuracy so far this epoch (weighted by batch size, as Keras shows them). */
  loss: number;
  accuracy?: number;
  /** Samples in this batch. */
  size: number;
}

export interface Callback {
  setModel?(model: Sequential): void;
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
 * With `restoreBestWeights`, put back the weights of the best epoch when stopping.
 */
export class EarlyStopping implements Callback {
  readonly monitor: string;
  readonly minDelta: number;
  readonly patience: number;
  readonly restoreBestWeights: boolean;
  /** 0-based epoch at which training stopped, or 0 if it ran to the end. */
  stoppedEpoch = 0;
  bestEpoch = 0;
  best = Infinity;
  private wait = 0;
  private readonly sign: 1 | -1;
  private bestWeights?: Float32Array[];
  private model?: Sequential;
  private readonly log: Log;
  private resumeFrom?: EarlyStoppingState;

  constructor({ monitor = 'val_loss', minDelta = 0, patience = 0, mode = 'auto', restoreBestWeights = false, log = console.log }: EarlyStoppingOptions = {}) {
    if (!Number.isInteger(patience) || patience < 0) throw new ConfigError(`early stopping: patience must be a non-negative integer, got ${patience}`);
    this.monitor = monitor;
    this.minDelta = Math.abs(minDelta);
    this.patience = patience;
    this.restoreBestWeights = restoreBestWeights;
    // Accuracy-like metrics improve upwards, losses downwards (Keras's 'auto').
    const maximize = mode === 'max' || (mode === 'auto' && monitor.includes('acc'));
    this.sign = maximize ? -1 : 1;
    this.log = log;
  }

  setModel(model: Sequential): void {
    this.model = model;
  }

  onTrainBegin(): void {
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
    const value = logs[this.monitor];
    if (value === undefined) {
      this.log(`Early stopping conditioned on metric \`${this.monitor}\` which is not available. Available metrics are: ${Object.keys(logs).join(',')}`);
      return;
    }
    const score = this.sign * value;
    if (score < this.best - this.minDelta) {
      this.best = score;
      this.bestEpoch = epoch;
      this.wait = 0;
      if (this.restoreBestWeights) this.bestWeights = this.model?.getWeights().map((w) => w.values.slice());
      return;
    }
    this.wait++;
    if (this.wait >= this.patience && epoch > 0 && this.model) {
      this.stoppedEpoch = epoch;
      this.model.stopTraining = true;
      if (this.restoreBestWeights && this.bestWeights) {
        this.log(`Restoring model weights from the end of the best epoch: ${this.bestEpoch + 1}.`);
        this.model.setWeights(this.bestWeights);
      }
    }
  }

  onTrainEnd(): void {
    if (this.stoppedEpoch > 0) this.log(`Epoch ${this.stoppedEpoch + 1}: early stopping`);
  }
}

/**
 * Stop as soon as a batch's loss is NaN or infinite. Unlike Keras, the bad batch's update is
 * not applied, so the model keeps the last good weights.
 */
export class TerminateOnNaN implements Callback {
  terminatedAt?: number;
  constructor(private readonly log: Log = console.log) {}
  onNonFiniteLoss(batch: number, loss: number): boolean {
    this.terminatedAt = batch;
    this.log(`Batch ${batch}: invalid loss ${loss}, terminating training; keeping the weights from before this batch`);
    return true;
  }
}
