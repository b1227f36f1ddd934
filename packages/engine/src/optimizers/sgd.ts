/**
 * Stochastic gradient descent, as Keras defines it:
 *   plain:     w ← w - lr·g
 *   momentum:  v ← momentum·v - lr·g;  w ← w + v
 *   nesterov:  v ← momentum·v - lr·g;  w ← w + momentum·v - lr·g   (looks one step ahead)
 */
import { kernels } from '../backend/index.js';
import type { Storage } from '../backend/kernels.js';
import { ConfigError } from '../errors.js';
import type { Parameter } from '../nn/layers.js';
import { forEachLargestLast, LearningRateOptimizer, type Optimizer, type OptimizerConfig, type OptimizerState } from './optimizer.js';
import type { LearningRateSchedule } from './schedules.js';
import { freeSlots, readSlots, writeSlots } from './slots.js';

export interface SgdOptions {
  /** A number, or a schedule of the step count (e.g. ExponentialDecay). */
  learningRate?: number | LearningRateSchedule;
  momentum?: number;
  nesterov?: boolean;
}

export class Sgd extends LearningRateOptimizer implements Optimizer {
  readonly name = 'sgd';
  readonly momentum: number;
  readonly nesterov: boolean;
  private readonly velocity = new Map<Parameter['tensor'], Storage>();

  constructor({ learningRate = 0.01, momentum = 0, nesterov = false }: SgdOptions = {}) {
    super('sgd', learningRate);
    if (!(momentum >= 0 && momentum < 1)) throw new ConfigError(`sgd: momentum must be in [0, 1), got ${momentum}`);
    this.momentum = momentum;
    this.nesterov = nesterov;
  }

  step(parameters: readonly Parameter[]): void {
    const K = kernels();
    const lr = this.learningRate;
    forEachLargestLast(parameters, ({ tensor }) => {
      let velocity: Storage | null = null;
      if (this.momentum > 0) {
        velocity = this.velocity.get(tensor) ?? K.alloc(tensor.size);
        this.velocity.set(tensor, velocity);
      }
      K.sgdUpdate(tensor.storage, tensor.grad!.storage, velocity, lr, this.momentum, this.nesterov);
    });
    this.iterations++;
  }

  config(): OptimizerConfig {
    return { learning_rate: this.learningRateConfig(), momentum: this.momentum, nesterov: this.nesterov };
  }

  getState(parameters: readonly Parameter[]): OptimizerState {
    return { iterations: this.iterations, slots: readSlots(parameters, { velocity: this.velocity }) };
  }

  setState(parameters: readonly Parameter[], state: OptimizerState): void {
    writeSlots(parameters, { velocity: this.velocity }, state.slots); // checks the state first: a bad one changes nothing
    this.iterations = state.iterations;
  }

  dispose(): void {
    freeSlots(this.velocity);
  }
}

export const sgd = (options?: SgdOptions): Sgd => new Sgd(options);
