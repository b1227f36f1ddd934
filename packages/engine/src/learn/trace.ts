/**
 * Training trace: every N steps, per layer, the numbers that tell whether gradient descent is
 * healthy. Attach `new TraceCallback({ every, onTrace })` to `fit`.
 *
 * Definitions (one layer, one step; "the layer's weights" = its kernel and bias taken together
 * as one long vector w, with gradient g):
 *   weight norm     ‖w‖ = √(Σ w²), before the update
 *   gradient norm   ‖g‖, the gradient this step's update used
 *   update ratio    ‖Δw‖ / ‖w‖ with Δw = w_after − w_before: how far this step moved the weights,
 *                   relative to their size (of the order of 1e-3 is typical; far above suggests
 *                   the learning rate is too high, far below that the layer barely learns)
 *   dead ReLUs      for a ReLU layer, the fraction of its units whose output is 0 for every
 *                   sample of the batch (for a convolution: filters whose output is 0 at every
 *                   position of every sample): such a unit passes no gradient back, so its
 *                   incoming weights got no update from this batch. `zeroFraction` is the
 *                   per-activation version: the fraction of all outputs that are 0.
 *   activations     mean and max of the layer's output over the batch
 * Layers without weights (flatten, dropout) report only their activations.
 *
 * Cost: only the traced steps are observed (see `Callback.observesStep`); on those, the weights are
 * copied once before the update to measure Δw. Every other step runs exactly as without a trace.
 */
import { ConfigError } from '../errors.js';
import type { Callback, StepView } from '../nn/callbacks.js';
import { Conv2D } from '../nn/conv-layers.js';
import { Dense, type Layer } from '../nn/layers.js';
import type { Tensor } from '../tensor.js';

export interface LayerTrace {
  name: string;
  className: string;
  /** null for layers without weights. */
  weightNorm: number | null;
  gradNorm: number | null;
  /** null for layers without weights, or whose weights are all zero. */
  updateRatio: number | null;
  /** null unless the layer's activation is ReLU. */
  deadFraction: number | null;
  zeroFraction: number | null;
  activationMean: number;
  activationMax: number;
}

export interface StepTrace {
  /** 1-based: this was the step-th update of the run. */
  step: number;
  /** 1-based epoch and batch within it, as progress bars count them. */
  epoch: number;
  batch: number;
  /** Mean loss of the batch, before the update. */
  loss: number;
  layers: LayerTrace[];
}

export interface TraceOptions {
  /** Trace the first step and then every `every`-th (steps every, 2·every, …). Default 100. */
  every?: number;
  onTrace(trace: StepTrace): void;
}

/** Whether the 1-based step `step` is traced: the first one, then every `every`-th. */
export function isTracedStep(step: number, every: number): boolean {
  return step === 1 || step % every === 0;
}

export class TraceCallback implements Callback {
  readonly every: number;
  private readonly onTrace: (trace: StepTrace) => void;
  private pending?: { trace: StepTrace; before: Map<Layer, Float64Array> };

  constructor({ every = 100, onTrace }: TraceOptions) {
    if (!Number.isInteger(every) || every < 1) throw new ConfigError(`trace: every must be a positive integer, got ${every}`);
    this.every = every;
    this.onTrace = onTrace;
  }

  observesStep(step: number): boolean {
    return isTracedStep(step + 1, this.every);
  }

  onGradients(view: StepView): void {
    const before = new Map<Layer, Float64Array>();
    const layers = view.layers.map(({ layer, output }): LayerTrace => {
      const tensors = layer.parameters().map((p) => p.tensor);
      const weights = tensors.length > 0 ? concat(tensors.map((t) => t.data)) : undefined;
      if (weights) before.set(layer, weights);
      const relu = (layer instanceof Dense || layer instanceof Conv2D) && layer.activation === 'relu';
      const stats = activationStats(output, relu);
      return {
        name: layer.name,
        className: layer.className,
        weightNorm: weights ? norm(weights) : null,
        gradNorm: weights ? norm(concat(tensors.map((t) => gradientOf(t, layer).data))) : null,
        updateRatio: null,
        deadFraction: relu ? stats.deadFraction : null,
        zeroFraction: relu ? stats.zeroFraction : null,
        activationMean: stats.mean,
        activationMax: stats.max,
      };
    });
    const trace: StepTrace = { step: view.step + 1, epoch: view.epoch + 1, batch: view.batch + 1, loss: view.loss, layers };
    this.pending = { trace, before };
  }

  onUpdate(view: StepView): void {
    const pending = this.pending;
    if (!pending || pending.trace.step !== view.step + 1) return;
    this.pending = undefined;
    view.layers.forEach(({ layer }, i) => {
      const before = pending.before.get(layer);
      if (!before) return;
      const after = concat(layer.parameters().map((p) => p.tensor.data));
      let change = 0;
      for (let j = 0; j < after.length; j++) change += (after[j] - before[j]) ** 2;
      const weightNorm = pending.trace.layers[i].weightNorm!;
      pending.trace.layers[i].updateRatio = weightNorm > 0 ? Math.sqrt(change) / weightNorm : null;
    });
    this.onTrace(pending.trace);
  }
}

/** A fixed-width table of one trace, for terminals. */
export function formatTrace(trace: StepTrace): string {
  const header = ['layer', '‖w‖', '‖grad‖', '‖Δw‖/‖w‖', 'dead ReLU', 'act mean', 'act max'];
  const rows = trace.layers.map((l) => [
    `${l.name} (${l.className})`,
    number(l.weightNorm),
    number(l.gradNorm),
    number(l.updateRatio),
    l.deadFraction === null ? '–' : `${(100 * l.deadFraction).toFixed(1)}%`,
    number(l.activationMean),
    number(l.activationMax),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [
    `trace: step ${trace.step} (epoch ${trace.epoch}, batch ${trace.batch}), loss ${number(trace.loss)}`,
    line(header),
    ...rows.map(line),
  ].join('\n');
}

function number(value: number | null): string {
  if (value === null) return '–';
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  return magnitude >= 1e-3 && magnitude < 1e5 ? value.toPrecision(4) : value.toExponential(2);
}

function gradientOf(tensor: Tensor, layer: Layer): Tensor {
  if (!tensor.grad) throw new ConfigError(`trace: a weight of layer '${layer.name}' has no gradient this step`);
  return tensor.grad;
}

function concat(arrays: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(arrays.reduce((total, a) => total + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

function norm(values: Float64Array): number {
  let sum = 0;
  for (const value of values) sum += value * value;
  return Math.sqrt(sum);
}

/**
 * Mean and max over the output; for ReLU layers also the dead units: a dense unit that is zero
 * for every sample, or a convolution filter (channel) that is zero at every position of every
 * sample. Units are the last axis either way.
 */
function activationStats(output: Tensor, relu: boolean): { mean: number; max: number; deadFraction: number; zeroFraction: number } {
  const data = output.data;
  const units = output.shape[output.rank - 1];
  let sum = 0;
  let max = -Infinity;
  let zeros = 0;
  const alive = relu ? new Uint8Array(units) : undefined;
  for (let i = 0; i < data.length; i++) {
    const value = data[i];
    sum += value;
    if (value > max) max = value;
    if (alive) {
      if (value !== 0) alive[i % units] = 1;
      else zeros++;
    }
  }
  let dead = 0;
  if (alive) for (const a of alive) if (!a) dead++;
  return { mean: sum / data.length, max, deadFraction: dead / units, zeroFraction: zeros / data.length };
}
