/**
 * Learning-rate schedules, as Keras defines them: a function of the optimizer's step count (the
 * number of updates applied before this one), serialised under Keras's class and config names.
 *
 *   ExponentialDecay   lr(step) = initial_learning_rate · decay_rate^(step / decay_steps)
 *                      with staircase, the exponent is floor(step / decay_steps): the rate
 *                      drops by decay_rate every decay_steps steps instead of smoothly.
 */
import { ConfigError } from '../errors.js';

/** A schedule as Keras serialises it inside an optimizer's config (`learning_rate`). */
export interface ScheduleConfig {
  class_name: string;
  config: Record<string, number | boolean | string>;
}

export interface LearningRateSchedule {
  /** The learning rate for the update that follows `step` earlier ones. */
  at(step: number): number;
  getConfig(): ScheduleConfig;
}

export interface ExponentialDecayOptions {
  initialLearningRate: number;
  decaySteps: number;
  decayRate: number;
  staircase?: boolean;
}

export class ExponentialDecay implements LearningRateSchedule {
  readonly initialLearningRate: number;
  readonly decaySteps: number;
  readonly decayRate: number;
  readonly staircase: boolean;

  constructor({ initialLearningRate, decaySteps, decayRate, staircase = false }: ExponentialDecayOptions) {
    if (!(initialLearningRate > 0) || !Number.isFinite(initialLearningRate)) throw new ConfigError(`exponential decay: initial learning rate must be a positive number, got ${initialLearningRate}`);
    if (!Number.isInteger(decaySteps) || decaySteps < 1) throw new ConfigError(`exponential decay: decay steps must be a positive integer, got ${decaySteps}`);
    if (!(decayRate > 0) || !Number.isFinite(decayRate)) throw new ConfigError(`exponential decay: decay rate must be a positive number, got ${decayRate}`);
    this.initialLearningRate = initialLearningRate;
    this.decaySteps = decaySteps;
    this.decayRate = decayRate;
    this.staircase = staircase;
  }

  at(step: number): number {
    const p = step / this.decaySteps;
    return this.initialLearningRate * this.decayRate ** (this.staircase ? Math.floor(p) : p);
  }

  getConfig(): ScheduleConfig {
    return {
      class_name: 'ExponentialDecay',
      config: { initial_learning_rate: this.initialLearningRate, decay_steps: this.decaySteps, decay_rate: this.decayRate, staircase: this.staircase, name: 'ExponentialDecay' },
    };
  }
}

export const exponentialDecay = (options: ExponentialDecayOptions): ExponentialDecay => new ExponentialDecay(options);

/** A schedule from its Keras config, e.g. as saved with a model. */
export function scheduleFromConfig(saved: unknown): LearningRateSchedule {
  const { class_name: name, config } = (saved ?? {}) as Partial<ScheduleConfig>;
  if (name === 'ExponentialDecay' && config && typeof config === 'object') {
    const num = (key: string): number => (typeof config[key] === 'number' ? (config[key] as number) : NaN);
    return new ExponentialDecay({ initialLearningRate: num('initial_learning_rate'), decaySteps: num('decay_steps'), decayRate: num('decay_rate'), staircase: config.staircase === true });
  }
  throw new ConfigError(`unknown learning-rate schedule "${String(name)}"`);
}
