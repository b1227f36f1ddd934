/**
 * RMSprop (Hinton's lecture 6e) in the form Keras implements, with Keras's defaults (lr 1e-3,
 * ρ 0.9, momentum 0, ε 1e-7, not centered). For each weight w with gradient g:
 *   v ← ρ·v + (1-ρ)·g²                  running mean of squared gradients ("velocity" in Keras)
 *   a ← ρ·a + (1-ρ)·g                   running mean of gradients (centered only)
 *   Δ = lr · g / √(v - a² + ε)          centered: divide by an estimate of the gradient's spread
 *   Δ = lr · g / √(v + ε)               otherwise
 *   m ← momentum·m + Δ;  w ← w - m      with momentum, else w ← w - Δ
 * Every weight gets its own step size: large where gradients have been large, so the steps
 * stay about lr whatever the gradients' scale. ε sits inside the root, as in Keras and TensorFlow.js
 * (whose centered form differs: it subtracts ε, √(v - a² - ε)).
 */
import { kernels } from '../backend/index.js';
import type { Storage } from '../backend/kernels.js';
import { ConfigError } from '../errors.js';
import type { Parameter } from '../nn/layers.js';
import { LearningRateOptimizer, type Optimizer, type OptimizerConfig, type OptimizerState } from './optimizer.js';
import type { LearningRateSchedule } from './schedules.js';
import { freeSlots, readSlots, slotFor, writeSlots } from './slots.js';

export interface RmspropOptions {
  /** A number, or a schedule of the step count (e.g. ExponentialDecay). */
  learningRate?: number | LearningRateSchedule;
  rho?: number;
  momentum?: number;
  epsilon?: number;
  centered?: boolean;
}

type Slots = Map<Parameter['tensor'], Storage>;

export class RMSprop extends LearningRateOptimizer implements Optimizer {
  readonly name = 'rmsprop';
  readonly rho: number;
  readonly momentum: number;
  readonly epsilon: number;
  readonly centered: boolean;
  /** Keras's slot names: velocity (v), average_gradient (a, centered only), momentum (m, with momentum only). */
  private readonly slots: Record<'velocity' | 'average_gradient' | 'momentum', Slots> = { velocity: new Map(), average_gradient: new Map(), momentum: new Map() };

  constructor({ learningRate = 1e-3, rho = 0.9, momentum = 0, epsilon = 1e-7, centered = false }: RmspropOptions = {}) {
    super('rmsprop', learningRate);
    if (!(rho >= 0 && rho < 1)) throw new ConfigError(`rmsprop: rho must be in [0, 1), got ${rho}`);
    if (!(momentum >= 0 && momentum < 1)) throw new ConfigError(`rmsprop: momentum must be in [0, 1), got ${momentum}`);
    if (!(epsilon > 0)) throw new ConfigError(`rmsprop: epsilon must be positive, got ${epsilon}`);
    this.rho = rho;
    this.momentum = momentum;
    this.epsilon = epsilon;
    this.centered = centered;
  }

  step(parameters: readonly Parameter[]): void {
    const K = kernels();
    const lr = this.learningRate;
    for (const { tensor } of parameters) {
      if (!tensor.grad) continue;
      const velocity = slotFor(this.slots.velocity, tensor);
      const average = this.centered ? slotFor(this.slots.average_gradient, tensor) : null;
      const momentum = this.momentum > 0 ? slotFor(this.slots.momentum, tensor) : null;
      K.rmspropUpdate(tensor.storage, tensor.grad.storage, velocity, average, momentum, lr, this.rho, this.momentum, this.epsilon);
    }
    this.iterations++;
  }

  config(): OptimizerConfig {
    return { learning_rate: this.learningRateConfig(), rho: this.rho, momentum: this.momentum, epsilon: this.epsilon, centered: this.centered };
  }

  getState(parameters: readonly Parameter[]): OptimizerState {
    return { iterations: this.iterations, slots: readSlots(parameters, this.usedSlots()) };
  }

  setState(parameters: readonly Parameter[], state: OptimizerState): void {
    writeSlots(parameters, this.usedSlots(), state.slots); // checks the state first: a bad one changes nothing
    this.iterations = state.iterations;
  }

  dispose(): void {
    freeSlots(this.slots.velocity, this.slots.average_gradient, this.slots.momentum);
  }

  /** The slots this configuration keeps. */
  private usedSlots(): Record<string, Slots> {
    return {
      velocity: this.slots.velocity,
      ...(this.centered ? { average_gradient: this.slots.average_gradient } : {}),
      ...(this.momentum > 0 ? { momentum: this.slots.momentum } : {}),
    };
  }
}

export const rmsprop = (options?: RmspropOptions): RMSprop => new RMSprop(options);
