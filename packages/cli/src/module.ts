/**
 * How a command plugs into the CLI. main.ts keeps one list of modules; a module registers its
 * command(s) and may extend `descent train` (extra flags, another source of data, per-step
 * observers, work after the save), `descent evaluate` and `descent predict` (extra flags, work on
 * the predictions).
 */
import type { Command } from 'commander';
import type { Callback, HistoryData, ImageDataset, Sequential } from '@descent/engine';
import type { ClassifierEvaluation } from './evaluation.js';
import type { Output } from './output.js';
import type { Prediction } from './commands/predict.js';
import type { TrainSettings } from './commands/train.js';

export interface CliModule {
  /** Adds the module's command(s) to the program. */
  register?(program: Command, context: CliContext): void;
  train?: TrainExtension;
  evaluate?: EvaluateExtension;
  predict?: PredictExtension;
}

export interface CliContext {
  trainExtensions: readonly TrainExtension[];
  evaluateExtensions: readonly EvaluateExtension[];
  predictExtensions: readonly PredictExtension[];
}

/** A dataset as the commands use it: from IDX files (a LoadedDataset), or from elsewhere (the SQL store). */
export interface CommandData {
  name: string;
  /** Where it came from, for messages: a folder, or a database. */
  dir: string;
  classNames: string[];
  train: ImageDataset;
  test: ImageDataset;
}

/** Everything an extension sees of a training run. */
export interface TrainRun {
  /** The parsed flags of `descent train`, including the extension's own. */
  options: Record<string, unknown>;
  settings: TrainSettings;
  model: Sequential;
  data: CommandData;
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
  /** Reads the data from another source than the IDX files (e.g. --db); undefined leaves it to the files. */
  loadData?(options: Record<string, unknown>, dataset: string, output: Output): Promise<CommandData | undefined>;
  /** Callbacks to add to fit (step observers, loggers), once the model and data are ready. */
  callbacks?(run: TrainRun): Callback[] | Promise<Callback[]>;
  /** Runs after training finished and the model was saved (not after an interruption). */
  finish?(run: TrainRun, result: TrainResult): void | Promise<void>;
  /** Runs after Ctrl-C stopped training and the checkpoint was saved; `where` is e.g. "in epoch 2/5 after batch 51/1875". */
  interrupted?(run: TrainRun, where: string): void | Promise<void>;
  /** Runs when training failed once its callbacks were added; the error is reported after. */
  failed?(run: TrainRun, error: unknown): void | Promise<void>;
}

export interface EvaluateRun {
  options: Record<string, unknown>;
  model: Sequential;
  /** The model's folder. */
  modelDir: string;
  /** The data evaluated on; only its test split is read. */
  data: Pick<CommandData, 'name' | 'dir' | 'classNames' | 'test'>;
  /** [test images × classes] class probabilities, row after row. */
  probabilities: Float32Array;
  result: ClassifierEvaluation;
  output: Output;
}

export interface EvaluateExtension {
  options?(command: Command): void;
  validate?(options: Record<string, unknown>): void;
  /** Reads the test images from another source than the IDX files; undefined leaves it to the files. */
  loadData?(options: Record<string, unknown>, dataset: string, output: Output): Promise<Pick<CommandData, 'name' | 'dir' | 'classNames' | 'test'> | undefined>;
  /** Runs after the results were printed. */
  finish?(run: EvaluateRun): void | Promise<void>;
}

export interface PredictRun {
  options: Record<string, unknown>;
  model: Sequential;
  /** The model's folder. */
  modelDir: string;
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
