/**
 * A classifier's test-set numbers: loss, accuracy, the confusion matrix and per-class precision
 * and recall. `descent evaluate --json` prints exactly this object, and `descent train` and
 * `descent report` use the same function, so their numbers agree.
 *
 *   confusion[t][p]   test images of true class t predicted as class p (prediction = arg max,
 *                     the first class on ties)
 *   precision[c]      confusion[c][c] / Σ_t confusion[t][c]   of the images called c, how many are c
 *   recall[c]         confusion[c][c] / Σ_p confusion[c][p]   of the images of c, how many were found
 *   loss              mean over images of -log(clip(p[label], 1e-7, 1 - 1e-7)) (Keras's formula)
 * A class never predicted has precision 0, a class with no images recall 0 (scikit-learn's convention).
 */
import { EPSILON } from '../ops/cross-entropy.js';
import type { ImageDataset } from '../data/dataset.js';
import { countInTopK } from './metrics.js';
import type { Sequential } from './model.js';

export interface ClassEvaluation {
  /** The class name. */
  class: string;
  precision: number;
  recall: number;
  /** Test images of this class. */
  support: number;
}

export interface ClassifierEvaluation {
  loss: number;
  accuracy: number;
  /** With a k: the share of images whose true class is among the k most likely (ties with the k-th count in, as Keras). */
  sparse_top_k_categorical_accuracy?: number;
  /** confusion[true][predicted]: number of test images. */
  confusion: number[][];
  per_class: ClassEvaluation[];
}

/** Class probabilities for every image of `data`: [count × classes], row after row; `batchSize` images per forward pass (as Keras, 32). */
export function predictProbabilities(model: Sequential, data: ImageDataset, batchSize = 32): Float32Array {
  const out = model.predict(data, { batchSize });
  const values = Float32Array.from(out.data);
  out.dispose();
  return values;
}

/**
 * Evaluates `model` on `test`. Pass `probabilities` (from `predictProbabilities`) to reuse a
 * prediction already made; `numClasses` defaults to the model's number of outputs. The numbers do
 * not depend on `batchSize`: every image is predicted on its own row.
 */
export function evaluateClassifier(
  model: Sequential, test: ImageDataset, probabilities?: Float32Array, numClasses?: number, batchSize = 32, topK?: number,
): ClassifierEvaluation {
  const classes = numClasses ?? model.perSampleOutputShape[0];
  const probs = probabilities ?? predictProbabilities(model, test, batchSize);
  const result = evaluationFromProbabilities(probs, test.labels, classes, test.classNames);
  if (topK === undefined) return result;
  const { loss, accuracy, ...rest } = result;
  return { loss, accuracy, sparse_top_k_categorical_accuracy: countInTopK(probs, test.labels, test.count, classes, topK) / test.count, ...rest };
}

export function evaluationFromProbabilities(
  probabilities: Float32Array, labels: ArrayLike<number>, numClasses: number, classNames: readonly string[] = [],
): ClassifierEvaluation {
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let lossSum = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = probabilities.subarray(i * numClasses, (i + 1) * numClasses);
    const label = labels[i];
    confusion[label][argMax(row)]++;
    lossSum -= Math.log(Math.min(Math.max(row[label], EPSILON), 1 - EPSILON));
  }
  let correct = 0;
  const per_class = confusion.map((row, c) => {
    correct += row[c];
    const predicted = confusion.reduce((sum, r) => sum + r[c], 0);
    const support = row.reduce((sum, v) => sum + v, 0);
    return { class: classNames[c] ?? String(c), precision: predicted ? row[c] / predicted : 0, recall: support ? row[c] / support : 0, support };
  });
  return { loss: lossSum / labels.length, accuracy: correct / labels.length, confusion, per_class };
}

/** Index of the largest value; the first one on ties. */
export function argMax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
