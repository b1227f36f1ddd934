/**
 * The reference kernels: plain TypeScript, one obvious loop per kernel.
 *
 * This is the backend to read when learning what each kernel computes, and the oracle the
 * WASM kernels are tested against. With precision 'float64' every buffer is a Float64Array,
 * which is what the finite-difference gradient checks run on.
 */
import type { ByteStorage, FloatArray, Kernels, Storage } from './kernels.js';
import { createReferenceConvKernels } from './reference-conv.js';

class ArrayStorage implements Storage {
  readonly ptr = -1;
  constructor(readonly data: FloatArray) {}
  get length(): number {
    return this.data.length;
  }
}

/** The smallest normal float32, 2⁻¹²⁶. */
const FLOAT32_MIN_NORMAL = 2 ** -126;

export function createReferenceKernels(precision: 'float32' | 'float64' = 'float32'): Kernels {
  const FloatArrayOf = precision === 'float64' ? Float64Array : Float32Array;
  const flush = precision === 'float64' ? (x: number): number => x : (x: number): number => (Math.abs(x) < FLOAT32_MIN_NORMAL ? 0 : x);
  let bytesHeld = 0;

  return {
    name: 'ts',
    precision,

    alloc(length) {
      bytesHeld += length * FloatArrayOf.BYTES_PER_ELEMENT;
      return new ArrayStorage(new FloatArrayOf(length));
    },
    free(storage) {
      bytesHeld -= storage.length * FloatArrayOf.BYTES_PER_ELEMENT;
    },
    holds: (storage) => storage instanceof ArrayStorage && storage.data instanceof FloatArrayOf,
    allocBytes(length): ByteStorage {
      bytesHeld += length;
      return { length, data: new Uint8Array(length), ptr: -1 };
    },
    freeBytes(storage) {
      bytesHeld -= storage.length;
    },
    memoryBytes: () => bytesHeld,

    fill(out, value) {
      out.data.fill(value);
    },
    copy(src, dst) {
      dst.data.set(src.data);
    },
    addInto(src, dst) {
      const s = src.data, d = dst.data;
      for (let i = 0; i < d.length; i++) d[i] += s[i];
    },
    multiply(a, b, out) {
      const x = a.data, y = b.data, o = out.data;
      for (let i = 0; i < o.length; i++) o[i] = x[i] * y[i];
    },
    scale(a, factor, out) {
      const x = a.data, o = out.data;
      for (let i = 0; i < o.length; i++) o[i] = x[i] * factor;
    },
    axpy(alpha, x, y) {
      const X = x.data, Y = y.data;
      for (let i = 0; i < Y.length; i++) Y[i] += alpha * X[i];
    },
    sum(x) {
      let total = 0;
      for (const value of x.data) total += value;
      return total;
    },
    dot(a, b) {
      const A = a.data, B = b.data;
      let total = 0;
      for (let i = 0; i < A.length; i++) total += A[i] * B[i];
      return total;
    },
    normalizeBytes(src, length, factor, dst) {
      const s = src.data, d = dst.data;
      for (let i = 0; i < length; i++) d[i] = s[i] * factor;
    },

    gemm(m, n, k, a, transposeA, b, transposeB, c, accumulate) {
      const A = a.data, B = b.data, C = c.data;
      // Element (i, p) of op(A) and (p, j) of op(B), read in place from the stored layout.
      const aStrideRow = transposeA ? 1 : k, aStrideCol = transposeA ? m : 1;
      const bStrideRow = transposeB ? 1 : n, bStrideCol = transposeB ? k : 1;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let sum = 0;
          for (let p = 0; p < k; p++) {
            sum += A[i * aStrideRow + p * aStrideCol] * B[p * bStrideRow + j * bStrideCol];
          }
          C[i * n + j] = accumulate ? C[i * n + j] + sum : sum;
        }
      }
    },
    biasAdd(m, n, x, bias, out) {
      const X = x.data, b = bias.data, o = out.data;
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) o[i * n + j] = X[i * n + j] + b[j];
    },
    columnSums(m, n, x, out, accumulate) {
      const X = x.data, o = out.data;
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let i = 0; i < m; i++) sum += X[i * n + j];
        o[j] = accumulate ? o[j] + sum : sum;
      }
    },
    denseForward(m, n, k, x, w, bias, out, relu) {
      this.gemm(m, n, k, x, false, w, false, out, false);
      this.biasAdd(m, n, out, bias, out);
      if (relu) this.reluForward(out, out);
    },

    reluForward(x, out) {
      const X = x.data, o = out.data;
      // NaN passes through (as in TensorFlow), so a diverging run shows up in the loss.
      for (let i = 0; i < o.length; i++) o[i] = X[i] < 0 ? 0 : X[i];
    },
    reluBackward(y, dy, dx, accumulate) {
      const Y = y.data, dY = dy.data, dX = dx.data;
      for (let i = 0; i < dX.length; i++) {
        const g = Y[i] > 0 ? dY[i] : 0;
        dX[i] = accumulate ? dX[i] + g : g;
      }
    },
    softmax(m, n, x, out) {
      const X = x.data, o = out.data;
      for (let i = 0; i < m; i++) {
        const row = i * n;
        let max = -Infinity;
        for (let j = 0; j < n; j++) max = Math.max(max, X[row + j]);
        let sum = 0;
        for (let j = 0; j < n; j++) sum += (o[row + j] = Math.exp(X[row + j] - max));
        for (let j = 0; j < n; j++) o[row + j] /= sum;
      }
    },
    logSoftmax(m, n, x, out) {
      const X = x.data, o = out.data;
      for (let i = 0; i < m; i++) {
        const row = i * n;
        let max = -Infinity;
        for (let j = 0; j < n; j++) max = Math.max(max, X[row + j]);
        let sum = 0;
        for (let j = 0; j < n; j++) sum += Math.exp(X[row + j] - max);
        const logSum = Math.log(sum);
        for (let j = 0; j < n; j++) o[row + j] = X[row + j] - max - logSum;
      }
    },
    softmaxBackward(m, n, y, dy, dx) {
      const Y = y.data, dY = dy.data, dX = dx.data;
      for (let i = 0; i < m; i++) {
        const row = i * n;
        let weighted = 0;
        for (let j = 0; j < n; j++) weighted += dY[row + j] * Y[row + j];
        for (let j = 0; j < n; j++) dX[row + j] = Y[row + j] * (dY[row + j] - weighted);
      }
    },
    logSoftmaxBackward(m, n, y, dy, dx) {
      const Y = y.data, dY = dy.data, dX = dx.data;
      for (let i = 0; i < m; i++) {
        const row = i * n;
        let total = 0;
        for (let j = 0; j < n; j++) total += dY[row + j];
        for (let j = 0; j < n; j++) dX[row + j] = dY[row + j] - Math.exp(Y[row + j]) * total;
      }
    },

    // Convolution and max pooling: reference-conv.ts.
    ...createReferenceConvKernels(),

    softmaxCrossEntropyForward(m, n, logits, labels, probs) {
      const Z = logits.data, y = labels.data, P = probs.data;
      let total = 0;
      for (let i = 0; i < m; i++) {
        const row = i * n;
        let max = -Infinity;
        for (let j = 0; j < n; j++) max = Math.max(max, Z[row + j]);
        let sum = 0;
        for (let j = 0; j < n; j++) sum += (P[row + j] = Math.exp(Z[row + j] - max));
        for (let j = 0; j < n; j++) P[row + j] /= sum;
        // -log p_label = log Σ exp(z) - z_label, computed without rounding p first.
        total += Math.log(sum) + max - Z[row + y[i]];
      }
      return total / m;
    },
    softmaxCrossEntropyBackward(m, n, probs, labels, factor, dlogits) {
      const P = probs.data, y = labels.data, dZ = dlogits.data;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          const onehot = j === y[i] ? 1 : 0;
          dZ[i * n + j] = (P[i * n + j] - onehot) * factor;
        }
      }
    },
    crossEntropyFromProbsForward(m, n, probs, labels, epsilon) {
      const P = probs.data, y = labels.data;
      let total = 0;
      for (let i = 0; i < m; i++) {
        const p = P[i * n + y[i]];
        total -= Math.log(Math.min(Math.max(p, epsilon), 1 - epsilon));
      }
      return total / m;
    },
    crossEntropyFromProbsBackward(m, n, probs, labels, epsilon, factor, dprobs) {
      const P = probs.data, y = labels.data, dP = dprobs.data;
      dP.fill(0);
      for (let i = 0; i < m; i++) {
        const p = P[i * n + y[i]];
        // The clip passes the gradient inside [ε, 1-ε] and blocks it outside, as tf.clipByValue does.
        if (p >= epsilon && p <= 1 - epsilon) dP[i * n + y[i]] = -factor / p;
      }
    },
    countCorrect(m, n, scores, labels) {
      const S = scores.data, y = labels.data;
      let correct = 0;
      for (let i = 0; i < m; i++) {
        let best = 0;
        for (let j = 1; j < n; j++) if (S[i * n + j] > S[i * n + best]) best = j;
        if (best === y[i]) correct++;
      }
      return correct;
    },

    // Optimizer slots below the smallest normal float32 become 0, as in the WASM kernels (see
    // kernels-wasm/assembly/optimizers.ts); in float64 nothing is flushed.
    sgdUpdate(w, g, velocity, lr, momentum, nesterov) {
      const W = w.data, G = g.data;
      if (velocity === null) {
        for (let i = 0; i < W.length; i++) W[i] -= lr * G[i];
        return;
      }
      const V = velocity.data;
      for (let i = 0; i < W.length; i++) {
        V[i] = flush(momentum * V[i] - lr * G[i]);
        W[i] += nesterov ? momentum * V[i] - lr * G[i] : V[i];
      }
    },
    adamUpdate(w, g, m, v, lrT, beta1, beta2, epsilon) {
      const W = w.data, G = g.data, M = m.data, V = v.data;
      // As the WASM kernel: m goes to 0 where lrT·m would be subnormal (floor kept in [2⁻¹²⁶, 2⁻¹⁰⁰]).
      const mFloor = lrT === 0 ? FLOAT32_MIN_NORMAL : Math.min(Math.max(FLOAT32_MIN_NORMAL / Math.abs(Math.fround(lrT)), FLOAT32_MIN_NORMAL), 2 ** -100);
      const flushMoment = precision === 'float64' ? (x: number): number => x : (x: number): number => (Math.abs(x) < mFloor ? 0 : x);
      for (let i = 0; i < W.length; i++) {
        M[i] = flushMoment(beta1 * M[i] + (1 - beta1) * G[i]);
        V[i] = flush(beta2 * V[i] + (1 - beta2) * G[i] * G[i]);
        W[i] -= (lrT * M[i]) / (Math.sqrt(V[i]) + epsilon);
      }
    },
    rmspropUpdate(w, g, ms, mg, mom, lr, rho, momentum, epsilon) {
      const W = w.data, G = g.data, S = ms.data, A = mg?.data, P = mom?.data;
      for (let i = 0; i < W.length; i++) {
        S[i] = rho * S[i] + (1 - rho) * G[i] * G[i];
        let denominator = S[i] + epsilon;
        if (A) {
          A[i] = rho * A[i] + (1 - rho) * G[i];
          denominator = S[i] - A[i] * A[i] + epsilon;
        }
        const increment = (lr * G[i]) / Math.sqrt(denominator);
        if (P) {
          P[i] = momentum * P[i] + increment;
          W[i] -= P[i];
        } else {
          W[i] -= increment;
        }
      }
    },
  };
}
