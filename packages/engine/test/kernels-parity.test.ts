/**
 * Kernel parity: one suite, run over every float32 backend, comparing every kernel with the
 * reference kernels in float64 on the same (float32-exact) inputs.
 *
 * Shapes are chosen to hit every path of the SIMD kernels: lengths around multiples of 4 and
 * 16 (vector bodies and scalar tails), GEMM with every M 1–9 × N 1–17 × K 1–9 under all four
 * transpose combinations with and without accumulate (row tails of the 4-row tile, column
 * tails of the 8-wide panel, short K), sizes past the K and M blocks (K > 256, M > 128), and
 * the layer shapes of an MNIST MLP. Shapes are written M×K×N.
 *
 * GEMM tolerance is the textbook bound for a float32 dot product of K terms summed in any
 * order: |error| ≤ (K + 2)·u·Σ|a·b| (plus |C| when accumulating), u = 2⁻²⁴.
 *
 * The WASM backend's zero-skipping forward and weight gradient (inputs with many exact zeros)
 * are checked the same way over tail shapes and zero fractions 0–1, and bit for bit against
 * its dense kernels, on random inputs and on the fixture's real images.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ByteStorage, Kernels, Storage, Window2d } from '../src/backend/kernels.js';
import { createReferenceKernels } from '../src/backend/reference.js';
import { createWasmKernels, type WasmKernels } from '../src/backend/wasm.js';
import { loadImageDataset } from '../src/data/load.js';
import { windowAxis, type Padding } from '../src/ops/window.js';

const U = 2 ** -24;

/** mulberry32: a small seeded PRNG, so every run sees the same inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** float32-exact values uniform in [low, high). */
function randomValues(random: () => number, length: number, low = -1, high = 1): Float32Array {
  const values = new Float32Array(length);
  for (let i = 0; i < length; i++) values[i] = low + (high - low) * random();
  return values;
}

function randomLabels(random: () => number, m: number, classes: number): Float32Array {
  const labels = new Float32Array(m);
  for (let i = 0; i < m; i++) labels[i] = Math.floor(random() * classes);
  return labels;
}

function put(kernels: Kernels, values: ArrayLike<number>): Storage {
  const storage = kernels.alloc(values.length);
  storage.data.set(values);
  return storage;
}

function read(storage: Storage): number[] {
  return Array.from(storage.data);
}

/** |got - want| ≤ rtol·|want| + atol, elementwise; NaN must meet NaN. */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, label: string, rtol = 2e-6, atol = 1e-7): void {
  expect(got.length, `${label}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w)) {
      expect(Number.isNaN(g), `${label}[${i}]: want NaN, got ${g}`).toBe(true);
      continue;
    }
    const err = Math.abs(g - w);
    if (!(err <= rtol * Math.abs(w) + atol)) {
      expect.fail(`${label}[${i}]: got ${g}, want ${w} (error ${err.toExponential(2)})`);
    }
  }
}

const oracle = createReferenceKernels('float64');

interface GemmCase {
  m: number;
  n: number;
  k: number;
  transposeA: boolean;
  transposeB: boolean;
  accumulate: boolean;
}

/** Runs one GEMM on `kernels` and on the oracle, and checks it against the error bound. */
function checkGemm(kernels: Kernels, random: () => number, c: GemmCase, aValues?: Float32Array): Float32Array {
  const { m, n, k, transposeA, transposeB, accumulate } = c;
  const a = aValues ?? randomValues(random, m * k), b = randomValues(random, k * n), c0 = randomValues(random, m * n);
  const label = `gemm ${m}×${k}×${n} tA=${transposeA} tB=${transposeB} acc=${accumulate}`;

  const A = put(kernels, a), B = put(kernels, b), C = put(kernels, c0);
  kernels.gemm(m, n, k, A, transposeA, B, transposeB, C, accumulate);
  const got = read(C);
  kernels.free(A); kernels.free(B); kernels.free(C);

  const oA = put(oracle, a), oB = put(oracle, b), oC = put(oracle, c0);
  oracle.gemm(m, n, k, oA, transposeA, oB, transposeB, oC, accumulate);
  // Σ|a·b| (+ |c|): the scale of each element's rounding error.
  const absA = put(oracle, a.map(Math.abs)), absB = put(oracle, b.map(Math.abs)), bound = put(oracle, c0.map(Math.abs));
  oracle.gemm(m, n, k, absA, transposeA, absB, transposeB, bound, accumulate);
  const want = oC.data, scale = bound.data;
  const gamma = (k + 2) * U;
  for (let i = 0; i < m * n; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= gamma * scale[i] + 1e-30)) {
      expect.fail(`${label}: C[${Math.floor(i / n)},${i % n}] = ${got[i]}, want ${want[i]} (error ${err.toExponential(2)} > bound ${(gamma * scale[i]).toExponential(2)})`);
    }
  }
  return Float32Array.from(got);
}

/** The MNIST MLP's products (784 → 128 → 10, batch 32), M×K×N. */
const layerShapes: GemmCase[] = [
  { m: 32, k: 784, n: 128, transposeA: false, transposeB: false, accumulate: false }, // X·W1
  { m: 784, k: 32, n: 128, transposeA: true, transposeB: false, accumulate: false }, // Xᵀ·dZ1
  { m: 32, k: 128, n: 10, transposeA: false, transposeB: false, accumulate: false }, // H·W2
  { m: 128, k: 32, n: 10, transposeA: true, transposeB: false, accumulate: false }, // Hᵀ·dZ2
  { m: 32, k: 10, n: 128, transposeA: false, transposeB: true, accumulate: false }, // dZ2·W2ᵀ
  { m: 32, k: 128, n: 784, transposeA: false, transposeB: true, accumulate: true }, // dZ1·W1ᵀ
];

const lengths = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 1000, 4099];

const backends: Array<[string, () => Kernels]> = [
  ['reference float32', () => createReferenceKernels('float32')],
  ['wasm', () => createWasmKernels()],
];

describe.each(backends)('%s kernels match the float64 reference', (_name, make) => {
  const kernels = make();

  /** Runs `run` on both backends with the same inputs and compares every output buffer. */
  function compare(
    label: string,
    inputs: ArrayLike<number>[],
    run: (k: Kernels, buffers: Storage[]) => number | void,
    options: { rtol?: number; atol?: number; outputs?: number[] } = {},
  ): void {
    const mine = inputs.map((values) => put(kernels, values));
    const theirs = inputs.map((values) => put(oracle, values));
    const gotResult = run(kernels, mine);
    const wantResult = run(oracle, theirs);
    const outputs = options.outputs ?? inputs.map((_, i) => i);
    for (const i of outputs) expectClose(read(mine[i]), read(theirs[i]), `${label} buffer ${i}`, options.rtol, options.atol);
    if (typeof wantResult === 'number') expectClose([gotResult as number], [wantResult], `${label} result`, options.rtol, options.atol);
    for (const storage of mine) kernels.free(storage);
  }

  describe('elementwise', () => {
    const random = prng(1);
    it.each(lengths)('length %i', (n) => {
      const a = randomValues(random, n), b = randomValues(random, n), c = randomValues(random, n);
      compare('fill', [a], (k, [x]) => k.fill(x, -2.5));
      compare('copy', [a, b], (k, [x, y]) => k.copy(x, y));
      compare('addInto', [a, b], (k, [x, y]) => k.addInto(x, y));
      compare('multiply', [a, b, c], (k, [x, y, z]) => k.multiply(x, y, z));
      compare('multiply in place', [a, b], (k, [x, y]) => k.multiply(x, y, x));
      compare('scale', [a, c], (k, [x, z]) => k.scale(x, 0.37, z));
      compare('axpy', [a, b], (k, [x, y]) => k.axpy(-1.75, x, y));
      compare('sum', [a], (k, [x]) => k.sum(x), { atol: 1e-6 });
      compare('dot', [a, b], (k, [x, y]) => k.dot(x, y), { atol: 1e-6 });
    });

    it('normalizeBytes converts the first `length` bytes and leaves the rest of dst alone', () => {
      for (const n of [...lengths.filter((n) => n > 0), 784 * 3 + 5]) {
        const bytes = new Uint8Array(n + 7);
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
        bytes[0] = 255;
        const results: number[][] = [];
        for (const k of [kernels, oracle]) {
          const src: ByteStorage = k.allocBytes(bytes.length);
          src.data.set(bytes);
          const dst = put(k, new Float32Array(n + 7).fill(-1));
          k.normalizeBytes(src, n, 1 / 255, dst);
          results.push(read(dst));
          k.freeBytes(src);
          k.free(dst);
        }
        expectClose(results[0], results[1], `normalizeBytes ${n}`);
      }
    });
  });

  describe('gemm', () => {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        for (const accumulate of [false, true]) {
          it(`every M 1–9 × N 1–17 × K 1–9, transposeA=${transposeA} transposeB=${transposeB} accumulate=${accumulate}`, () => {
            const random = prng(100 + Number(transposeA) * 4 + Number(transposeB) * 2 + Number(accumulate));
            for (let m = 1; m <= 9; m++) {
              for (let n = 1; n <= 17; n++) {
                for (let k = 1; k <= 9; k++) checkGemm(kernels, random, { m, n, k, transposeA, transposeB, accumulate });
              }
            }
          });
        }
      }
    }

    it('sizes above 64, past the K block (256) and the M block (128)', () => {
      const random = prng(7);
      const shapes: Array<[number, number, number]> = [[65, 67, 66], [130, 300, 41], [7, 513, 9], [129, 257, 17]];
      for (const [m, k, n] of shapes) {
        for (const transposeA of [false, true]) {
          for (const transposeB of [false, true]) {
            checkGemm(kernels, random, { m, n, k, transposeA, transposeB, accumulate: transposeA !== transposeB });
          }
        }
      }
    });

    it.each(layerShapes.map((s) => [`${s.m}×${s.k}×${s.n}${s.transposeA ? ' Aᵀ' : ''}${s.transposeB ? ' Bᵀ' : ''}`, s] as const))(
      'layer shape %s',
      (_label, shape) => checkGemm(kernels, prng(shape.m * 31 + shape.k), shape),
    );
  });

  describe('dense layer kernels', () => {
    const random = prng(11);
    const shapes: Array<[number, number, number]> = [];
    for (let m = 1; m <= 9; m++) for (let n = 1; n <= 17; n += 2) shapes.push([m, 1 + ((m * n) % 9), n]);
    shapes.push([32, 784, 128], [32, 128, 10], [33, 300, 19]);

    it('denseForward = act(x·w + bias), with and without ReLU', () => {
      for (const [m, k, n] of shapes) {
        for (const relu of [false, true]) {
          const x = randomValues(random, m * k), w = randomValues(random, k * n), bias = randomValues(random, n);
          compare(`dense ${m}×${k}×${n} relu=${relu}`, [x, w, bias, new Float32Array(m * n)],
            (kk, [X, W, b, out]) => kk.denseForward(m, n, k, X, W, b, out, relu), { outputs: [3], rtol: 1e-5, atol: 1e-5 });
        }
      }
    });

    it('biasAdd (also in place) and columnSums (also accumulating)', () => {
      for (const [m, , n] of shapes) {
        const x = randomValues(random, m * n), bias = randomValues(random, n), out = randomValues(random, n);
        compare(`biasAdd ${m}×${n}`, [x, bias, new Float32Array(m * n)], (k, [X, b, o]) => k.biasAdd(m, n, X, b, o));
        compare(`biasAdd in place ${m}×${n}`, [x, bias], (k, [X, b]) => k.biasAdd(m, n, X, b, X));
        for (const accumulate of [false, true]) {
          compare(`columnSums ${m}×${n} acc=${accumulate}`, [x, out], (k, [X, o]) => k.columnSums(m, n, X, o, accumulate), { atol: 1e-6 });
        }
      }
    });
  });

  describe('activations', () => {
    const random = prng(21);

    it.each(lengths)('ReLU forward and backward, length %i', (n) => {
      const x = randomValues(random, n);
      if (n > 2) {
        x[0] = Number.NaN; // NaN passes through ReLU
        x[1] = -0;
        x[2] = 0;
      }
      const y = x.map((v) => (v < 0 ? 0 : v));
      const dy = randomValues(random, n), dx = randomValues(random, n);
      compare('reluForward', [x, new Float32Array(n)], (k, [X, out]) => k.reluForward(X, out), { outputs: [1] });
      compare('reluForward in place', [x], (k, [X]) => k.reluForward(X, X));
      for (const accumulate of [false, true]) {
        compare(`reluBackward acc=${accumulate}`, [y, dy, dx], (k, [Y, dY, dX]) => k.reluBackward(Y, dY, dX, accumulate), { outputs: [2] });
      }
    });

    it('softmax and log-softmax, forward and backward, every n 1–17 and 32×10', () => {
      const shapes: Array<[number, number]> = [];
      for (let n = 1; n <= 17; n++) shapes.push([1 + (n % 5), n]);
      shapes.push([32, 10]);
      for (const [m, n] of shapes) {
        for (const spread of [1, 80]) {
          // spread 80 would overflow exp without subtracting the row max first
          const x = randomValues(random, m * n, -spread, spread), dy = randomValues(random, m * n);
          compare(`softmax ${m}×${n}`, [x, new Float32Array(m * n)], (k, [X, o]) => k.softmax(m, n, X, o), { outputs: [1] });
          compare(`logSoftmax ${m}×${n}`, [x, new Float32Array(m * n)], (k, [X, o]) => k.logSoftmax(m, n, X, o), { outputs: [1], atol: 1e-5 });
          const y = new Float32Array(m * n), ly = new Float32Array(m * n);
          const s = put(oracle, x), o1 = put(oracle, y), o2 = put(oracle, ly);
          oracle.softmax(m, n, s, o1);
          oracle.logSoftmax(m, n, s, o2);
          compare(`softmaxBackward ${m}×${n}`, [o1.data, dy, new Float32Array(m * n)],
            (k, [Y, dY, dX]) => k.softmaxBackward(m, n, Y, dY, dX), { outputs: [2], atol: 1e-6 });
          compare(`logSoftmaxBackward ${m}×${n}`, [o2.data, dy, new Float32Array(m * n)],
            (k, [Y, dY, dX]) => k.logSoftmaxBackward(m, n, Y, dY, dX), { outputs: [2], atol: 1e-6 });
        }
      }
    });
  });

  describe('losses', () => {
    const random = prng(31);
    const shapes: Array<[number, number]> = [[1, 1], [1, 2], [3, 10], [5, 17], [32, 10], [64, 10]];

    it('softmax cross-entropy from logits: probabilities, mean loss, gradient', () => {
      for (const [m, n] of shapes) {
        for (const spread of [1, 50]) {
          const logits = randomValues(random, m * n, -spread, spread), labels = randomLabels(random, m, n);
          compare(`softmaxCrossEntropyForward ${m}×${n}`, [logits, labels, new Float32Array(m * n)],
            (k, [z, y, p]) => k.softmaxCrossEntropyForward(m, n, z, y, p), { outputs: [2], rtol: 1e-5, atol: 1e-6 });
          const probs = randomValues(random, m * n, 0, 1);
          compare(`softmaxCrossEntropyBackward ${m}×${n}`, [probs, labels, new Float32Array(m * n)],
            (k, [p, y, dz]) => k.softmaxCrossEntropyBackward(m, n, p, y, 1 / m, dz), { outputs: [2] });
        }
      }
    });

    it('cross-entropy from probabilities, including clipped probabilities', () => {
      const epsilon = 1e-7;
      for (const [m, n] of shapes) {
        const probs = randomValues(random, m * n, 0, 1), labels = randomLabels(random, m, n);
        // Probabilities at and past both ends of the clip range.
        const extremes = [0, 1, 1e-9, 1 - 1e-9, 0.5];
        for (let i = 0; i < Math.min(m, extremes.length); i++) probs[i * n + labels[i]] = extremes[i];
        compare(`crossEntropyFromProbsForward ${m}×${n}`, [probs, labels],
          (k, [p, y]) => k.crossEntropyFromProbsForward(m, n, p, y, epsilon), { outputs: [], rtol: 1e-6 });
        compare(`crossEntropyFromProbsBackward ${m}×${n}`, [probs, labels, randomValues(random, m * n)],
          (k, [p, y, dp]) => k.crossEntropyFromProbsBackward(m, n, p, y, epsilon, 1 / m, dp), { outputs: [2] });
      }
    });

    it('countCorrect: arg-max against labels, first maximum wins', () => {
      for (const [m, n] of shapes) {
        const scores = randomValues(random, m * n), labels = randomLabels(random, m, n);
        // Ties: copy the label's score to an earlier and a later column in some rows.
        for (let i = 0; i < m; i += 2) {
          const label = labels[i];
          scores[i * n + label] = 2;
          if (label > 0 && i % 4 === 0) scores[i * n] = 2;
          if (label < n - 1) scores[i * n + n - 1] = 2;
        }
        const mine = [put(kernels, scores), put(kernels, labels)];
        const theirs = [put(oracle, scores), put(oracle, labels)];
        expect(kernels.countCorrect(m, n, mine[0], mine[1]), `countCorrect ${m}×${n}`).toBe(oracle.countCorrect(m, n, theirs[0], theirs[1]));
        for (const s of mine) kernels.free(s);
      }
    });
  });

  describe('convolution and max pooling (NHWC)', () => {
    /** A window over [batch, h, w, c] with Keras's padding rules. */
    function geometry(batch: number, h: number, w: number, c: number, window: [number, number], strides: [number, number], padding: Padding): Window2d {
      const rows = windowAxis(h, window[0], strides[0], padding), cols = windowAxis(w, window[1], strides[1], padding);
      return {
        batch, inHeight: h, inWidth: w, channels: c, outHeight: rows.out, outWidth: cols.out,
        windowHeight: window[0], windowWidth: window[1], strideHeight: strides[0], strideWidth: strides[1],
        padTop: rows.padBefore, padLeft: cols.padBefore,
      };
    }
    const label = (g: Window2d, extra: string) =>
      `${g.batch}×${g.inHeight}×${g.inWidth}×${g.channels} window ${g.windowHeight}×${g.windowWidth} stride ${g.strideHeight},${g.strideWidth} pad ${g.padTop},${g.padLeft} ${extra}`;

    /**
     * Runs `run` on this backend and on the oracle, and checks every output element against the
     * float32 bound for a sum of `terms` products: |error| ≤ (terms + 2)·u·Σ|products| (the oracle
     * run on absolute values gives Σ|products|).
     */
    function checkSums(name: string, inputs: Float32Array[], output: number, terms: number, run: (k: Kernels, b: Storage[]) => void, slack = 1): void {
      const mine = inputs.map((v) => put(kernels, v));
      run(kernels, mine);
      const got = read(mine[output]);
      for (const b of mine) kernels.free(b);
      const theirs = inputs.map((v) => put(oracle, v));
      run(oracle, theirs);
      const scale = inputs.map((v) => put(oracle, v.map(Math.abs)));
      run(oracle, scale);
      const want = theirs[output].data, bound = scale[output].data;
      const gamma = (terms + 2) * U * slack;
      // Winograd's error is bounded normwise, not elementwise (below): scale by the largest bound.
      const largest = slack > 1 ? bound.reduce((a, b) => Math.max(a, b), 0) : 0;
      for (let i = 0; i < want.length; i++) {
        const err = Math.abs(got[i] - want[i]);
        if (!(err <= gamma * Math.max(bound[i], largest) + 1e-30)) expect.fail(`${name}[${i}]: got ${got[i]}, want ${want[i]} (error ${err.toExponential(2)})`);
      }
    }

    /**
     * Winograd's F(2×2, 3×3) (the WASM backend's 3×3 stride-1 path) computes each output from
     * transformed tiles: sums and differences of the 16 inputs of a 4×4 tile and of the 2×2 block
     * of output gradients, with coefficients ±½ and ±1, that cancel in exact arithmetic. Its
     * rounding error is therefore bounded by the tile's magnitudes rather than by each output's
     * own products (a normwise bound, Barabasz et al. 2020): γ·16·max_i Σ|products|_i here. A wrong
     * transform gives errors of the size of the values themselves, far above it.
     */
    const WINOGRAD_SLACK = 16;
    const slackFor = (window: [number, number], strides: [number, number]) =>
      window[0] === 3 && window[1] === 3 && strides[0] === 1 && strides[1] === 1 ? WINOGRAD_SLACK : 1;

    // Channels around multiples of 4 (vector bodies and tails), windows inside and across the
    // padding, strides 1 and 2, 1×1 (the patch-free path), oblong windows, and the tutorial CNN's layers.
    const convCases: Array<[number[], [number, number], number, [number, number], Padding]> = [];
    for (const c of [1, 2, 3, 4, 5, 8, 9]) {
      for (const padding of ['valid', 'same'] as const) {
        convCases.push([[2, 5, 6, c], [3, 3], 1 + (c % 5), [1, 1], padding]);
        convCases.push([[1, 7, 6, c], [3, 2], 3, [2, 2], padding]);
        convCases.push([[1, 4, 5, c], [2, 2], 9, [1, 2], padding]);
      }
      convCases.push([[2, 3, 4, c], [1, 1], 5, [1, 1], 'valid']);
      convCases.push([[1, 5, 5, c], [1, 1], 3, [2, 2], 'same']);
      convCases.push([[1, 3, 3, c], [3, 3], 2, [1, 1], 'valid']);
    }
    convCases.push([[2, 28, 28, 1], [3, 3], 32, [1, 1], 'valid'], [[2, 13, 13, 32], [3, 3], 64, [1, 1], 'valid']);

    it.each(convCases.map((c) => [JSON.stringify(c), c] as const))('conv2d forward, filter and input gradients %s', (_name, [shape, window, filters, strides, padding]) => {
      const random = prng(shape.reduce((a, b) => a * 7 + b, filters));
      const g = geometry(shape[0], shape[1], shape[2], shape[3], window, strides, padding);
      const K = window[0] * window[1] * shape[3];
      const xSize = shape.reduce((a, b) => a * b, 1), wSize = K * filters, ySize = g.batch * g.outHeight * g.outWidth * filters;
      const x = randomValues(random, xSize), w = randomValues(random, wSize), bias = randomValues(random, filters), dy = randomValues(random, ySize);
      const slack = slackFor(window, strides);
      for (const relu of [false, true]) {
        checkSums(label(g, `conv2d relu=${relu}`), [x, w, bias, new Float32Array(ySize)], 3, K + 1,
          (k, [X, W, B, Y]) => k.conv2d(g, filters, X, W, B, Y, relu), slack);
      }
      for (const accumulate of [false, true]) {
        const overlap = Math.ceil(window[0] / strides[0]) * Math.ceil(window[1] / strides[1]);
        checkSums(label(g, `conv2dInputGrad acc=${accumulate}`), [dy, w, randomValues(random, xSize)], 2, overlap * filters + 1,
          (k, [dY, W, dX]) => k.conv2dInputGrad(g, filters, dY, W, dX, accumulate), slack);
        checkSums(label(g, `conv2dFilterGrad acc=${accumulate}`), [x, dy, randomValues(random, wSize)], 2, g.batch * g.outHeight * g.outWidth + 1,
          (k, [X, dY, dW]) => k.conv2dFilterGrad(g, filters, X, dY, dW, accumulate), slack);
      }
    });

    const poolCases: Array<[number[], [number, number], [number, number], Padding]> = [];
    for (const c of [1, 3, 4, 5, 8, 32]) {
      for (const padding of ['valid', 'same'] as const) {
        poolCases.push([[2, 5, 5, c], [2, 2], [2, 2], padding]);
        poolCases.push([[1, 7, 6, c], [3, 3], [2, 2], padding]);
        poolCases.push([[1, 5, 4, c], [3, 3], [1, 1], padding]);
        poolCases.push([[2, 4, 6, c], [2, 3], [1, 2], padding]);
      }
    }
    poolCases.push([[2, 26, 26, 32], [2, 2], [2, 2], 'valid'], [[2, 11, 11, 64], [2, 2], [2, 2], 'valid']);

    it.each(poolCases.map((c) => [JSON.stringify(c), c] as const))('maxPool2d forward and gradient %s, with ties, NaN and -Infinity', (_name, [shape, window, strides, padding]) => {
      const random = prng(shape.reduce((a, b) => a * 5 + b, window[0] * 3 + strides[0]));
      const g = geometry(shape[0], shape[1], shape[2], shape[3], window, strides, padding);
      const xSize = shape.reduce((a, b) => a * b, 1), ySize = g.batch * g.outHeight * g.outWidth * g.channels;
      // Few distinct values, so many windows hold their maximum twice or more.
      const x = randomValues(random, xSize).map((v) => Math.round(v * 3) / 3);
      x[0] = Number.NaN;
      x[Math.floor(xSize / 2)] = -Infinity;
      const y = new Float32Array(ySize);
      compare(label(g, 'maxPool2d'), [x, y], (k, [X, Y]) => k.maxPool2d(g, X, Y), { outputs: [1] });
      const pooled = put(oracle, x), out = oracle.alloc(ySize);
      oracle.maxPool2d(g, pooled, out);
      const dy = randomValues(random, ySize);
      for (const accumulate of [false, true]) {
        compare(label(g, `maxPool2dGrad acc=${accumulate}`), [x, out.data, dy, randomValues(random, xSize)],
          (k, [X, Y, dY, dX]) => k.maxPool2dGrad(g, X, Y, dY, dX, accumulate), { outputs: [3], rtol: 1e-6, atol: 1e-7 });
      }
    });
  });

  describe('optimizers', () => {
    const random = prng(41);
    it.each(lengths)('SGD, momentum, Nesterov, Adam and RMSprop, length %i', (n) => {
      const w = randomValues(random, n), g = randomValues(random, n), v = randomValues(random, n, -0.1, 0.1);
      compare('sgd', [w, g], (k, [W, G]) => k.sgdUpdate(W, G, null, 0.01, 0, false));
      for (const nesterov of [false, true]) {
        compare(`sgd momentum nesterov=${nesterov}`, [w, g, v], (k, [W, G, V]) => k.sgdUpdate(W, G, V, 0.01, 0.9, nesterov), { atol: 1e-7 });
      }
      const m1 = randomValues(random, n, -0.1, 0.1), v1 = randomValues(random, n, 0, 0.01);
      const lrT = (0.001 * Math.sqrt(1 - 0.999 ** 3)) / (1 - 0.9 ** 3);
      compare('adam', [w, g, m1, v1], (k, [W, G, M, V]) => k.adamUpdate(W, G, M, V, lrT, 0.9, 0.999, 1e-7), { rtol: 1e-5, atol: 1e-7 });
      // RMSprop: the variance estimate ms - mg² must stay positive, so mg is small next to √ms.
      const ms = randomValues(random, n, 0.01, 0.02), mg = randomValues(random, n, -0.01, 0.01), mom = randomValues(random, n, -0.01, 0.01);
      compare('rmsprop', [w, g, ms], (k, [W, G, S]) => k.rmspropUpdate(W, G, S, null, null, 0.001, 0.9, 0, 1e-7), { rtol: 1e-5, atol: 1e-7 });
      compare('rmsprop centered, momentum', [w, g, ms, mg, mom], (k, [W, G, S, A, P]) => k.rmspropUpdate(W, G, S, A, P, 0.001, 0.9, 0.9, 1e-7), { rtol: 1e-5, atol: 1e-7 });
    });

    it('store moments and velocities that fall below the smallest normal float32 as 0, and keep NaN', () => {
      const tiny = 2 ** -126;
      // Adam's m goes to 0 once lrT·m would be subnormal: below 2⁻¹²⁶/lrT, kept within [2⁻¹²⁶, 2⁻¹⁰⁰].
      const momentFloor = (lrT: number) => Math.min(Math.max(Math.fround(tiny / Math.fround(lrT)), tiny), 2 ** -100);
      // Slot values whose update lands just below, at, and above the floor (g = 0: the slot only decays), and NaN.
      const slotsAround = (floor: number) => [floor / 0.9 * 0.99, -floor / 0.9 * 0.99, floor / 0.9 * 1.01, 1e-3, NaN, 2 ** -140, 0, floor * 4, tiny * 4];
      const run = (slots: number[], update: (W: Storage, G: Storage, S: Storage) => void): number[] => {
        const n = slots.length;
        const W = put(kernels, new Array(n).fill(0.5)), G = put(kernels, new Array(n).fill(0)), S = put(kernels, slots);
        update(W, G, S);
        const result = read(S);
        for (const s of [W, G, S]) kernels.free(s);
        return result;
      };
      const expected = (slots: number[], decay: number, floor: number) => slots.map((s) => {
        const x = Math.fround(Math.fround(decay) * Math.fround(s));
        return Math.abs(x) < floor ? 0 : x;
      });
      const check = (got: number[], want: number[], label: string): void => {
        for (let i = 0; i < want.length; i++) {
          if (Number.isNaN(want[i])) expect(Number.isNaN(got[i]), `${label}[${i}] stays NaN`).toBe(true);
          else expect(Math.abs(got[i] - want[i]), `${label}[${i}]: got ${got[i]}, want ${want[i]}`).toBeLessThanOrEqual(Math.abs(want[i]) * 1e-6);
          if (want[i] === 0) expect(got[i], `${label}[${i}] is 0`).toBe(0);
        }
      };
      const ones = (n: number) => put(kernels, new Array(n).fill(1));
      for (const lrT of [1e-3, 2e-40, 1e-35, 0, 3]) {
        const floor = lrT === 0 ? tiny : momentFloor(lrT);
        const slots = slotsAround(floor);
        check(run(slots, (W, G, S) => kernels.adamUpdate(W, G, S, ones(slots.length), lrT, 0.9, 0.999, 1e-7)), expected(slots, 0.9, floor), `adam m, lrT ${lrT}`);
      }
      expect(momentFloor(1e-3), 'at lr 1e-3 the floor is 2⁻¹²⁶/1e-3').toBeCloseTo(1.1755e-35, 38);
      const slots = slotsAround(tiny);
      check(run(slots, (W, G, S) => kernels.adamUpdate(W, G, put(kernels, new Array(slots.length).fill(0)), S, 1e-3, 0.9, 0.999, 1e-7)), expected(slots, 0.999, tiny), 'adam v');
      check(run(slots, (W, G, S) => kernels.sgdUpdate(W, G, S, 0.01, 0.9, false)), expected(slots, 0.9, tiny), 'sgd velocity');
    });
  });
});

/** float32-exact values in [-1, 1), each exactly 0 with probability `zeros` (all of them at 1). */
function valuesWithZeros(random: () => number, length: number, zeros: number): Float32Array {
  const values = randomValues(random, length);
  // A third of the zeros are -0: the zero-skipping kernels must skip both.
  for (let i = 0; i < length; i++) if (zeros >= 1 || random() < zeros) values[i] = i % 3 === 0 ? -0 : 0;
  return values;
}

/** Same bits, so -0 against +0 or two different NaNs would count as a difference. */
function expectSameBits(got: Float32Array, want: Float32Array, label: string): void {
  expect(got.length, `${label}: length`).toBe(want.length);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length), w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) expect.fail(`${label}[${i}]: got ${got[i]}, dense kernel gives ${want[i]}`);
  }
}

describe('wasm zero-skipping products (inputs with many exact zeros)', () => {
  const wasm: WasmKernels = createWasmKernels();
  const policy = wasm.sparseInput;
  const defaults = { ...policy };

  /** Runs `run` with the sparse path forced on (every call) or off; checks the path taken. */
  function withPath<T>(sparse: boolean, run: () => T, expectCalls: { forward: number; gradient: number }): T {
    const before = { forward: policy.forwardCalls, gradient: policy.gradientCalls };
    Object.assign(policy, sparse
      ? { enabled: true, minColumns: 1, minFeatures: 1, minZeroFractionForward: 0, minZeroFractionGradient: 0 }
      : { enabled: false });
    try {
      const result = run();
      const calls = sparse ? expectCalls : { forward: 0, gradient: 0 };
      expect(policy.forwardCalls - before.forward, 'sparse forward calls').toBe(calls.forward);
      expect(policy.gradientCalls - before.gradient, 'sparse gradient calls').toBe(calls.gradient);
      return result;
    } finally {
      Object.assign(policy, { enabled: defaults.enabled, minColumns: defaults.minColumns, minFeatures: defaults.minFeatures,
        minZeroFractionForward: defaults.minZeroFractionForward, minZeroFractionGradient: defaults.minZeroFractionGradient });
    }
  }

  function denseForward(x: Float32Array, w: Float32Array, bias: Float32Array, m: number, n: number, k: number, relu: boolean): Float32Array {
    const X = put(wasm, x), W = put(wasm, w), B = put(wasm, bias), out = wasm.alloc(m * n);
    wasm.denseForward(m, n, k, X, W, B, out, relu);
    const result = Float32Array.from(out.data);
    for (const s of [X, W, B, out]) wasm.free(s);
    return result;
  }

  const ns = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 23, 24, 25, 31, 40, 41, 47, 48, 128];
  const ks = [1, 2, 3, 5, 8, 9, 63, 64, 65, 129, 784];
  const zeroFractions = [0, 0.5, 0.9, 1];

  it.each(zeroFractions)('forward: act(x·w + bias) with %f of x zero, against the reference and bit for bit against the dense kernel', (zeros) => {
    const random = prng(200 + zeros * 10);
    for (const m of [1, 2, 3, 5, 9, 33]) {
      for (const n of ns) {
        for (const k of ks) {
          if (m * n * k > 400_000) continue;
          const relu = (m + n + k) % 2 === 0;
          const x = valuesWithZeros(random, m * k, zeros), w = randomValues(random, k * n), bias = randomValues(random, n);
          const label = `sparse dense ${m}×${k}×${n} relu=${relu} zeros=${zeros}`;
          const sparse = withPath(true, () => denseForward(x, w, bias, m, n, k, relu), { forward: 1, gradient: 0 });
          const dense = withPath(false, () => denseForward(x, w, bias, m, n, k, relu), { forward: 0, gradient: 0 });
          // The GEMM error bound, with |bias| in the scale (ReLU only shrinks the error).
          const X = put(oracle, x), W = put(oracle, w), B = put(oracle, bias), out = oracle.alloc(m * n);
          oracle.denseForward(m, n, k, X, W, B, out, relu);
          const scale = oracle.alloc(m * n);
          oracle.denseForward(m, n, k, put(oracle, x.map(Math.abs)), put(oracle, w.map(Math.abs)), put(oracle, bias.map(Math.abs)), scale, false);
          for (let i = 0; i < m * n; i++) {
            const err = Math.abs(sparse[i] - out.data[i]);
            if (!(err <= (k + 2) * U * scale.data[i] + 1e-30)) expect.fail(`${label}[${i}]: got ${sparse[i]}, want ${out.data[i]} (error ${err.toExponential(2)})`);
          }
          expectSameBits(sparse, dense, label);
        }
      }
    }
  });

  it.each(zeroFractions)('weight gradient xᵀ·dz with %f of x zero, with and without accumulate, against the reference and the dense kernel', (zeros) => {
    const random = prng(300 + zeros * 10);
    for (const batch of [1, 2, 3, 5, 9, 32, 33]) {
      for (const n of ns) {
        for (const k of [1, 3, 8, 9, 63, 65, 784]) {
          for (const accumulate of [false, true]) {
            // gemm(k, n, batch): x stored [batch, k] is Aᵀ.
            const shape = { m: k, n, k: batch, transposeA: true, transposeB: false, accumulate };
            const x = valuesWithZeros(random, batch * k, zeros);
            const state = random() * 2 ** 32;
            const sparse = withPath(true, () => checkGemm(wasm, prng(state), shape, x), { forward: 0, gradient: 1 });
            const dense = withPath(false, () => checkGemm(wasm, prng(state), shape, x), { forward: 0, gradient: 0 });
            expectSameBits(sparse, dense, `sparse weight gradient ${k}×${batch}×${n} acc=${accumulate} zeros=${zeros}`);
          }
        }
      }
    }
  });

  it('the other products never take the sparse path', () => {
    const random = prng(400);
    withPath(true, () => {
      for (const [transposeA, transposeB] of [[false, false], [false, true], [true, true]] as const) {
        checkGemm(wasm, random, { m: 9, n: 30, k: 33, transposeA, transposeB, accumulate: false }, valuesWithZeros(random, 9 * 33, 0.9));
      }
    }, { forward: 0, gradient: 0 });
  });

  it('fixture images: the default policy takes the sparse path, and it matches the dense kernels bit for bit', () => {
    const fixture = fileURLToPath(new URL('../../../test/fixtures/fashion-mnist/', import.meta.url));
    const test = loadImageDataset(`${fixture}t10k-images-idx3-ubyte.gz`, `${fixture}t10k-labels-idx1-ubyte.gz`);
    const k = test.rows * test.cols, n = 128, m = test.count;
    const x = new Float32Array(m * k);
    for (let i = 0; i < x.length; i++) x[i] = test.images[i] / 255;
    let zeros = 0;
    for (const v of x) zeros += v === 0 ? 1 : 0;
    expect(zeros / x.length).toBeGreaterThan(defaults.minZeroFractionForward);

    const random = prng(500);
    const w = randomValues(random, k * n, -0.08, 0.08), bias = randomValues(random, n, -0.1, 0.1);
    const dz = randomValues(random, m * n, -0.01, 0.01);

    // The whole test set as one batch, as inference runs it, then batches of 32 as training does.
    const run = (): { forward: Float32Array[]; gradient: Float32Array } => {
      const forward = [denseForward(x, w, bias, m, n, k, true)];
      const X = put(wasm, x), DZ = put(wasm, dz), dW = wasm.alloc(k * n);
      for (let i0 = 0; i0 + 32 <= m; i0 += 32) {
        forward.push(denseForward(x.subarray(i0 * k, (i0 + 32) * k), w, bias, 32, n, k, true));
        const xb = put(wasm, x.subarray(i0 * k, (i0 + 32) * k)), dzb = put(wasm, dz.subarray(i0 * n, (i0 + 32) * n));
        wasm.gemm(k, n, 32, xb, true, dzb, false, dW, i0 > 0);
        wasm.free(xb); wasm.free(dzb);
      }
      const gradient = Float32Array.from(dW.data);
      for (const s of [X, DZ, dW]) wasm.free(s);
      return { forward, gradient };
    };
    // The calls whose first 16 rows pass the default thresholds: nearly all of them.
    const passes = (i0: number, fraction: number): boolean => {
      const sample = x.subarray(i0 * k, Math.min(i0 + 16, m) * k);
      return sample.filter((v) => v === 0).length >= fraction * sample.length;
    };
    const starts = Array.from({ length: Math.floor(m / 32) }, (_, b) => b * 32);
    const wantForward = [0, ...starts].filter((i0) => passes(i0, defaults.minZeroFractionForward)).length;
    const wantGradient = starts.filter((i0) => passes(i0, defaults.minZeroFractionGradient)).length;
    expect(wantGradient).toBeGreaterThan(0.9 * starts.length);
    const before = { forward: policy.forwardCalls, gradient: policy.gradientCalls };
    const sparse = run();
    expect(policy.forwardCalls - before.forward).toBe(wantForward);
    expect(policy.gradientCalls - before.gradient).toBe(wantGradient);
    const dense = withPath(false, run, { forward: 0, gradient: 0 });
    sparse.forward.forEach((out, i) => expectSameBits(out, dense.forward[i], `fixture forward ${i === 0 ? 'all' : `batch ${i - 1}`}`));
    expectSameBits(sparse.gradient, dense.gradient, 'fixture weight gradient, accumulated over batches');
  });

  it('the default policy keeps dense inputs and narrow outputs on the dense kernels', () => {
    const random = prng(600);
    const before = { forward: policy.forwardCalls, gradient: policy.gradientCalls };
    denseForward(randomValues(random, 32 * 64), randomValues(random, 64 * 128), randomValues(random, 128), 32, 128, 64, true);
    denseForward(valuesWithZeros(random, 32 * 128, 0.9), randomValues(random, 128 * 10), randomValues(random, 10), 32, 10, 128, false);
    expect(policy.forwardCalls - before.forward).toBe(0);
    expect(policy.gradientCalls - before.gradient).toBe(0);
  });
});

describe('wasm convolution paths: Winograd F(2×2, 3×3) and im2col', () => {
  const wasm: WasmKernels = createWasmKernels();
  const policy = wasm.winograd;

  function run(g: Window2d, filters: number, enabled: boolean, inputs: { x: Float32Array; w: Float32Array; b: Float32Array; dy: Float32Array }) {
    const before = policy.calls;
    policy.enabled = enabled;
    try {
      const X = put(wasm, inputs.x), W = put(wasm, inputs.w), B = put(wasm, inputs.b), dY = put(wasm, inputs.dy);
      const Y = wasm.alloc(inputs.dy.length), dX = wasm.alloc(inputs.x.length), dW = wasm.alloc(inputs.w.length);
      wasm.conv2d(g, filters, X, W, B, Y, true);
      wasm.conv2dFilterGrad(g, filters, X, dY, dW, false);
      wasm.conv2dInputGrad(g, filters, dY, W, dX, false);
      const out = { y: Float32Array.from(Y.data), dw: Float32Array.from(dW.data), dx: Float32Array.from(dX.data), calls: policy.calls - before };
      for (const s of [X, W, B, dY, Y, dX, dW]) wasm.free(s);
      return out;
    } finally {
      policy.enabled = true;
    }
  }

  it.each([
    ['the tutorial CNN\'s second layer', [32, 13, 13, 32], 64, 'valid'],
    ['same padding, odd sizes (partial tiles), channel tails', [3, 7, 9, 5], 7, 'same'],
    ['an 8×8 input with 4 channels', [2, 8, 8, 4], 12, 'valid'],
  ] as const)('%s: Winograd is taken and agrees with im2col', (_name, [batch, h, w, c], filters, padding) => {
    const rows = windowAxis(h, 3, 1, padding), cols = windowAxis(w, 3, 1, padding);
    const g: Window2d = {
      batch, inHeight: h, inWidth: w, channels: c, outHeight: rows.out, outWidth: cols.out,
      windowHeight: 3, windowWidth: 3, strideHeight: 1, strideWidth: 1, padTop: rows.padBefore, padLeft: cols.padBefore,
    };
    const random = prng(batch * 1000 + c);
    const inputs = {
      x: randomValues(random, batch * h * w * c, 0, 1), w: randomValues(random, 9 * c * filters, -0.3, 0.3),
      b: randomValues(random, filters, -0.1, 0.1), dy: randomValues(random, batch * rows.out * cols.out * filters, -0.01, 0.01),
    };
    const winograd = run(g, filters, true, inputs);
    const im2col = run(g, filters, false, inputs);
    expect(winograd.calls, 'forward, filter gradient and input gradient took Winograd').toBe(3);
    expect(im2col.calls).toBe(0);
    for (const key of ['y', 'dw', 'dx'] as const) {
      const scale = im2col[key].reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      let worst = 0;
      for (let i = 0; i < im2col[key].length; i++) worst = Math.max(worst, Math.abs(winograd[key][i] - im2col[key][i]));
      expect(worst / scale, key).toBeLessThan(1e-5);
      expect(worst / scale, `${key}: Winograd rounds differently from im2col`).toBeGreaterThan(0);
    }
  });

  it.each([
    ['the tutorial CNN\'s second layer', [32, 13, 13, 32], 64, 'valid', 1 << 19],
    ['same padding, odd sizes, a last chunk of fewer images', [7, 7, 9, 5], 7, 'same', 3 * 16 * 20 * 12 * 4],
    ['one image per chunk', [3, 8, 8, 4], 12, 'valid', 1],
  ] as const)('%s: the forward a few images at a time gives the floats of the whole batch at once', (_name, [batch, h, w, c], filters, padding, chunkBytes) => {
    const rows = windowAxis(h, 3, 1, padding), cols = windowAxis(w, 3, 1, padding);
    const g: Window2d = {
      batch, inHeight: h, inWidth: w, channels: c, outHeight: rows.out, outWidth: cols.out,
      windowHeight: 3, windowWidth: 3, strideHeight: 1, strideWidth: 1, padTop: rows.padBefore, padLeft: cols.padBefore,
    };
    const random = prng(batch * 77 + c);
    const X = put(wasm, randomValues(random, batch * h * w * c, 0, 1)), W = put(wasm, randomValues(random, 9 * c * filters, -0.3, 0.3));
    const B = put(wasm, randomValues(random, filters, -0.1, 0.1));
    const defaults = { byChunks: policy.byChunks, chunkBytes: policy.chunkBytes };
    const [chunked, whole] = [true, false].map((byChunks) => {
      Object.assign(policy, { byChunks, chunkBytes });
      try {
        const Y = wasm.alloc(batch * rows.out * cols.out * filters);
        wasm.conv2d(g, filters, X, W, B, Y, true);
        const y = Float32Array.from(Y.data);
        wasm.free(Y);
        return y;
      } finally {
        Object.assign(policy, defaults);
      }
    });
    for (const st of [X, W, B]) wasm.free(st);
    expect(whole.some((v) => v > 0)).toBe(true);
    expectSameBits(chunked, whole, 'forward');
  });

  it('one input channel, other window sizes and strides keep im2col', () => {
    const before = policy.calls;
    const random = prng(9);
    for (const [c, k, s] of [[1, 3, 1], [8, 2, 1], [8, 3, 2], [8, 5, 1]]) {
      const rows = windowAxis(9, k, s, 'valid');
      const g: Window2d = { batch: 1, inHeight: 9, inWidth: 9, channels: c, outHeight: rows.out, outWidth: rows.out, windowHeight: k, windowWidth: k, strideHeight: s, strideWidth: s, padTop: 0, padLeft: 0 };
      const X = put(wasm, randomValues(random, 81 * c)), W = put(wasm, randomValues(random, k * k * c * 4)), B = put(wasm, randomValues(random, 4));
      const Y = wasm.alloc(rows.out * rows.out * 4);
      wasm.conv2d(g, 4, X, W, B, Y, false);
      for (const st of [X, W, B, Y]) wasm.free(st);
    }
    expect(policy.calls).toBe(before);
  });
});

describe('wasm filter gradient of small patches, read from the image (a first layer\'s 3×3 of one channel)', () => {
  const wasm: WasmKernels = createWasmKernels();
  const { directFilterGrad } = wasm;

  // Taps that fill groups of 3 or leave 1 or 2 in the last, padding on every edge, strides 1 and 2.
  it.each([
    [[2, 28, 28, 1], 3, 32, 1, 'valid'],
    [[2, 9, 7, 1], 3, 8, 1, 'same'],
    [[3, 10, 11, 3], 3, 16, 2, 'same'],
    [[1, 8, 9, 1], 5, 24, 1, 'same'],
    [[2, 7, 7, 2], 2, 8, 2, 'valid'],
    [[2, 6, 5, 4], 1, 16, 1, 'valid'],
  ] as const)('%j window %d, %d filters, stride %d, %s: the floats of im2col + GEMM, with and without accumulate', ([batch, h, w, c], k, filters, stride, padding) => {
    const rows = windowAxis(h, k, stride, padding), cols = windowAxis(w, k, stride, padding);
    const g: Window2d = {
      batch, inHeight: h, inWidth: w, channels: c, outHeight: rows.out, outWidth: cols.out,
      windowHeight: k, windowWidth: k, strideHeight: stride, strideWidth: stride, padTop: rows.padBefore, padLeft: cols.padBefore,
    };
    const random = prng(h * 37 + c * 5 + k);
    const X = put(wasm, randomValues(random, batch * h * w * c));
    // An output gradient mostly zeros, as max pooling leaves it.
    const dY = put(wasm, valuesWithZeros(random, batch * rows.out * cols.out * filters, 0.75));
    const start = randomValues(random, k * k * c * filters);
    for (const accumulate of [false, true]) {
      const [direct, gemm] = [true, false].map((useDirect) => {
        const dW = put(wasm, start);
        const before = directFilterGrad.calls;
        directFilterGrad.enabled = useDirect;
        try {
          wasm.conv2dFilterGrad(g, filters, X, dY, dW, accumulate);
        } finally {
          directFilterGrad.enabled = true;
        }
        expect(directFilterGrad.calls - before).toBe(useDirect ? 1 : 0);
        const values = Float32Array.from(dW.data);
        wasm.free(dW);
        return values;
      });
      // Each dw element sums in ascending rows from the same start, as the GEMM's K loop does.
      expect(gemm.some((v, i) => v !== start[i]), 'dw changed').toBe(true);
      expectSameBits(direct, gemm, `accumulate=${accumulate}`);
    }
    for (const s of [X, dY]) wasm.free(s);
  });
});

describe('wasm direct convolution (forward; taken for small patches, measured against im2col and Winograd for the rest)', () => {
  const wasm: WasmKernels = createWasmKernels();
  const { directConv } = wasm;

  // Windows across every padding edge, strides 1 and 2, output rows shorter than the 4-pixel block.
  it.each([
    [[2, 28, 28, 1], 3, 32, 1, 'valid'],
    [[2, 13, 13, 32], 3, 64, 1, 'valid'],
    [[1, 9, 7, 3], 3, 8, 1, 'same'],
    [[2, 10, 11, 5], 5, 16, 2, 'same'],
    [[1, 3, 3, 2], 3, 8, 1, 'same'],
    [[1, 8, 8, 4], 2, 8, 2, 'valid'],
  ] as const)('%j window %d, %d filters, stride %d, %s: agrees with im2col', ([batch, h, w, c], k, filters, stride, padding) => {
    const rows = windowAxis(h, k, stride, padding), cols = windowAxis(w, k, stride, padding);
    const g: Window2d = {
      batch, inHeight: h, inWidth: w, channels: c, outHeight: rows.out, outWidth: cols.out,
      windowHeight: k, windowWidth: k, strideHeight: stride, strideWidth: stride, padTop: rows.padBefore, padLeft: cols.padBefore,
    };
    const random = prng(h * 31 + c * 7 + k);
    const X = put(wasm, randomValues(random, batch * h * w * c)), W = put(wasm, randomValues(random, k * k * c * filters));
    const B = put(wasm, randomValues(random, filters));
    const outputs = [true, false].map((direct) => {
      const Y = wasm.alloc(batch * rows.out * cols.out * filters);
      const before = directConv.calls;
      const defaults = { ...directConv };
      // Every patch size here, not only the small ones it takes by default.
      Object.assign(directConv, { enabled: direct, maxPatch: Infinity });
      try {
        wasm.conv2d(g, filters, X, W, B, Y, true);
      } finally {
        Object.assign(directConv, { enabled: defaults.enabled, maxPatch: defaults.maxPatch });
      }
      expect(directConv.calls - before).toBe(direct ? 1 : 0);
      const values = Float32Array.from(Y.data);
      wasm.free(Y);
      return values;
    });
    for (const s of [X, W, B]) wasm.free(s);
    const scale = outputs[1].reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    let worst = 0;
    for (let i = 0; i < outputs[1].length; i++) worst = Math.max(worst, Math.abs(outputs[0][i] - outputs[1][i]));
    expect(scale).toBeGreaterThan(0);
    expect(worst / scale).toBeLessThan(1e-5);
    // Where it is taken by default (small patches), the same floats as im2col + GEMM.
    if (k * k * c <= 27) expectSameBits(outputs[0], outputs[1], 'small patch');
  });
});

describe('wasm convolution gradients that skip the output gradient\'s zeros', () => {
  const wasm: WasmKernels = createWasmKernels();
  const { sparseGradient, winograd } = wasm;

  /** dy with `zeros` of its values exactly 0, as max pooling leaves it. */
  function gradients(g: Window2d, filters: number, input: { x: Float32Array; w: Float32Array; dy: Float32Array; dx0: Float32Array; dw0: Float32Array }, sparse: boolean, accumulate: boolean) {
    const before = sparseGradient.calls, beforeDirect = sparseGradient.directCalls;
    Object.assign(sparseGradient, sparse ? { enabled: true, minZeroFraction: 0, minPatch: 1 } : { enabled: false });
    winograd.enabled = false;
    try {
      const X = put(wasm, input.x), W = put(wasm, input.w), dY = put(wasm, input.dy), dX = put(wasm, input.dx0), dW = put(wasm, input.dw0);
      wasm.conv2dFilterGrad(g, filters, X, dY, dW, accumulate);
      wasm.conv2dInputGrad(g, filters, dY, W, dX, accumulate);
      const out = { dw: Float32Array.from(dW.data), dx: Float32Array.from(dX.data), calls: sparseGradient.calls - before, directCalls: sparseGradient.directCalls - beforeDirect };
      for (const s of [X, W, dY, dX, dW]) wasm.free(s);
      return out;
    } finally {
      Object.assign(sparseGradient, { enabled: true, minZeroFraction: 0.5, minPatch: 32 });
      winograd.enabled = true;
    }
  }

  // Patch sizes kh·kw·C around the 32-column blocks and the 4-column tail: 1·1·1 … 3·3·9 = 81.
  const cases: Array<[number[], number, number, number]> = [];
  for (const [c, k] of [[1, 1], [1, 3], [3, 2], [4, 3], [5, 3], [7, 3], [9, 3], [32, 1], [33, 1]]) cases.push([[2, 6, 5, c], k, 1 + (c % 6), 0.8]);
  cases.push([[2, 13, 13, 32], 3, 64, 0.79], [[1, 7, 7, 8], 3, 5, 0], [[1, 7, 7, 8], 3, 5, 1]);
  // Channels a multiple of 16: the filter gradient reads the patches from the image (blocks of 32 and 16 channels).
  cases.push([[2, 7, 6, 16], 3, 5, 0.8], [[1, 6, 6, 48], 3, 9, 0.8], [[2, 5, 5, 16], 1, 3, 0.8]);

  it.each(cases.map((c) => [JSON.stringify(c), c] as const))('%s: the same floats as the GEMM, with and without accumulate', (_name, [[batch, h, w, c], k, filters, zeros]) => {
    const rows = windowAxis(h, k, 1, 'same'), cols = windowAxis(w, k, 1, 'same');
    const g: Window2d = {
      batch, inHeight: h, inWidth: w, channels: c, outHeight: rows.out, outWidth: cols.out,
      windowHeight: k, windowWidth: k, strideHeight: 1, strideWidth: 1, padTop: rows.padBefore, padLeft: cols.padBefore,
    };
    const random = prng(batch * 97 + c * 13 + k);
    const size = batch * rows.out * cols.out * filters;
    const input = {
      x: randomValues(random, batch * h * w * c), w: randomValues(random, k * k * c * filters),
      dy: valuesWithZeros(random, size, zeros), dx0: randomValues(random, batch * h * w * c), dw0: randomValues(random, k * k * c * filters),
    };
    for (const accumulate of [false, true]) {
      const skipping = gradients(g, filters, input, true, accumulate);
      const dense = gradients(g, filters, input, false, accumulate);
      const pointwise = k === 1;
      expect(skipping.calls, 'filter gradient (and input gradient unless 1×1) skipped zeros').toBe(pointwise ? 1 : 2);
      expect(skipping.directCalls, 'filter gradient read from the image').toBe(c % 16 === 0 ? 1 : 0);
      expect(dense.calls).toBe(0);
      expectSameBits(skipping.dw, dense.dw, `dw acc=${accumulate}`);
      expectSameBits(skipping.dx, dense.dx, `dx acc=${accumulate}`);
      // The input gradient's dcol for the whole batch at once, instead of an image at a time: the same floats.
      sparseGradient.byImages = false;
      try {
        expectSameBits(gradients(g, filters, input, true, accumulate).dx, dense.dx, `dx acc=${accumulate}, whole batch`);
      } finally {
        sparseGradient.byImages = true;
      }
    }
  });

  it('the default policy skips the zeros behind max pooling in the tutorial CNN\'s second layer, not in its first', () => {
    const random = prng(77);
    const run = (c: number, hw: number, filters: number) => {
      const g: Window2d = { batch: 4, inHeight: hw, inWidth: hw, channels: c, outHeight: hw - 2, outWidth: hw - 2, windowHeight: 3, windowWidth: 3, strideHeight: 1, strideWidth: 1, padTop: 0, padLeft: 0 };
      const before = sparseGradient.calls;
      const X = put(wasm, randomValues(random, 4 * hw * hw * c)), dY = put(wasm, valuesWithZeros(random, 4 * (hw - 2) ** 2 * filters, 0.79));
      const dW = wasm.alloc(9 * c * filters);
      wasm.conv2dFilterGrad(g, filters, X, dY, dW, false);
      for (const s of [X, dY, dW]) wasm.free(s);
      return sparseGradient.calls - before;
    };
    expect(run(32, 13, 64)).toBe(1);
    expect(run(1, 28, 32)).toBe(0);
  });
});
