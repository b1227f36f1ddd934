/**
 * Callbacks that write files, with Keras's semantics: ModelCheckpoint saves the model folder at
 * the end of an epoch (every epoch, or only when the monitored value improves), CsvLogger keeps a
 * CSV of per-epoch metrics. Both replace their files atomically, so a crash never leaves half a file.
 */
import { readFileSync } from 'node:fs';
import { DescentError } from '../errors.js';
import { writeFileAtomic } from '../data/atomic.js';
import { improvesUpward, type Callback, type EpochLogs } from '../nn/callbacks.js';
import type { Sequential } from '../nn/model.js';
import { saveModel } from './files.js';
import { captureTrainingState, type TrainingMetadata } from './training-state.js';

type Log = (message: string) => void;

export interface ModelCheckpointOptions {
  /** The model folder to (re)write. */
  dir: string;
  monitor?: string;
  /** Save only when `monitor` improved on the best value so far. */
  saveBestOnly?: boolean;
  mode?: 'auto' | 'min' | 'max';
  /** Extra metadata for each save (settings, history so far...), built at save time. */
  metadata?: (epoch: number, logs: EpochLogs) => TrainingMetadata;
  log?: Log;
}

export interface ModelCheckpointState {
  /** Best monitored value so far (null before any). */
  best: number | null;
  bestEpoch: number | null;
}

export class ModelCheckpoint implements Callback {
  readonly dir: string;
  readonly monitor: string;
  readonly saveBestOnly: boolean;
  /** Best monitored value so far, in its own units. */
  best = Infinity;
  bestEpoch?: number;
  /** Epochs (0-based) saved by this instance, in order. */
  readonly saved: number[] = [];
  private readonly sign: 1 | -1;
  private readonly metadata?: (epoch: number, logs: EpochLogs) => TrainingMetadata;
  private readonly log: Log;
  private model?: Sequential;

  constructor({ dir, monitor = 'val_loss', saveBestOnly = false, mode = 'auto', metadata, log = console.log }: ModelCheckpointOptions) {
    this.dir = dir;
    this.monitor = monitor;
    this.saveBestOnly = saveBestOnly;
    this.sign = improvesUpward(monitor, mode) ? -1 : 1;
    this.best = this.sign * Infinity;
    this.metadata = metadata;
    this.log = log;
  }

  setModel(model: Sequential): void {
    this.model = model;
  }

  async onEpochEnd(epoch: number, logs: EpochLogs): Promise<void> {
    if (!this.model) return;
    if (this.saveBestOnly) {
      const value = logs[this.monitor];
      if (value === undefined) {
        this.log(`Can save best model only with ${this.monitor} available, skipping.`);
        return;
      }
      if (!(this.sign * value < this.sign * this.best)) {
        this.log(`Epoch ${epoch + 1}: ${this.monitor} did not improve from ${format(this.best)}`);
        return;
      }
      this.log(`Epoch ${epoch + 1}: ${this.monitor} improved from ${format(this.best)} to ${format(value)}, saving model to ${this.dir}`);
      this.best = value;
      this.bestEpoch = epoch;
    } else {
      this.log(`Epoch ${epoch + 1}: saving model to ${this.dir}`);
    }
    await saveModel(this.dir, this.model, {
      status: 'checkpoint',
      epochsCompleted: epoch + 1,
      ...captureTrainingState(this.model),
      ...this.metadata?.(epoch, logs),
    });
    this.saved.push(epoch);
  }

  getState(): ModelCheckpointState {
    return { best: Number.isFinite(this.best) ? this.best : null, bestEpoch: this.bestEpoch ?? null };
  }

  /** Continue from an earlier run's state (so a resumed run only saves real improvements). */
  setState(state: ModelCheckpointState): void {
    this.best = state.best ?? this.sign * Infinity;
    this.bestEpoch = state.bestEpoch ?? undefined;
  }
}

export interface CsvLoggerOptions {
  /** Keep the rows of epochs 1..n already in the file (a resumed run); otherwise start a new file. */
  keepEpochs?: number;
  /** More logged keys to write, after the standard columns (e.g. sparse_top_k_categorical_accuracy). */
  extraColumns?: readonly string[];
}

export const CSV_COLUMNS = ['epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'seconds'] as const;

/** One CSV row per epoch (epochs counted from 1, as printed), the whole file rewritten atomically each time. */
export class CsvLogger implements Callback {
  private rows: string[] = [];
  private readonly header: string;

  constructor(readonly file: string, private readonly options: CsvLoggerOptions = {}) {
    this.header = [...CSV_COLUMNS, ...(options.extraColumns ?? [])].join(',');
  }

  onTrainBegin(): void {
    const keep = this.options.keepEpochs ?? 0;
    this.rows = keep > 0 ? this.existingRows(keep) : [];
  }

  onEpochEnd(epoch: number, logs: EpochLogs): void {
    const values = [epoch + 1, logs.loss, logs.accuracy, logs.val_loss, logs.val_accuracy, logs.seconds, ...(this.options.extraColumns ?? []).map((key) => logs[key])];
    this.rows.push(values.map((v) => (v === undefined ? '' : String(v))).join(','));
    const text = [this.header, ...this.rows].join('\n') + '\n';
    writeFileAtomic(this.file, Buffer.from(text, 'utf8'));
  }

  private existingRows(keep: number): string[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    const [header, ...rows] = text.split('\n').filter((line) => line.length > 0);
    if (header !== this.header) {
      throw new DescentError(`${this.file}: is not a descent training log (its header is not ${this.header}); choose another --csv file`);
    }
    return rows.filter((row) => Number(row.split(',')[0]) <= keep);
  }
}

function format(value: number): string {
  if (Number.isFinite(value)) return value.toFixed(5);
  return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
}
