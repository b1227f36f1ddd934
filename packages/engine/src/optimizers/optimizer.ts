import type { Parameter } from '../nn/layers.js';

/** Saved optimizer state: its step count and per-parameter slot buffers, in parameter order. */
export interface OptimizerState {
  iterations: number;
  slots: Record<string, number[][]>;
}

export interface Optimizer {
  readonly name: 'adam' | 'sgd';
  readonly learningRate: number;
  /** Number of updates applied so far. */
  readonly iterations: number;
  /** Apply one update to every parameter from its `.grad`. */
  step(parameters: readonly Parameter[]): void;
  config(): Record<string, number | boolean>;
  getState(parameters: readonly Parameter[]): OptimizerState;
  setState(parameters: readonly Parameter[], state: OptimizerState): void;
  /** Frees the slot buffers (a model that is discarded, or a restore that failed, gives them back). */
  dispose?(): void;
}
