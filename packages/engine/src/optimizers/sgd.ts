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
import type { Optimizer, OptimizerState } from './optimizer.js';
import { freeSlots, readSlots, writeSlots } from './slots.js';

export interface SgdOptions {
  learningRate?: number;
  momentum?: number;
  nesterov?: boolean;
}

export class Sgd implements Optimizer {
  readonly name = 'sgd';
  readonly learningRate: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  iterations = 0;
  private readonly velocity = new Map<Parameter['tensor'], Storage>();

  constructor({ learningRate = 0.01, momentum = 0, nesterov = false }: SgdOptions = {}) {
    if (!(learningRate > 0) || !Number.isFinite(learningRate)) throw new ConfigError(`sgd: learning rate must be a positive number, got ${learningRate}`);
    if (!(momentum >= 0 && momentum < 1)) throw new ConfigError(`sgd: momentum must be in [0, 1), got ${momentum}`);
    this.learningRate = learningRate;
    this.momentum = momentum;
    this.nesterov = nesterov;
  }

  step(parameters: readonly Parameter[]): void {
    const K = kernels();
    for (const { tensor } of parameters) {
      if (!tensor.grad) continue;
      let velocity: Storage | null = null;
      if (this.momentum > 0) {
        velocity = this.velocity.get(tensor) ?? K.alloc(tensor.size);
        this.velocity.set(tensor, velocity);
      }
      K.sgdUpdate(tensor.storage, tensor.grad.storage, velocity, this.learningRate, this.momentum, this.nesterov);
    }
    this.iterations++;
  }

  config(): Record<string, number | boolean> {
    return { learning_rate: this.learningRate, momentum: this.momentum, nesterov: this.nesterov };
  }

  getState(parameters: readonly Parameter[]): OptimizerState {
    return { iterations: this.iterations, slots: readSlots(parameters, { velocity: this.velocity }) };
  }

  setState(parameters: readonly Parameter[], state: OptimizerState): void {
    writeSlots(parameters, { velocity: this.velocity }, state.slots); // checks the state first: a bad one changes nothing
    this.iterations = state.iterations;
  }

  dispose(): void {
    freeSlots({ velocity: this.velocity });
  }
}

export const sgd = (options?: SgdOptions): Sgd => new Sgd(options);
