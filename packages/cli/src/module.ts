/**
 * How a command plugs into the CLI. main.ts keeps one list of modules; a module registers its
 * command(s) and may extend `descent train` (extra flags, per-step observers, work after the
 * save) and `descent predict` (extra flags, work on the predictions).
 */
import type { Command } from 'commander';
import type { Callback, HistoryData, LoadedDataset, Sequential } from '@descent/engine';
import type { Output } from './output.js';
import type { Prediction } from './commands/predict.js';
import type { TrainSettings } from './commands/train.js';

export interface CliModule {
  /** Adds the module's command(s) to the program. */
  register?(program: Command, context: CliContext): void;
  train?: TrainExtension;
  predict?: PredictExtension;
}

export interface CliContext {
  trainExtensions: readonly TrainExtension[];
  predictExtensions: readonly PredictExtension[];
}

/** Everything an extension sees of a training run. */
export interface TrainRun {
  /** The parsed flags of `descent train`, including the extension's own. */
  options: Record<string, unknown>;
  settings: TrainSettings;
  model: Sequential;
  data: LoadedDataset;
  outDir: string;
  output: Output;
  /** Every epoch so far (including those of an earlier, resumed run). */
  history(): HistoryData;
}

export interface TrainResult {
  test: { loss: number; accuracy: number };
  history: HistoryData;
  outDir: string;
}

export interface TrainExtension {
  /** Adds flags to `descent train` (e.g. --trace, --report). */
  options?(command: Command): void;
  /** Checks the flags before anything is loaded or written; throw a UsageError to refuse. */
  validate?(options: Record<string, unknown>): void;
  /** Callbacks to add to fit (step observers, loggers), once the model and data are ready. */
  callbacks?(run: TrainRun): Callback[] | Promise<Callback[]>;
  /** Runs after training finished and the model was saved (not after an interruption). */
  finish?(run: TrainRun, result: TrainResult): void | Promise<void>;
}

export interface PredictRun {
  options: Record<string, unknown>;
  model: Sequential;
  classNames: string[];
  /** One per input, in order; `pixels` is the 28×28 image the model saw (0–255, light on dark). */
  predictions: Prediction[];
  output: Output;
}

export interface PredictExtension {
  /** Adds flags to `descent predict` (e.g. --plot). */
  options?(command: Command): void;
  validate?(options: Record<string, unknown>): void;
  /** Runs after the predictions were printed. */
  finish?(run: PredictRun): void | Promise<void>;
}
