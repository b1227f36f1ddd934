/**
 * A two-layer network (dense → ReLU → dense → softmax → cross-entropy) written out with plain
 * loops in float64, sharing no code with the engine: the independent oracle for the learning-mode
 * tests. Matrices are row-major number arrays.
 */
export interface MlpWeights {
  /** [inputs, hidden] */
  W1: number[];
  b1: number[];
  /** [hidden, classes] */
  W2: number[];
  b2: number[];
}

export interface MlpSizes {
  n: number;
  inputs: number;
  hidden: number;
  classes: number;
}

/** C[m,n] = A[m,k]·B[k,n] + bias[n] */
export function affine(A: number[], B: number[], bias: number[], m: number, k: number, n: number): number[] {
  const C = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = bias[j];
      for (let p = 0; p < k; p++) sum += A[i * k + p] * B[p * n + j];
      C[i * n + j] = sum;
    }
  }
  return C;
}

export const reluOf = (z: number[]): number[] => z.map((v) => (v > 0 ? v : 0));

export function softmaxRows(z: number[], m: number, n: number): number[] {
  const p = new Array<number>(m * n);
  for (let i = 0; i < m; i++) {
    const row = z.slice(i * n, (i + 1) * n);
    const max = Math.max(...row);
    const exps = row.map((v) => Math.exp(v - max));
    const total = exps.reduce((a, b) => a + b, 0);
    exps.forEach((e, j) => (p[i * n + j] = e / total));
  }
  return p;
}

/** Mean over rows of −log softmax(z)[label], via log-sum-exp. */
export function crossEntropyFromLogits(z: number[], labels: readonly number[], classes: number): number {
  let total = 0;
  labels.forEach((label, i) => {
    const row = z.slice(i * classes, (i + 1) * classes);
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0)) + max;
    total += logSum - row[label];
  });
  return total / labels.length;
}

export function forward(x: number[], w: MlpWeights, s: MlpSizes) {
  const z1 = affine(x, w.W1, w.b1, s.n, s.inputs, s.hidden);
  const h1 = reluOf(z1);
  const z2 = affine(h1, w.W2, w.b2, s.n, s.hidden, s.classes);
  const p = softmaxRows(z2, s.n, s.classes);
  return { z1, h1, z2, p };
}

export function lossOf(x: number[], labels: readonly number[], w: MlpWeights, s: MlpSizes): number {
  return crossEntropyFromLogits(forward(x, w, s).z2, labels, s.classes);
}

/** Central difference (f(v + h) − f(v − h)) / 2h for every element of `values`. */
export function centralDifferences(values: number[], f: (values: number[]) => number, h = 1e-6): number[] {
  return values.map((original, i) => {
    const plus = values.slice();
    plus[i] = original + h;
    const minus = values.slice();
    minus[i] = original - h;
    return (f(plus) - f(minus)) / (2 * h);
  });
}

export function norm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum);
}
