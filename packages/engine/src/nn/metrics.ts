/**
 * Metrics for classifiers given class indices, as Keras names them. Each counts the samples of a
 * batch it calls right ("hits"); fit and evaluate report hits / samples, weighted by batch size.
 *
 *   accuracy                            the arg max of the outputs is the label (first maximum on ties)
 *   sparse_top_k_categorical_accuracy   the label is among the k largest outputs; outputs tied with
 *                                       the k-th largest count as among them (Keras's in_top_k):
 *                                       hit ⇔ fewer than k outputs are strictly larger than the label's
 */
import { kernels } from '../backend/index.js';
import { ConfigError } from '../errors.js';
import type { Tensor } from '../tensor.js';

export interface Metric {
  /** The key in logs and history (val_<name> for validation). */
  readonly name: string;
  /** How many samples of the batch count as right: predictions [m, n] against m class indices. */
  hits(predictions: Tensor, targets: Tensor): number;
}

export const accuracyMetric: Metric = {
  name: 'accuracy',
  hits(predictions, targets) {
    const [m, n] = predictions.shape;
    if (targets.size !== m) return 0; // accuracy is defined for class-index targets
    return kernels().countCorrect(m, n, predictions.storage, targets.storage);
  },
};

export interface SparseTopKOptions {
  /** Default 5, as in Keras. */
  k?: number;
  name?: string;
}

export class SparseTopKCategoricalAccuracy implements Metric {
  readonly k: number;
  readonly name: string;

  constructor({ k = 5, name = 'sparse_top_k_categorical_accuracy' }: SparseTopKOptions = {}) {
    if (!Number.isInteger(k) || k < 1) throw new ConfigError(`top-k accuracy: k must be a positive integer, got ${k}`);
    this.k = k;
    this.name = name;
  }

  hits(predictions: Tensor, targets: Tensor): number {
    const [m, n] = predictions.shape;
    if (targets.size !== m) return 0;
    // A read of m·n outputs once per batch: small next to the step, so plain TypeScript.
    return countInTopK(predictions.data, targets.data, m, n, this.k);
  }
}

/** Rows whose label is among the k largest scores (ties with the k-th count in). */
export function countInTopK(scores: ArrayLike<number>, labels: ArrayLike<number>, m: number, n: number, k: number): number {
  let hits = 0;
  for (let i = 0; i < m; i++) {
    const label = labels[i];
    const own = scores[i * n + label];
    if (!Number.isInteger(label) || label < 0 || label >= n || Number.isNaN(own)) continue;
    let larger = 0;
    for (let j = 0; j < n && larger < k; j++) if (scores[i * n + j] > own) larger++;
    if (larger < k) hits++;
  }
  return hits;
}

export const sparseTopKCategoricalAccuracy = (options?: SparseTopKOptions): SparseTopKCategoricalAccuracy => new SparseTopKCategoricalAccuracy(options);

export type MetricSpec = 'accuracy' | 'acc' | 'sparse_top_k_categorical_accuracy' | 'sparseTopKCategoricalAccuracy' | Metric;

export function metricFrom(spec: MetricSpec): Metric {
  if (typeof spec === 'object' && spec !== null && typeof spec.hits === 'function' && typeof spec.name === 'string') return spec;
  if (spec === 'accuracy' || spec === 'acc') return accuracyMetric;
  if (spec === 'sparse_top_k_categorical_accuracy' || spec === 'sparseTopKCategoricalAccuracy') return new SparseTopKCategoricalAccuracy();
  throw new ConfigError(`unknown metric '${String(spec)}' (supported: accuracy, sparse_top_k_categorical_accuracy)`);
}
