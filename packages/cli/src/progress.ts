/**
 * The Keras progress bar of `descent train`: the engine's ProgbarLogger (the one `fit({ verbose: 1 })`
 * uses), drawn through the CLI's Output, so the API and the CLI print the same lines.
 */
import { ProgbarLogger } from '@descent/engine';
import type { Output } from './output.js';

export { formatEta, formatPerStep, progressLine } from '@descent/engine';

export interface ProgressOptions {
  output: Output;
  /** Total epochs of the run (for "Epoch 3/5"). */
  epochs: number;
  /** Batches per epoch. */
  steps: number;
  /** The clock, in milliseconds (tests pass their own). */
  now?: () => number;
}

export class KerasProgress extends ProgbarLogger {
  constructor({ output, epochs, steps, now }: ProgressOptions) {
    super({ epochs, steps, now, sink: output });
  }
}
