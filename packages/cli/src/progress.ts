/**
 * Keras's progress bar, as a training callback. No library draws Keras's exact line, so this is a
 * small formatter (Keras's Progbar, verbose=1):
 *
 *   Epoch 1/5
 *    512/1875 [=======>......................] - ETA: 2s - loss: 0.6012 - accuracy: 0.7911
 *   1875/1875 [==============================] - 3s 2ms/step - loss: 0.4964 - accuracy: 0.8236 - val_loss: 0.4410 - val_accuracy: 0.8431
 *
 * Redrawn in place at most every 50 ms on a terminal. When stdout is not a terminal (a log file, a
 * pipe), one line per epoch instead: `Epoch 1/5 - 3s 2ms/step - loss: 0.4964 - accuracy: 0.8236`.
 */
import type { BatchLogs, Callback, EpochLogs } from '@descent/engine';
import { metric, type Output } from './output.js';

const BAR_WIDTH = 30;
const REDRAW_MS = 50;

export interface ProgressOptions {
  output: Output;
  /** Total epochs of the run (for "Epoch 3/5"). */
  epochs: number;
  /** Batches per epoch. */
  steps: number;
  /** The clock, in milliseconds (tests pass their own). */
  now?: () => number;
}

export class KerasProgress implements Callback {
  private readonly output: Output;
  private readonly epochs: number;
  private readonly steps: number;
  private readonly now: () => number;
  private started = 0;
  private lastDraw = -Infinity;
  /** Batch index the epoch started at in this process (above 0 when resuming inside an epoch). */
  private firstBatch?: number;
  private current = 0;

  constructor({ output, epochs, steps, now = () => performance.now() }: ProgressOptions) {
    this.output = output;
    this.epochs = epochs;
    this.steps = steps;
    this.now = now;
  }

  onEpochBegin(epoch: number): void {
    this.started = this.now();
    this.lastDraw = -Infinity;
    this.firstBatch = undefined;
    this.current = 0;
    if (this.output.interactive) this.output.line(this.output.bold(`Epoch ${epoch + 1}/${this.epochs}`));
  }

  onBatchEnd(batch: number, logs: BatchLogs): void {
    this.firstBatch ??= batch;
    this.current = batch + 1;
    if (!this.output.interactive) return;
    const now = this.now();
    if (now - this.lastDraw < REDRAW_MS && this.current < this.steps) return;
    this.lastDraw = now;
    const done = this.current - this.firstBatch;
    const perStep = done > 0 ? (now - this.started) / 1000 / done : 0;
    this.output.redraw(progressLine(this.current, this.steps, { eta: perStep * (this.steps - this.current), logs }));
  }

  onEpochEnd(epoch: number, logs: EpochLogs): void {
    const done = Math.max(1, this.current - (this.firstBatch ?? 0));
    const timing = { seconds: logs.seconds, perStep: logs.seconds / done };
    if (this.output.interactive) {
      this.output.redraw(progressLine(this.steps, this.steps, { ...timing, logs }));
      this.output.finishLine();
    } else {
      this.output.line(`Epoch ${epoch + 1}/${this.epochs}${timeInfo(timing.seconds, timing.perStep)}${metricsInfo(logs)}`);
    }
  }
}

export interface LineInfo {
  /** Seconds left, while running. */
  eta?: number;
  /** When finished: total seconds and seconds per step. */
  seconds?: number;
  perStep?: number;
  logs: { loss?: number; accuracy?: number; val_loss?: number; val_accuracy?: number };
}

/** One Keras progress line for `current` of `target` steps. */
export function progressLine(current: number, target: number, { eta, seconds, perStep, logs }: LineInfo): string {
  const digits = String(target).length;
  let bar = `${String(current).padStart(digits)}/${target} [`;
  const width = Math.floor((BAR_WIDTH * current) / target);
  if (width > 0) bar += '='.repeat(width - 1) + (current < target ? '>' : '=');
  bar += '.'.repeat(BAR_WIDTH - width) + ']';
  const info = seconds !== undefined ? timeInfo(seconds, perStep ?? 0) : ` - ETA: ${formatEta(eta ?? 0)}`;
  return bar + info + metricsInfo(logs);
}

/** " - 3s 2ms/step" */
function timeInfo(seconds: number, perStep: number): string {
  return ` - ${seconds.toFixed(0)}s ${formatPerStep(perStep)}`;
}

function metricsInfo(logs: LineInfo['logs']): string {
  let text = '';
  for (const key of ['loss', 'accuracy', 'val_loss', 'val_accuracy'] as const) {
    const value = logs[key];
    if (value !== undefined) text += ` - ${key}: ${metric(value)}`;
  }
  return text;
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
