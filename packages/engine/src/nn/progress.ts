/**
 * Keras's progress bar (its ProgbarLogger, verbose=1), as a training callback. `fit({ verbose: 1 })`
 * adds one; `descent train` uses the same one, so the API and the CLI print the same lines:
 *
 *   Epoch 1/5
 *    512/1875 [=======>......................] - ETA: 2s - loss: 0.6012 - accuracy: 0.7911
 *   1875/1875 [==============================] - 3s 2ms/step - loss: 0.4964 - accuracy: 0.8236 - val_loss: 0.4410 - val_accuracy: 0.8431
 *
 * On a terminal the line is redrawn in place at most every 50 ms and kept within the terminal's
 * width: the bar shrinks first (down to 10 characters), then whole metrics are dropped from the
 * live line. The finished line never loses a metric: when it does not fit, it wraps between
 * metrics. Anywhere else (a log file, a pipe, verbose=2) one line per epoch:
 * `Epoch 1/5 - 3s 2ms/step - loss: 0.4964 - accuracy: 0.8236`.
 */
import type { BatchLogs, Callback, EpochLogs } from './callbacks.js';

const BAR_WIDTH = 30;
const MIN_BAR_WIDTH = 10;
const REDRAW_MS = 50;

/** Where progress goes: a terminal that can redraw a line, or a plain stream of lines. */
export interface ProgressSink {
  /** True when the line can be redrawn in place (a terminal). */
  readonly interactive: boolean;
  /** Width of the terminal, when known. */
  readonly columns?: number;
  /** Draws `text` over the current line (terminals only). */
  redraw(text: string): void;
  /** Ends a redrawn line, so the next output starts on a fresh one. */
  finishLine(): void;
  /** A whole line of output. */
  line(text: string): void;
  /** The "Epoch 3/5" line above a bar (default: `line`). */
  heading?(text: string): void;
}

export interface ProgbarLoggerOptions {
  /** Total epochs of the run (for "Epoch 3/5"). */
  epochs: number;
  /** Batches per epoch. */
  steps: number;
  /** 1: a bar per epoch on a terminal (one line per epoch elsewhere); 2: one line per epoch. Default 1. */
  verbose?: 1 | 2;
  /** Default: the process's stdout (console.log where there is none). */
  sink?: ProgressSink;
  /** The clock, in milliseconds (tests pass their own). */
  now?: () => number;
}

export class ProgbarLogger implements Callback {
  private readonly sink: ProgressSink;
  private readonly epochs: number;
  private readonly steps: number;
  private readonly bar: boolean;
  private readonly now: () => number;
  private started = 0;
  private lastDraw = -Infinity;
  /** Batch index the epoch started at in this process (above 0 when resuming inside an epoch). */
  private firstBatch?: number;
  private current = 0;

  constructor({ epochs, steps, verbose = 1, sink = stdoutSink(), now = () => performance.now() }: ProgbarLoggerOptions) {
    this.sink = sink;
    this.epochs = epochs;
    this.steps = steps;
    this.bar = verbose === 1 && sink.interactive;
    this.now = now;
  }

  onEpochBegin(epoch: number): void {
    this.started = this.now();
    this.lastDraw = -Infinity;
    this.firstBatch = undefined;
    this.current = 0;
    if (this.bar) (this.sink.heading ?? this.sink.line).call(this.sink, `Epoch ${epoch + 1}/${this.epochs}`);
  }

  onBatchEnd(batch: number, logs: BatchLogs): void {
    this.firstBatch ??= batch;
    this.current = batch + 1;
    if (!this.bar) return;
    const now = this.now();
    if (now - this.lastDraw < REDRAW_MS && this.current < this.steps) return;
    this.lastDraw = now;
    const done = this.current - this.firstBatch;
    const perStep = done > 0 ? (now - this.started) / 1000 / done : 0;
    const { size: _size, ...metrics } = logs;
    this.sink.redraw(fitLiveLine(this.current, this.steps, { eta: perStep * (this.steps - this.current), logs: metrics }, this.sink.columns));
  }

  onEpochEnd(epoch: number, logs: EpochLogs): void {
    const done = Math.max(1, this.current - (this.firstBatch ?? 0));
    const timing = { seconds: logs.seconds, perStep: logs.seconds / done };
    if (this.bar) {
      const [first, ...rest] = fitFinishedLine(this.steps, this.steps, { ...timing, logs }, this.sink.columns);
      this.sink.redraw(first);
      this.sink.finishLine();
      for (const line of rest) this.sink.line(line);
    } else {
      this.sink.line(`Epoch ${epoch + 1}/${this.epochs}${timeInfo(timing.seconds, timing.perStep)}${metricsInfo(logs).join('')}`);
    }
  }
}

export interface ProgressInfo {
  /** Seconds left, while running. */
  eta?: number;
  /** When finished: total seconds and seconds per step. */
  seconds?: number;
  perStep?: number;
  /** Metrics to show (loss, accuracy, val_loss, ...); `seconds` and `size` are not shown. */
  logs: Readonly<Record<string, number | undefined>>;
}

/** One Keras progress line for `current` of `target` steps, with a bar `barWidth` characters wide. */
export function progressLine(current: number, target: number, info: ProgressInfo, barWidth = BAR_WIDTH): string {
  return lineParts(current, target, info, barWidth).join('');
}

/**
 * The finished line fitted to `columns`: the bar shrinks first; if the line is still too wide it
 * wraps between metrics. Every metric is kept. One column is left free, so that a line never
 * ends exactly at the terminal's edge (which makes some terminals wrap on their own).
 */
export function fitFinishedLine(current: number, target: number, info: ProgressInfo, columns?: number): string[] {
  const width = usableWidth(columns);
  const [head, ...segments] = lineParts(current, target, info, shrunkBar(current, target, info, width));
  const lines = [head];
  for (const segment of segments) {
    if (lines[lines.length - 1].length + segment.length <= width) lines[lines.length - 1] += segment;
    else lines.push(segment);
  }
  return lines;
}

/** The live line fitted to `columns`: the bar shrinks first, then whole metrics are left out. */
export function fitLiveLine(current: number, target: number, info: ProgressInfo, columns?: number): string {
  const width = usableWidth(columns);
  const [head, ...segments] = lineParts(current, target, info, shrunkBar(current, target, info, width));
  let line = head;
  for (const segment of segments) {
    if (line.length + segment.length > width) break;
    line += segment;
  }
  return line;
}

/** [count and bar, " - time", " - loss: …", …]: the pieces a line may be wrapped between. */
function lineParts(current: number, target: number, { eta, seconds, perStep, logs }: ProgressInfo, barWidth: number): string[] {
  const digits = String(target).length;
  let bar = `${String(current).padStart(digits)}/${target} [`;
  const width = Math.floor((barWidth * current) / target);
  if (width > 0) bar += '='.repeat(width - 1) + (current < target ? '>' : '=');
  bar += '.'.repeat(barWidth - width) + ']';
  const time = seconds !== undefined ? timeInfo(seconds, perStep ?? 0) : ` - ETA: ${formatEta(eta ?? 0)}`;
  return [bar, time, ...metricsInfo(logs)];
}

function shrunkBar(current: number, target: number, info: ProgressInfo, width: number): number {
  const overflow = progressLine(current, target, info).length - width;
  return Math.max(MIN_BAR_WIDTH, BAR_WIDTH - Math.max(0, overflow));
}

function usableWidth(columns: number | undefined): number {
  return Math.max(20, (columns || 120) - 1);
}

/** " - 3s 2ms/step" */
function timeInfo(seconds: number, perStep: number): string {
  return ` - ${seconds.toFixed(0)}s ${formatPerStep(perStep)}`;
}

/** " - loss: 0.4964" for each metric: training ones first, then validation ones, as Keras orders them. */
function metricsInfo(logs: Readonly<Record<string, number | undefined>>): string[] {
  const keys = Object.keys(logs).filter((key) => key !== 'seconds' && key !== 'size' && logs[key] !== undefined);
  const ordered = [...keys.filter((key) => !key.startsWith('val_')), ...keys.filter((key) => key.startsWith('val_'))];
  return ordered.map((key) => ` - ${key}: ${formatMetric(logs[key])}`);
}

/** Keras prints metrics with 4 decimals, switching to exponent notation for tiny values; NaN (null once saved as JSON) prints as nan. */
export function formatMetric(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return 'nan';
  return Math.abs(value) > 1e-3 || value === 0 ? value.toFixed(4) : value.toExponential(4);
}

/** Keras: whole seconds below a minute, then m:ss, then h:mm:ss. */
export function formatEta(seconds: number): string {
  const s = Math.floor(seconds);
  if (s > 3600) return `${Math.floor(s / 3600)}:${pad2(Math.floor((s % 3600) / 60))}:${pad2(s % 60)}`;
  if (s > 60) return `${Math.floor(s / 60)}:${pad2(s % 60)}`;
  return `${s}s`;
}

/** Keras: "2s/step", "5ms/step" or "800us/step". */
export function formatPerStep(seconds: number): string {
  if (seconds >= 1 || seconds === 0) return `${seconds.toFixed(0)}s/step`;
  if (seconds >= 1e-3) return `${(seconds * 1e3).toFixed(0)}ms/step`;
  return `${(seconds * 1e6).toFixed(0)}us/step`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Progress on the process's stdout (redrawn when it is a terminal), or on console.log where there is no process. */
export function stdoutSink(): ProgressSink {
  const stdout = (globalThis as { process?: { stdout?: { isTTY?: boolean; columns?: number; write(text: string): boolean } } }).process?.stdout;
  if (!stdout) return { interactive: false, redraw: () => {}, finishLine: () => {}, line: (text) => console.log(text) };
  let open = 0;
  return {
    interactive: stdout.isTTY === true,
    get columns() {
      return stdout.columns;
    },
    redraw(text) {
      stdout.write(`\r${text}${' '.repeat(Math.max(0, open - text.length))}`);
      open = text.length;
    },
    finishLine() {
      if (open === 0) return;
      stdout.write('\n');
      open = 0;
    },
    line(text) {
      if (open > 0) this.finishLine();
      stdout.write(`${text}\n`);
    },
  };
}
