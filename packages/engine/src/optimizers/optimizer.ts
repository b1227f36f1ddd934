import { ConfigError } from '../errors.js';
import type { Parameter } from '../nn/layers.js';
import type { LearningRateSchedule, ScheduleConfig } from './schedules.js';

/** Saved optimizer state: its step count and per-parameter slot buffers, in parameter order. */
export interface OptimizerState {
  iterations: number;
  slots: Record<string, number[][]>;
}

/** An optimizer's settings under Keras's names; `learning_rate` is a number or a serialised schedule. */
export type OptimizerConfig = Record<string, number | boolean | ScheduleConfig>;

export type OptimizerName = 'adam' | 'sgd' | 'rmsprop';

export interface Optimizer {
  readonly name: OptimizerName;
  /**
   * The learning rate of the next update. Settable (ReduceLROnPlateau lowers it) unless it comes
   * from a schedule, as in Keras.
   */
  learningRate: number;
  /** The schedule the learning rate follows, if any. */
  readonly schedule?: LearningRateSchedule;
  /** Number of updates applied so far. */
  readonly iterations: number;
  /** Apply one update to every parameter from its `.grad`. */
  step(parameters: readonly Parameter[]): void;
  config(): OptimizerConfig;
  getState(parameters: readonly Parameter[]): OptimizerState;
  setState(parameters: readonly Parameter[], state: OptimizerState): void;
  /** Gives the slot buffers back to the backend (call it when dropping an optimizer that trained). */
  dispose?(): void;
}

/** A fixed learning rate, or a schedule of the step count: what every optimizer here shares. */
export abstract class LearningRateOptimizer {
  abstract readonly name: OptimizerName;
  iterations = 0;
  readonly schedule?: LearningRateSchedule;
  private rate: number;

  constructor(name: OptimizerName, learningRate: number | LearningRateSchedule) {
    if (typeof learningRate === 'number') {
      checkRate(name, learningRate);
      this.rate = learningRate;
    } else {
      this.schedule = learningRate;
      this.rate = learningRate.at(0);
    }
  }

  get learningRate(): number {
    return this.schedule ? this.schedule.at(this.iterations) : this.rate;
  }

  set learningRate(value: number) {
    if (this.schedule) throw new ConfigError(`${this.name}: the learning rate follows a schedule, so it cannot be set (as in Keras)`);
    checkRate(this.name, value);
    this.rate = value;
  }

  /** `learning_rate` as Keras saves it: the number, or the schedule's config. */
  protected learningRateConfig(): number | ScheduleConfig {
    return this.schedule ? this.schedule.getConfig() : this.rate;
  }
}

function checkRate(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) throw new ConfigError(`${name}: learning rate must be a positive number, got ${value}`);
}

/**
 * Visits the parameters that have a gradient, the largest last. Updates are independent, so the
 * order changes no result; but a backend may leave a split update running on its worker threads
 * until the next kernel call (see ThreadPool.start), and after the last one the step's remaining
 * JavaScript runs beside it: that pays most for the largest.
 */
export function forEachLargestLast(parameters: readonly Parameter[], update: (parameter: Parameter) => void): void {
  let largest = -1;
  for (let i = 0; i < parameters.length; i++) {
    if (parameters[i].tensor.grad && (largest < 0 || parameters[i].tensor.size > parameters[largest].tensor.size)) largest = i;
  }
  for (let i = 0; i < parameters.length; i++) if (i !== largest && parameters[i].tensor.grad) update(parameters[i]);
  if (largest >= 0) update(parameters[largest]);
}
