/**
 * Kernels on several threads: the same floats as on one, bit for bit.
 *
 * Every kernel that the WASM backend splits between threads runs here with its policy forced
 * to split every call, on 2 and 3 threads (3 on this 2-core machine still has to be right), over
 * shapes that leave threads with no rows, one row and a row tail, and is compared bit for bit
 * with the same backend on one thread. Then whole fixture trainings (both datasets' model
 * shapes, with and without dropout) give bit-identical weights on 1, 2 and 3 threads, also with
 * the shares sized by uneven thread speeds, so that they end where equal shares never do. A worker
 * that fails (a WASM trap in its share) surfaces as one clear error in the caller, the pool shuts
 * down, later calls run on the caller's thread, and the process exits on its own.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Random, adam, conv2d, dense, dropout, flatten, loadDataset, maxPooling2d, reshapeLayer, sequential, setBackend, setThreads, sgd, threadCount,
  threadsReady, type ImageDataset, type Kernels, type Layer, type Storage,
} from '../src/index.js';
import { createWasmKernels, type WasmKernels } from '../src/backend/wasm.js';
import type { Window2d } from '../src/backend/kernels.js';
import { windowAxis } from '../src/ops/window.js';
import { MASKED_SHARES, cutsFromSpeeds, learnShareSpeeds, setThreadHost, shareToClaim, type SpeedEstimates } from '../src/backend/threads.js';
import { part, shareCuts } from '../src/backend/thread-tasks.js';
import { nodeThreadHost } from '../src/backend/threads-node.js';

/** The engine's seeded generator, as a function. */
function prng(seed: number): () => number {
  const random = new Random(seed);
  return () => random.next();
}

/** Values in [-1, 1), about `zeros` of them exactly 0 (so the zero-skipping kernels have work to skip). */
function values(random: () => number, length: number, zeros = 0): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = random() < zeros ? 0 : 2 * random() - 1;
  return out;
}

/** The window of a convolution or pooling over [batch, h, w, c] images. */
function convWindow(batch: number, h: number, w: number, c: number, size: number, stride: number, padding: 'valid' | 'same'): Window2d {
  const rows = windowAxis(h, size, stride, padding), cols = windowAxis(w, size, stride, padding);
  return {
    batch, inHeight: h, inWidth: w, channels: c, outHeight: rows.out, outWidth: cols.out,
    windowHeight: size, windowWidth: size, strideHeight: stride, strideWidth: stride, padTop: rows.padBefore, padLeft: cols.padBefore,
  };
}

/** Splits every call it can, whatever its size. */
function splitEverything(k: WasmKernels): WasmKernels {
  Object.assign(k.threadPolicy, { minProductWork: 1, minUpdateElements: 1, minBytes: 1, minRowElements: 1, minMovedFloats: 1 });
  return k;
}

const one = createWasmKernels({ threads: 1 });
/**
 * 2 and 3 threads, their shares sized by the speeds the pool measures (about equal here), and
 * by fixed uneven speeds, so that shares also end where equal ones never do.
 */
const SPLITS: Array<[number, number[] | undefined]> = [[2, undefined], [3, undefined], [2, [1, 3]], [3, [5, 1, 2]]];
const many: Array<[string, WasmKernels, number, number[] | undefined]> = SPLITS.map(([threads, speeds]) => [
  `${threads} threads${speeds ? ` at speeds ${speeds.join(':')}` : ''}`, splitEverything(createWasmKernels({ threads })), threads, speeds,
]);

beforeAll(async () => {
  for (const [, k, threads, speeds] of many) {
    await k.threadsReady();
    expect(k.threads).toBe(threads);
    if (speeds) {
      k.setShareSpeeds(speeds);
      expect(k.shareSpeeds).toEqual(speeds);
    }
  }
});

afterAll(() => {
  for (const [, k] of many) k.setThreads(1);
});

/** Runs `run` on one thread and on `k` with the same inputs; every output buffer must match bit for bit. */
function sameBits(k: WasmKernels, label: string, inputs: ArrayLike<number>[], run: (kernels: Kernels, buffers: Storage[]) => number | void): void {
  const results = [one, k].map((kernels) => {
    const buffers = inputs.map((input) => {
      const s = kernels.alloc(input.length);
      s.data.set(input);
      return s;
    });
    const result = run(kernels, buffers);
    const bits = buffers.map((s) => Array.from(new Uint32Array(s.data.buffer, s.ptr, s.length)));
    for (const s of buffers) kernels.free(s);
    return { result, bits };
  });
  const [want, got] = results;
  expect(got.result, `${label}: result`).toBe(want.result);
  for (let b = 0; b < want.bits.length; b++) {
    const i = want.bits[b].findIndex((bits, j) => bits !== got.bits[b][j]);
    if (i >= 0) expect.fail(`${label}: buffer ${b} differs at ${i} (${want.bits[b][i].toString(16)} on one thread, ${got.bits[b][i].toString(16)} split)`);
  }
}

describe.each(many)('kernels split over %s give the floats of one thread', (_label, k) => {
  it('products: every M 1–9 × N 1–17 × K {1, 5, 9}, all transposes, with and without accumulate', () => {
    const random = prng(1);
    const before = k.threadPolicy.splitCalls, workerSharesBefore = k.workerShares;
    for (let m = 1; m <= 9; m++) {
      for (let n = 1; n <= 17; n++) {
        for (const kk of [1, 5, 9]) {
          for (const [transposeA, transposeB, accumulate] of [[false, false, false], [true, false, true], [false, true, false], [true, true, true]] as const) {
            sameBits(k, `gemm ${m}×${kk}×${n} tA=${transposeA} tB=${transposeB} acc=${accumulate}`,
              [values(random, m * kk), values(random, kk * n), values(random, m * n)],
              (kernels, [a, b, c]) => kernels.gemm(m, n, kk, a, transposeA, b, transposeB, c, accumulate));
          }
        }
      }
    }
    expect(k.threadPolicy.splitCalls - before, 'calls split between threads').toBeGreaterThan(1000);
    expect(k.workerShares - workerSharesBefore, 'shares that workers ran').toBeGreaterThan(0);
  });

  it('products past the K and M blocks, and the layer shapes, split by rows and by columns', () => {
    const random = prng(2);
    for (const [m, kk, n, transposeA, transposeB] of [
      [32, 784, 128, false, false], [784, 32, 128, true, false], [32, 128, 10, false, false], [128, 32, 10, true, false],
      [32, 10, 128, false, true], [32, 128, 784, false, true], [300, 260, 70, false, false], [70, 300, 260, true, true],
    ] as const) {
      sameBits(k, `gemm ${m}×${kk}×${n}`, [values(random, m * kk), values(random, kk * n), values(random, m * n)],
        (kernels, [a, b, c]) => kernels.gemm(m, n, kk, a, transposeA, b, transposeB, c, false));
    }
  });

  it('dense forward (bias, ReLU) on the dense and the zero-skipping kernels, and the zero-skipping weight gradient', () => {
    const random = prng(3);
    for (const sparse of [false, true]) {
      Object.assign(k.sparseInput, { enabled: sparse, minColumns: 1, minZeroFractionForward: 0, minZeroFractionGradient: 0 });
      Object.assign(one.sparseInput, k.sparseInput);
      for (const [m, kk, n] of [
        [1, 3, 5], [2, 9, 17], [3, 64, 24], [5, 65, 31], [9, 784, 128], [32, 784, 128], [33, 100, 41],
        [5, 200, 31], [33, 130, 41], [7, 257, 3], [40, 784, 10], [300, 200, 24],
      ]) {
        // Training batches split the zero-skipping forward by features (slices), others by rows
        // of x, in one share per thread or in more shares than threads (claimed as threads free up).
        for (const [maxSlicedRows, rowSharesPerThread] of [[256, 4], [0, 1], [0, 4], [0, 16]]) {
          Object.assign(k.threadPolicy, { maxSlicedRows, rowSharesPerThread });
          for (const relu of [false, true]) {
            sameBits(k, `denseForward ${m}×${kk}×${n} relu=${relu} sparse=${sparse} maxSlicedRows=${maxSlicedRows} rowSharesPerThread=${rowSharesPerThread}`,
              [values(random, m * kk, 0.5), values(random, kk * n), values(random, n), values(random, m * n)],
              (kernels, [x, w, bias, out]) => kernels.denseForward(m, n, kk, x, w, bias, out, relu));
          }
        }
        Object.assign(k.threadPolicy, { maxSlicedRows: 256, rowSharesPerThread: 4 });
        // The weight gradient xᵀ·dz: x stored [batch m, features kk], dw [kk, n].
        for (const accumulate of [false, true]) {
          sameBits(k, `weight gradient ${kk}×${m}×${n} acc=${accumulate} sparse=${sparse}`,
            [values(random, m * kk, 0.5), values(random, m * n), values(random, kk * n)],
            (kernels, [x, dz, dw]) => kernels.gemm(kk, n, m, x, true, dz, false, dw, accumulate));
        }
      }
    }
    Object.assign(k.sparseInput, { enabled: true });
    Object.assign(one.sparseInput, { enabled: true });
  });

  it('convolutions (the tutorial CNN\'s second layer): forward, and both gradients with an output gradient mostly zeros', () => {
    const random = prng(5);
    const g = { batch: 4, inHeight: 13, inWidth: 13, channels: 32, outHeight: 11, outWidth: 11, windowHeight: 3, windowWidth: 3, strideHeight: 1, strideWidth: 1, padTop: 0, padLeft: 0 };
    const filters = 64, positions = g.batch * g.outHeight * g.outWidth;
    const x = values(random, g.batch * 13 * 13 * 32, 0.3), w = values(random, 9 * 32 * filters), bias = values(random, filters);
    const dy = values(random, positions * filters, 0.8);
    const before = k.threadPolicy.splitCalls;
    sameBits(k, 'conv forward', [x, w, bias, new Float32Array(positions * filters)], (kernels, [xs, ws, bs, out]) => kernels.conv2d(g, filters, xs, ws, bs, out, true));
    for (const accumulate of [false, true]) {
      sameBits(k, `conv input gradient, accumulate=${accumulate}`, [dy, w, values(random, x.length)], (kernels, [d, ws, dx]) => kernels.conv2dInputGrad(g, filters, d, ws, dx, accumulate));
      sameBits(k, `conv filter gradient, accumulate=${accumulate}`, [x, dy, values(random, w.length)], (kernels, [xs, d, dw]) => kernels.conv2dFilterGrad(g, filters, xs, d, dw, accumulate));
    }
    expect(k.threadPolicy.splitCalls - before, 'calls split between threads').toBeGreaterThan(2);
  });

  it('convolutions split by images (patches, col2im, Winograd\'s transforms, direct forwards), by position (Winograd\'s 16 products) and by filters (the zero-skipping filter gradient), over batches and filter counts that leave threads none', () => {
    const random = prng(6);
    const before = { split: k.threadPolicy.splitCalls, workers: k.workerShares, winograd: k.winograd.calls, sparse: k.sparseGradient.calls, direct: k.sparseGradient.directCalls, small: k.directFilterGrad.calls, forward: k.directConv.calls };
    let calls = 0;
    for (const [batch, h, w, c, filters, size, stride, padding] of [
      [1, 6, 5, 1, 3, 3, 1, 'valid'], [2, 7, 7, 1, 8, 3, 2, 'same'], [5, 9, 8, 1, 4, 2, 1, 'valid'], // im2col
      [1, 7, 9, 5, 7, 3, 1, 'same'], [2, 8, 8, 4, 12, 3, 1, 'valid'], [3, 6, 6, 4, 1, 3, 1, 'valid'], // Winograd
      [5, 13, 13, 32, 2, 3, 1, 'valid'], [2, 9, 9, 16, 6, 3, 2, 'same'], [3, 8, 7, 48, 5, 3, 1, 'same'], // filter gradients read from the image
      [3, 10, 9, 1, 16, 3, 1, 'same'], [2, 9, 9, 3, 24, 3, 2, 'valid'], [2, 8, 8, 1, 32, 5, 1, 'same'], // small patches: direct forward and filter gradient
    ] as const) {
      const g = convWindow(batch, h, w, c, size, stride, padding);
      const positions = batch * g.outHeight * g.outWidth;
      const x = values(random, batch * h * w * c, 0.3), wt = values(random, size * size * c * filters), bias = values(random, filters);
      const label = `${batch}×${h}×${w}×${c} → ${filters} filters ${size}×${size} stride ${stride} ${padding}`;
      sameBits(k, `conv forward ${label}`, [x, wt, bias, values(random, positions * filters)], (kernels, [xs, ws, bs, out]) => kernels.conv2d(g, filters, xs, ws, bs, out, true));
      calls++;
      // A dense output gradient takes im2col or Winograd; one mostly zeros, the zero-skipping kernels.
      for (const zeros of [0, 0.8]) {
        const dy = values(random, positions * filters, zeros);
        for (const accumulate of [false, true]) {
          sameBits(k, `conv input gradient ${label} zeros=${zeros} accumulate=${accumulate}`, [dy, wt, values(random, x.length)],
            (kernels, [d, ws, dx]) => kernels.conv2dInputGrad(g, filters, d, ws, dx, accumulate));
          sameBits(k, `conv filter gradient ${label} zeros=${zeros} accumulate=${accumulate}`, [x, dy, values(random, wt.length)],
            (kernels, [xs, d, dw]) => kernels.conv2dFilterGrad(g, filters, xs, d, dw, accumulate));
          calls += 2;
        }
      }
    }
    expect(k.threadPolicy.splitCalls - before.split, 'calls split between threads').toBeGreaterThan(calls);
    expect(k.workerShares - before.workers, 'shares that workers ran').toBeGreaterThan(0);
    expect(k.winograd.calls - before.winograd, 'calls that took Winograd').toBeGreaterThan(12);
    expect(k.sparseGradient.calls - before.sparse, 'gradients that skipped zeros').toBeGreaterThan(12);
    expect(k.sparseGradient.directCalls - before.direct, 'filter gradients read from the image').toBeGreaterThanOrEqual(6);
    expect(k.directFilterGrad.calls - before.small, 'small patches\' filter gradients').toBeGreaterThanOrEqual(16);
    expect(k.directConv.calls - before.forward, 'small patches\' forwards, direct').toBeGreaterThanOrEqual(4);
  });

  it('Winograd\'s forward by chunks of images, each thread its own chunks, over batches that leave threads none', () => {
    const random = prng(61);
    const before = { split: k.threadPolicy.splitCalls, winograd: k.winograd.calls };
    const defaults = [one, k].map((kernels) => ({ ...kernels.winograd }));
    // One image per chunk, so that even a small batch has chunks to share.
    for (const kernels of [one, k]) kernels.winograd.chunkBytes = 1;
    try {
      for (const [batch, h, w, c, filters, padding] of [[1, 6, 6, 4, 8, 'valid'], [2, 7, 9, 5, 7, 'same'], [3, 8, 8, 4, 12, 'valid'], [5, 13, 13, 32, 16, 'valid']] as const) {
        const g = convWindow(batch, h, w, c, 3, 1, padding);
        const positions = batch * g.outHeight * g.outWidth;
        sameBits(k, `Winograd forward ${batch}×${h}×${w}×${c} → ${filters}`, [values(random, batch * h * w * c, 0.3), values(random, 9 * c * filters), values(random, filters), values(random, positions * filters)],
          (kernels, [xs, ws, bs, out]) => kernels.conv2d(g, filters, xs, ws, bs, out, true));
      }
    } finally {
      [one, k].forEach((kernels, i) => Object.assign(kernels.winograd, { chunkBytes: defaults[i].chunkBytes }));
    }
    expect(k.winograd.calls - before.winograd, 'forwards that took Winograd').toBe(4);
    expect(k.threadPolicy.splitCalls - before.split, 'calls split between threads').toBeGreaterThanOrEqual(3);
  });

  it('a call right after the caller grew the memory runs on the new pages, with the workers asleep when it grew', async () => {
    const random = prng(71);
    for (let round = 0; round < 3; round++) {
      // Longer than a worker spins: every worker is asleep when the memory grows.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const before = k.memory.buffer.byteLength;
      const n = 64, kk = 8, m = Math.ceil(before / (4 * n)) + 16; // c alone is larger than the memory was
      sameBits(k, `gemm ${m}×${kk}×${n} into new pages`, [values(random, m * kk), values(random, kk * n), values(random, m * n)],
        (kernels, [a, b, c]) => kernels.gemm(m, n, kk, a, false, b, false, c, false));
      expect(k.memory.buffer.byteLength, 'the memory grew').toBeGreaterThan(before);
    }
  });

  it('convolutions of an empty batch return at once: no output, a filter gradient of 0', () => {
    for (const [c, filters] of [[1, 32], [32, 64], [16, 16]] as const) {
      const g = convWindow(0, 13, 13, c, 3, 1, 'valid');
      const x = k.alloc(0), dy = k.alloc(0), dx = k.alloc(0), out = k.alloc(0);
      const w = k.alloc(9 * c * filters), bias = k.alloc(filters), dw = k.alloc(9 * c * filters);
      dw.data.fill(7);
      k.conv2d(g, filters, x, w, bias, out, true);
      k.conv2dFilterGrad(g, filters, x, dy, dw, false);
      k.conv2dInputGrad(g, filters, dy, w, dx, false);
      expect(Array.from(dw.data).every((v) => v === 0), `dw of ${c} channels → ${filters} filters`).toBe(true);
      for (const s of [x, dy, dx, out, w, bias, dw]) k.free(s);
    }
  });

  it('max pooling and its gradient split by images (2×2, channels not a multiple of 4, overlapping padded windows), and ReLU\'s gradient by runs', () => {
    const random = prng(7);
    const before = k.threadPolicy.splitCalls;
    let calls = 0;
    for (const [batch, h, w, c, size, stride, padding] of [
      [1, 6, 6, 4, 2, 2, 'valid'], [2, 7, 7, 3, 2, 2, 'valid'], [5, 9, 9, 8, 3, 2, 'same'], [3, 26, 26, 32, 2, 2, 'valid'],
    ] as const) {
      const g = convWindow(batch, h, w, c, size, stride, padding);
      const label = `${batch}×${h}×${w}×${c} window ${size} stride ${stride} ${padding}`;
      const x = values(random, batch * h * w * c), outLength = batch * g.outHeight * g.outWidth * c;
      sameBits(k, `maxPool2d ${label}`, [x, values(random, outLength)], (kernels, [xs, out]) => kernels.maxPool2d(g, xs, out));
      const y = new Float32Array(outLength);
      const xs = one.alloc(x.length), ys = one.alloc(outLength);
      xs.data.set(x);
      one.maxPool2d(g, xs, ys);
      y.set(ys.data);
      one.free(xs);
      one.free(ys);
      for (const accumulate of [false, true]) {
        sameBits(k, `maxPool2dGrad ${label} accumulate=${accumulate}`, [x, y, values(random, outLength), values(random, x.length)],
          (kernels, [xb, yb, dy, dx]) => kernels.maxPool2dGrad(g, xb, yb, dy, dx, accumulate));
      }
      if (batch > 1) calls += 3; // one image stays on one thread
    }
    for (const length of [2, 3, 4, 5, 9, 17, 1000, 4099]) {
      for (const accumulate of [false, true]) {
        sameBits(k, `reluBackward ${length} accumulate=${accumulate}`, [values(random, length, 0.3), values(random, length), values(random, length)],
          (kernels, [y, dy, dx]) => kernels.reluBackward(y, dy, dx, accumulate));
        if (length > 4) calls++;
      }
    }
    expect(k.threadPolicy.splitCalls - before, 'calls split between threads').toBe(calls);
  });

  it('Adam, SGD (plain, momentum, Nesterov), pixel scaling and softmax, over lengths around the split points', () => {
    const random = prng(4);
    for (const length of [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 33, 1000, 4099]) {
      sameBits(k, `adam ${length}`, [values(random, length), values(random, length), values(random, length), values(random, length).map(Math.abs)],
        (kernels, [w, g, m, v]) => kernels.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7));
      sameBits(k, `sgd ${length}`, [values(random, length), values(random, length)],
        (kernels, [w, g]) => kernels.sgdUpdate(w, g, null, 0.01, 0, false));
      for (const nesterov of [false, true]) {
        sameBits(k, `sgd momentum ${length} nesterov=${nesterov}`, [values(random, length), values(random, length), values(random, length)],
          (kernels, [w, g, velocity]) => kernels.sgdUpdate(w, g, velocity, 0.01, 0.9, nesterov));
      }
      for (const classes of [1, 3, 10]) {
        sameBits(k, `softmax ${length}×${classes}`, [values(random, length * classes), new Float32Array(length * classes)],
          (kernels, [x, out]) => kernels.softmax(length, classes, x, out));
      }
      const bytes = Uint8Array.from({ length: length * 4 }, () => Math.floor(random() * 256));
      sameBits(k, `normalizeBytes ${bytes.length}`, [new Float32Array(bytes.length + 3)], (kernels, [dst]) => {
        const src = kernels.allocBytes(bytes.length);
        src.data.set(bytes);
        kernels.normalizeBytes(src, bytes.length, 1 / 255, dst);
        kernels.freeBytes(src);
      });
    }
  });
});

describe('which share a thread claims', () => {
  /** Claims every share of a call of `shares`, threads arriving in `arrivals` order (slots, repeated as they come back): who ran what. */
  function claimAll(shares: number, arrivals: number[]): { ranBy: number[]; low: number } {
    const ranBy = new Array<number>(shares).fill(-1);
    let low = 0;
    for (const slot of arrivals) {
      const share = shareToClaim(low, shares, slot);
      if (share < 0) continue;
      expect(ranBy[share], `share ${share} claimed twice`).toBe(-1);
      ranBy[share] = slot;
      low = shares <= MASKED_SHARES ? low | (1 << share) : low + 1;
    }
    return { ranBy, low };
  }

  it('of a few shares, each thread takes its own first, whoever comes first; then any left, lowest first; every share once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MASKED_SHARES }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (shares, threads, picks) => {
          // Threads come in some order, each again and again, until every share is claimed.
          const arrivals = picks.map((pick) => pick % threads);
          for (let round = 0; round < shares; round++) for (let slot = 0; slot < threads; slot++) arrivals.push(slot);
          const { ranBy, low } = claimAll(shares, arrivals);
          expect(ranBy.every((slot) => slot >= 0), 'every share is claimed').toBe(true);
          expect(shareToClaim(low, shares, 0)).toBe(-1);
          for (let share = 0; share < Math.min(shares, threads); share++) {
            // Until thread `share` first comes, if every thread before it came once and took its own share, its own is left for it.
            const before = arrivals.slice(0, arrivals.indexOf(share));
            const onlyOwnClaims = new Set(before).size === before.length && before.every((slot) => slot < shares);
            if (onlyOwnClaims) expect(ranBy[share], `share ${share} is its own thread's`).toBe(share);
          }
        },
      ),
      { seed: 20261202, numRuns: 500 },
    );
  });

  it('the caller alone runs every share in order; a worker that comes first still leaves share 0 to the caller', () => {
    expect(claimAll(4, [0, 0, 0, 0]).ranBy).toEqual([0, 0, 0, 0]);
    expect(claimAll(2, [1, 0]).ranBy).toEqual([0, 1]);
    expect(claimAll(2, [1, 1]).ranBy).toEqual([1, 1]);
    // A thread done with its own share takes the lowest left, the caller's too when the caller is late.
    expect(claimAll(3, [2, 2, 0, 1]).ranBy).toEqual([2, 0, 2]);
  });

  it('of many shares, threads take them in order from a counter', () => {
    const shares = MASKED_SHARES + 5;
    const { ranBy } = claimAll(shares, Array.from({ length: shares }, (_, i) => (i * 7) % 3));
    expect(ranBy).toEqual(Array.from({ length: shares }, (_, i) => (i * 7) % 3));
    expect(shareToClaim(shares, shares, 1)).toBe(-1);
  });
});

describe('shares sized by the threads\' speeds', () => {
  afterAll(() => {
    shareCuts.shares = 0;
  });

  it('the parts of a call cut by speeds tile the output in order, end on the alignment and follow the speeds', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 2, maxLength: 8 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.constantFrom(1, 4, 8, 16),
        (speeds, count, align) => {
          const shares = speeds.length;
          const cuts = new Float64Array(shares + 1);
          cutsFromSpeeds(speeds, shares, cuts);
          expect(cuts[0]).toBe(0);
          expect(cuts[shares]).toBe(1);
          shareCuts.cuts = cuts;
          shareCuts.shares = shares;
          const total = speeds.reduce((a, b) => a + b);
          let expected = 0;
          for (let share = 0; share < shares; share++) {
            const { first, end } = part(count, align, share, shares);
            expect(first, `share ${share} starts where the last ended`).toBe(expected);
            expect(end).toBeGreaterThanOrEqual(first);
            if (end < count) expect(end % align, `share ${share} ends on the alignment`).toBe(0);
            // Its size is its speed's fraction of the output, up to rounding to the alignment.
            expect(Math.abs(end - first - (count * speeds[share]) / total)).toBeLessThanOrEqual(2 * align);
            expected = end;
          }
          expect(expected, 'the last share ends at the end').toBe(count);
          shareCuts.shares = 0;
        },
      ),
      { seed: 20261201, numRuns: 500 },
    );
  });

  /** Estimates for `threads` threads, equal at first. */
  const equal = (threads: number): SpeedEstimates => ({
    learned: new Float64Array(threads).fill(1 / threads),
    used: new Float64Array(threads).fill(1 / threads),
  });

  /** One call of `shares` shares cut by `estimates.used`, thread s taking `msPerOutput[s]` per whole output; returns whether the cuts moved. */
  function call(estimates: SpeedEstimates, msPerOutput: number[], runners = msPerOutput.map((_, s) => s)): boolean {
    const shares = msPerOutput.length;
    const cuts = new Float64Array(shares + 1);
    cutsFromSpeeds(estimates.used, shares, cuts);
    const times = new Float64Array(2 * shares);
    for (let s = 0; s < shares; s++) {
      times[2 * s] = (cuts[s + 1] - cuts[s]) * msPerOutput[s];
      times[2 * s + 1] = runners[s];
    }
    return learnShareSpeeds(estimates, cuts, times, shares);
  }

  it('a thread at half speed ends up with a third of the output; the cuts move in a few steps, not at every call', () => {
    const estimates = equal(2);
    let moves = 0;
    for (let i = 0; i < 200; i++) if (call(estimates, [0.1, 0.2])) moves++;
    expect(estimates.used[0]).toBeCloseTo(2 / 3, 1);
    expect(Math.abs(estimates.used[0] - 2 / 3)).toBeLessThanOrEqual(0.05);
    expect(estimates.used[0] + estimates.used[1]).toBeCloseTo(1, 12);
    expect(moves).toBeGreaterThan(0);
    expect(moves).toBeLessThan(10);
    // Three threads, the last at a quarter speed.
    const three = equal(3);
    for (let i = 0; i < 300; i++) call(three, [0.1, 0.1, 0.4]);
    expect(Math.abs(three.used[2] - 1 / 9)).toBeLessThanOrEqual(0.05);
  });

  it('on equal threads the cuts never move; calls where a share ran on another thread, or too short to time, teach nothing', () => {
    const estimates = equal(2);
    for (let i = 0; i < 200; i++) expect(call(estimates, [0.1, 0.1])).toBe(false);
    expect(Array.from(estimates.used)).toEqual([0.5, 0.5]);
    const before = Array.from(estimates.learned);
    for (let i = 0; i < 50; i++) call(estimates, [0.1, 1], [0, 0]);
    for (let i = 0; i < 50; i++) call(estimates, [0.001, 0.002]);
    expect(Array.from(estimates.learned)).toEqual(before);
  });

  it('a thread that hardly runs keeps a fifth of an equal share', () => {
    const estimates = equal(2);
    for (let i = 0; i < 500; i++) call(estimates, [0.1, 1000]);
    expect(estimates.used[1]).toBeCloseTo(0.2 / 2, 6);
  });
});

describe('scratch after the thread count grows', () => {
  it('a smaller call after a large one on fewer threads keeps every share inside its block', async () => {
    // Per-share scratch blocks are one stride apart; the block reserved on 1 thread must grow
    // when a second thread's share is placed behind the first, even for a call needing less.
    const k = splitEverything(createWasmKernels({ threads: 1 }));
    const random = prng(11);
    try {
      const large = [values(random, 64 * 2000, 0.6), values(random, 64 * 32), new Float32Array(2000 * 32)];
      sameBits(k, 'large weight gradient on 1 thread', large, (kernels, [x, dz, dw]) => kernels.gemm(2000, 32, 64, x, true, dz, false, dw, false));
      // Memory taken after the scratch block: no kernel may write it.
      const canaries = Array.from({ length: 8 }, () => k.alloc(4096));
      for (const canary of canaries) canary.data.fill(0.5);
      k.setThreads(2);
      await k.threadsReady();
      // A third of the features: on two threads its blocks fit in the block reserved for one.
      const small = [values(random, 32 * 600, 0.6), values(random, 32 * 32), new Float32Array(600 * 32)];
      const splitBefore = k.threadPolicy.splitCalls;
      for (let i = 0; i < 5; i++) {
        sameBits(k, `smaller weight gradient on 2 threads (${i})`, small, (kernels, [x, dz, dw]) => kernels.gemm(600, 32, 32, x, true, dz, false, dw, false));
      }
      // Split in two shares (whichever thread runs the second, it works in the second block).
      expect(k.threadPolicy.splitCalls - splitBefore).toBe(5);
      expect(canaries.every((canary) => canary.data.every((v) => v === 0.5)), 'memory past the scratch left alone').toBe(true);
      for (const canary of canaries) k.free(canary);
    } finally {
      k.setThreads(1);
    }
  });
});

describe('training gives the same weights, bit for bit, on 1, 2 and 3 threads', () => {
  const fixture = join(import.meta.dirname, '../../../test/fixtures/fashion-mnist');
  const fashion = loadDataset('fashion-mnist', { dir: fixture });
  const digits = loadDataset('mnist');

  /** The first `count` images of a split. */
  function head(images: ImageDataset, count: number): ImageDataset {
    const size = images.rows * images.cols;
    return { ...images, count, images: images.images.subarray(0, count * size), labels: images.labels.subarray(0, count) };
  }

  async function train(data: ImageDataset, hidden: number[], dropoutRate: number, optimizer: 'adam' | 'sgd', conv: boolean): Promise<Buffer> {
    const layers: Layer[] = conv
      ? [reshapeLayer({ targetShape: [28, 28, 1], inputShape: [28, 28] }), conv2d({ filters: 8, kernelSize: 3, activation: 'relu' }), maxPooling2d({ poolSize: 2 }), flatten()]
      : [flatten({ inputShape: [28, 28] })];
    for (const units of hidden) {
      layers.push(dense({ units, activation: 'relu' }));
      if (dropoutRate > 0) layers.push(dropout({ rate: dropoutRate }));
    }
    layers.push(dense({ units: 10, activation: 'softmax' }));
    const model = sequential(layers, { seed: 7 });
    model.compile({ optimizer: optimizer === 'adam' ? adam() : sgd({ learningRate: 0.05, momentum: 0.9 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
    await model.fit(data, data.labels, { epochs: 1, batchSize: 32, seed: 7, validationSplit: 0.1 });
    // Inference on the whole set at once is split by rows too.
    const predictions = model.predict(data, { batchSize: data.count });
    const bytes = Buffer.concat([
      ...model.getWeights().map(({ values: w }) => Buffer.from(w.buffer, w.byteOffset, w.byteLength)),
      Buffer.from(predictions.data.buffer, predictions.data.byteOffset, predictions.data.byteLength),
    ]);
    predictions.dispose();
    model.dispose();
    return bytes;
  }

  afterAll(() => {
    setThreads('auto');
  });

  it.each([
    ['Fashion-MNIST fixture, 784-128-10, Adam', 'fashion', [128], 0, 'adam', false],
    ['Fashion-MNIST fixture, 784-128-10 with dropout 0.3, Adam', 'fashion', [128], 0.3, 'adam', false],
    ['MNIST digits, 784-512-512-10 (the digits tutorial), SGD with momentum', 'digits', [512, 512], 0, 'sgd', false],
    ['MNIST digits, 784-512-512-10 with dropout 0.2, Adam', 'digits', [512, 512], 0.2, 'adam', false],
    ['Fashion-MNIST fixture, conv 8 3×3 relu, max-pool 2, dense 32, Adam', 'fashion', [32], 0, 'adam', true],
  ] as const)('%s', async (_label, dataset, hidden, dropoutRate, optimizer, conv) => {
    setBackend('wasm');
    const data = dataset === 'fashion' ? (await fashion).train : head((await digits).train, 640);
    const weights: Buffer[] = [];
    for (const threads of [1, 2, 3]) {
      setThreads(threads);
      await threadsReady();
      expect(threadCount()).toBe(threads);
      weights.push(await train(data, [...hidden], dropoutRate, optimizer, conv));
    }
    expect(weights[1].equals(weights[0]), '2 threads = 1 thread').toBe(true);
    expect(weights[2].equals(weights[0]), '3 threads = 1 thread').toBe(true);
  });

  it('with shares sized by uneven speeds (2 threads at 1:3, 3 at 5:1:2), the weights of one thread', async () => {
    const data = (await fashion).train;
    const weights: Buffer[] = [];
    for (const [threads, speeds] of [[1, undefined], [2, [1, 3]], [3, [5, 1, 2]]] as const) {
      const k = setBackend('wasm') as WasmKernels;
      setThreads(threads);
      await threadsReady();
      if (speeds) k.setShareSpeeds([...speeds]);
      expect(k.shareSpeeds).toEqual(speeds ? [...speeds] : [1]);
      weights.push(await train(data, [128], 0.3, 'adam', false));
      k.setShareSpeeds(undefined);
    }
    expect(weights[1].equals(weights[0]), '2 threads at 1:3 = 1 thread').toBe(true);
    expect(weights[2].equals(weights[0]), '3 threads at 5:1:2 = 1 thread').toBe(true);
  });
});

describe('an optimizer update left running while the caller goes on', () => {
  const n = 1 << 20;
  /** Adam's four buffers (w, g, m, v) with seeded values. */
  const adamInputs = (seed: number): Float32Array[] => {
    const random = prng(seed);
    return [values(random, n), values(random, n), values(random, n), values(random, n).map(Math.abs)];
  };
  const load = (kernels: Kernels, inputs: Float32Array[]): Storage[] => inputs.map((input) => {
    const storage = kernels.alloc(input.length);
    storage.data.set(input);
    return storage;
  });
  const bitsOf = (storage: Storage): Uint32Array => new Uint32Array(Float32Array.from(storage.data).buffer);
  /** w, m and v after `updates` Adam updates on one thread. */
  const oneThread = (inputs: Float32Array[], updates: number): Uint32Array[] => {
    const [w, g, m, v] = load(one, inputs);
    for (let i = 0; i < updates; i++) one.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
    const bits = [w, m, v].map(bitsOf);
    for (const storage of [w, g, m, v]) one.free(storage);
    return bits;
  };
  const expectBits = (got: Uint32Array, want: Uint32Array, label: string): void => {
    const i = got.findIndex((bits, j) => bits !== want[j]);
    if (i >= 0) expect.fail(`${label} differs at ${i}`);
  };

  it('returns before the workers are done; reading one of its buffers, or any kernel call, waits for them, and the floats are one thread\'s', async () => {
    const k = createWasmKernels({ threads: 2 });
    const inputs = adamInputs(11);
    const [w, g, m, v] = load(k, inputs);
    const other = k.alloc(16);
    try {
      await k.threadsReady();
      // The worker's share is three times the caller's: it is still running when the caller's is done.
      k.setShareSpeeds([1, 3]);
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      expect(k.updateInFlight).toBe(true);
      other.data.fill(1); // a buffer the update does not use: no waiting
      expect(k.updateInFlight).toBe(true);
      const afterOne = oneThread(inputs, 1);
      expectBits(bitsOf(w), afterOne[0], 'w after one update, read at once');
      expect(k.updateInFlight).toBe(false);
      expectBits(bitsOf(m), afterOne[1], 'm after one update');
      expectBits(bitsOf(v), afterOne[2], 'v after one update');
      // A kernel call waits too; then the next update reads what this one wrote.
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      expect(k.updateInFlight).toBe(true);
      k.fill(other, 0);
      expect(k.updateInFlight).toBe(false);
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      const afterFour = oneThread(inputs, 4);
      [w, m, v].forEach((storage, i) => expectBits(bitsOf(storage), afterFour[i], `buffer ${i} after four updates`));
      // Off: the call returns when every share is done.
      k.threadPolicy.overlapUpdates = false;
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      expect(k.updateInFlight).toBe(false);
      expect(k.shareTimings.get('adam')!.calls).toBe(5);
    } finally {
      for (const storage of [w, g, m, v, other]) k.free(storage);
      k.setThreads(1);
    }
  });

  it('a buffer freed while the update runs (its gradient) keeps its block until the update is done', async () => {
    const k = createWasmKernels({ threads: 2 });
    const inputs = adamInputs(12);
    const [w, g, m, v] = load(k, inputs);
    try {
      await k.threadsReady();
      k.setShareSpeeds([1, 3]);
      const live = k.memoryBytes();
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      k.free(g);
      expect(k.memoryBytes()).toBe(live - n * 4);
      expect(k.updateInFlight).toBe(true);
      // Same size, so it would take g's block if g's were free: it must not, and writing it must not wait.
      const next = k.alloc(n, false);
      expect(next.ptr).not.toBe(g.ptr);
      next.data.fill(Number.NaN);
      expect(k.updateInFlight).toBe(true);
      const want = oneThread(inputs, 1);
      expectBits(bitsOf(w), want[0], 'w');
      expectBits(bitsOf(v), want[2], 'v');
      // Done: g's block is free again.
      const reused = k.alloc(n);
      expect(reused.ptr).toBe(g.ptr);
      for (const storage of [next, reused]) k.free(storage);
    } finally {
      for (const storage of [w, m, v]) k.free(storage);
      k.setThreads(1);
    }
  });

  it('the caller\'s share shrinks while the workers are done before it comes back, and grows while they are still busy; the floats stay one thread\'s', async () => {
    const k = createWasmKernels({ threads: 2 });
    const inputs = adamInputs(13);
    const [w, g, m, v] = load(k, inputs);
    const other = k.alloc(16);
    try {
      await k.threadsReady();
      const lead = (): number => k.callerLeads.get(w.ptr) ?? Number.NaN;
      let updates = 0;
      // The caller comes back late: the workers were idle, so they get more.
      for (let i = 0; i < 10; i++) {
        k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
        updates++;
        await new Promise((resolve) => setTimeout(resolve, 5));
        k.fill(other, 0);
      }
      const shrunk = lead();
      expect(shrunk).toBeLessThan(0.9);
      expect(shrunk).toBeGreaterThanOrEqual(0.2);
      // The caller comes back at once, its share now the smaller: the workers are still busy.
      let grew = false;
      for (let i = 0; i < 20 && !grew; i++) {
        const before = lead();
        k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
        updates++;
        k.fill(other, 0);
        grew = lead() > before;
      }
      expect(grew).toBe(true);
      const want = oneThread(inputs, updates);
      [w, m, v].forEach((storage, i) => expectBits(bitsOf(storage), want[i], `buffer ${i} after ${updates} updates`));
    } finally {
      for (const storage of [w, g, m, v, other]) k.free(storage);
      k.setThreads(1);
    }
  });
});

describe('stalls: the caller waiting for the workers\' shares', () => {
  it('are counted when a worker\'s share outlasts the caller\'s, and only in calls a worker took part in', async () => {
    const k = createWasmKernels({ threads: 2 });
    const n = 1 << 21;
    const [w, g, m, v] = [0, 1, 2, 3].map(() => k.alloc(n));
    try {
      expect(k.stalls).toEqual({ calls: 0, ms: 0 });
      await k.threadsReady();
      // The worker's share is three times the caller's: once the worker has claimed it, the caller waits.
      k.setShareSpeeds([1, 3]);
      const workerSharesBefore = k.workerShares;
      let calls = 0;
      for (const until = Date.now() + 5000; k.stalls.calls === 0 && Date.now() < until; calls++) {
        k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
        if (k.stalls.calls === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const { calls: stalled, ms } = k.stalls;
      expect(stalled).toBeGreaterThanOrEqual(1);
      expect(stalled).toBeLessThanOrEqual(Math.min(calls, k.workerShares - workerSharesBefore));
      expect(ms).toBeGreaterThan(0.05 * stalled);
      // One thread: nothing is split, nothing waits.
      k.setThreads(1);
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      expect(k.stalls).toEqual({ calls: 0, ms: 0 });
    } finally {
      for (const storage of [w, g, m, v]) k.free(storage);
      k.setThreads(1);
    }
  });
});

describe("a worker's spin, and the calls that wake a sleeping worker", () => {
  it('with no spin a call after a pause wakes the worker; with a long one, calls 20 ms apart wake none; the results stay the same', async () => {
    const k = createWasmKernels({ threads: 2 });
    const n = 1 << 16;
    const inputs = (): Float32Array[] => {
      const random = prng(5);
      return [values(random, n), values(random, n), new Float32Array(n), new Float32Array(n)];
    };
    const [w, g, m, v] = inputs().map((input) => {
      const storage = k.alloc(n);
      storage.data.set(input);
      return storage;
    });
    try {
      await k.threadsReady();
      expect(k.threadPolicy.workerSpinMicros).toBeUndefined();
      const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));
      // No spin: a worker sleeps as soon as it has run its share, so each call after a pause finds it asleep.
      k.threadPolicy.workerSpinMicros = 0;
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      let before = k.wakes;
      for (let call = 0; call < 10; call++) {
        await pause();
        k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      }
      expect(k.wakes - before).toBeGreaterThanOrEqual(1);
      // A spin of a second: once the worker has woken and run a share, it spins, and calls 20 ms apart find it awake.
      k.threadPolicy.workerSpinMicros = 1_000_000;
      let calls = 11;
      const shares = k.workerShares;
      for (const until = Date.now() + 5000; k.workerShares === shares && Date.now() < until; calls++) {
        k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
        await pause();
      }
      expect(k.workerShares, 'shares the woken worker ran').toBeGreaterThan(shares);
      before = k.wakes;
      for (let call = 0; call < 10; call++, calls++) {
        await pause();
        k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      }
      expect(k.wakes - before).toBe(0);
      // As many updates on one thread give the same floats.
      const one = createWasmKernels({ threads: 1 });
      const [w1, g1, m1, v1] = inputs().map((input) => {
        const storage = one.alloc(n);
        storage.data.set(input);
        return storage;
      });
      for (let call = 0; call < calls; call++) one.adamUpdate(w1, g1, m1, v1, 1e-3, 0.9, 0.999, 1e-7);
      const bits = (storage: Storage): Uint32Array => new Uint32Array(Float32Array.from(storage.data).buffer);
      for (const [split, alone] of [[w, w1], [m, m1]]) {
        const want = bits(alone);
        expect(bits(split).findIndex((word, i) => word !== want[i]), 'first element that differs from one thread').toBe(-1);
      }
      // A spin the pool cannot take is refused at the next split call, with the bound.
      k.threadPolicy.workerSpinMicros = -1;
      expect(() => k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7)).toThrow(/a worker's spin is a whole number of µs from 0 to 1000000, not -1/);
    } finally {
      k.threadPolicy.workerSpinMicros = undefined;
      for (const storage of [w, g, m, v]) k.free(storage);
      k.setThreads(1);
    }
  });
});

describe('share timings: where the time of split calls went', () => {
  it('count every share of every call on the thread that ran it, and the caller\'s waits', async () => {
    const k = createWasmKernels({ threads: 2 });
    const n = 1 << 20;
    k.setShareSpeeds([1, 3]);
    const [w, g, m, v] = [0, 1, 2, 3].map(() => k.alloc(n));
    try {
      await k.threadsReady();
      expect(k.shareTimings.size).toBe(0);
      const workerSharesBefore = k.workerShares;
      const stallsBefore = k.stalls.ms;
      const calls = 50;
      for (let call = 0; call < calls; call++) k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      const timings = k.shareTimings;
      expect([...timings.keys()]).toEqual(['adam']);
      const adam = timings.get('adam')!;
      expect(adam.calls).toBe(calls);
      expect(adam.callerShares + adam.workerShares).toBe(2 * calls);
      expect(adam.workerShares).toBe(k.workerShares - workerSharesBefore);
      expect(adam.callerShares).toBeGreaterThanOrEqual(1);
      expect(adam.callerMs).toBeGreaterThan(0);
      expect(adam.workerMs > 0).toBe(adam.workerShares > 0);
      // At speeds 1:3 the shares are a quarter and three quarters of the output.
      expect(adam.sizedCalls).toBe(calls);
      expect(adam.callerPart).toBeGreaterThanOrEqual(0.25 * adam.callerShares - 1e-9);
      expect(adam.callerPart).toBeLessThanOrEqual(0.75 * adam.callerShares + 1e-9);
      expect(Math.abs(adam.callerPart * 4 - Math.round(adam.callerPart * 4))).toBeLessThan(1e-6);
      // Stalls are the long waits among all of them.
      expect(adam.waitMs).toBeGreaterThanOrEqual(k.stalls.ms - stallsBefore);
      // A copy: the caller cannot change the pool's counts.
      adam.calls = 0;
      expect(k.shareTimings.get('adam')!.calls).toBe(calls);
      k.setThreads(1);
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      expect(k.shareTimings.size).toBe(0);
    } finally {
      for (const storage of [w, g, m, v]) k.free(storage);
      k.setThreads(1);
    }
  });
});

describe('where threads cannot start', () => {
  it('the kernels run on one thread and say why', () => {
    setThreadHost(undefined);
    try {
      const k = createWasmKernels({ threads: 4 });
      expect(k.threads).toBe(1);
      expect(k.setThreads(2)).toBe(1);
      expect(k.threadsUnavailable).toBe('no way to start threads is installed in this runtime');
      expect(k.memory.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    } finally {
      setThreadHost(nodeThreadHost);
    }
  });
});

/** Runs `script` (ES module, `engine` bound to the built engine) in a child process; returns its JSON line. */
function child(script: string): Record<string, unknown> {
  const entry = createRequire(import.meta.url).resolve('@descent/engine');
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', `const engine = await import(${JSON.stringify(entry)});\n${script}`], {
    encoding: 'utf8', timeout: 60_000,
  });
  return JSON.parse(output) as Record<string, unknown>;
}

describe('the browser host', () => {
  it('starts its workers from the script a browser loads, posts them the shared memory, and gives the floats of one thread', () => {
    // Node has no Web Workers: each is a worker_thread that gives the browser entry a `self`
    // receiving the posted WorkerInit, as a Web Worker's global scope does.
    const browserEntry = createRequire(import.meta.url).resolve('@descent/engine/thread-worker-browser');
    const result = child(`
      const { Worker } = await import('node:worker_threads');
      const { setThreadHost, setThreads, threadsReady, kernels, webWorkerThreadHost } = engine;
      const shim = "import('node:worker_threads').then(({ parentPort }) => {" +
        "globalThis.self = { addEventListener: (type, listener) => parentPort.once('message', (data) => listener({ data })) };" +
        "return import(" + JSON.stringify(${JSON.stringify(browserEntry)}) + "); });";
      setThreadHost(webWorkerThreadHost(() => {
        const worker = new Worker(shim, { eval: true });
        worker.unref();
        return { postMessage: (init) => worker.postMessage(init), terminate: () => void worker.terminate(), addEventListener: (type, listener) => worker.on(type, (e) => listener({ message: String(e) })) };
      }, { cores: 2, canBlock: true }));
      const k = kernels();
      Object.assign(k.threadPolicy, { minProductWork: 1 });
      const product = () => {
        const a = k.alloc(96 * 70), b = k.alloc(70 * 50), c = k.alloc(96 * 50);
        for (let i = 0; i < a.length; i++) a.data[i] = Math.sin(i);
        for (let i = 0; i < b.length; i++) b.data[i] = Math.cos(i);
        k.gemm(96, 50, 70, a, false, b, false, c, false);
        const bits = Array.from(new Uint32Array(c.data.buffer, c.ptr, c.length));
        k.free(a); k.free(b); k.free(c);
        return bits;
      };
      const oneThread = product();
      setThreads(2);
      await threadsReady();
      const threads = k.threads;
      let twoThreads = product();
      // On a loaded machine the worker may not get a core for a while: keep asking, for up to 5 s.
      for (const until = Date.now() + 5000; k.workerShares === 0 && Date.now() < until;) {
        twoThreads = product();
        if (k.workerShares === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      console.log(JSON.stringify({ threads, same: JSON.stringify(oneThread) === JSON.stringify(twoThreads), workerShares: k.workerShares }));
    `) as { threads: number; same: boolean; workerShares: number };
    expect(result.threads).toBe(2);
    expect(result.workerShares).toBeGreaterThan(0);
    expect(result.same).toBe(true);
  });
});

describe('a worker that fails', () => {
  it('a WASM trap in a worker\'s share surfaces as one clear error in the caller; the pool shuts down, later calls run on the caller\'s thread, the process exits by itself', () => {
    // Adam over a buffer whose first half is in memory (slow: 64 MiB) and whose second half lies
    // past the end of memory: the caller claims the first share, a worker the second, which traps.
    // Which thread claims which share is up to them, so the call is repeated (with a new pool)
    // until the trap was a worker's.
    const result = child(`
      const { setThreads, threadsReady, threadCount, kernels, ThreadError } = engine;
      const messages = [];
      for (let attempt = 0; attempt < 10 && !messages.some((m) => m.includes('worker thread')); attempt++) {
        setThreads(2);
        await threadsReady();
        const k = kernels();
        const big = k.alloc(1 << 24);
        const half = Math.floor((k.memory.buffer.byteLength - big.ptr) / 16) * 4;
        const tooLong = { ptr: big.ptr, length: 2 * half, data: big.data };
        const probe = k.alloc(4);
        try {
          // The update may return before the worker's share is done: its error then surfaces at the next call.
          k.adamUpdate(tooLong, tooLong, tooLong, tooLong, 1e-3, 0.9, 0.999, 1e-7);
          k.fill(probe, 0);
          messages.push('no error');
        } catch (error) {
          messages.push((error instanceof ThreadError ? 'ThreadError: ' : 'other: ') + error.message);
        }
        k.free(big);
        k.free(probe);
      }
      const threadsAfter = threadCount();
      const k = kernels(), w = k.alloc(100000), g = k.alloc(100000), m = k.alloc(100000), v = k.alloc(100000);
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      console.log(JSON.stringify({ messages, threadsAfter, stillOne: threadCount() }));
    `) as { messages: string[]; threadsAfter: number; stillOne: number };
    for (const message of result.messages) {
      expect(message).toMatch(/^ThreadError: (the calling thread|worker thread 1) \(of 2\) failed in adam: RuntimeError: memory access out of bounds$/);
    }
    expect(result.messages.at(-1)).toMatch(/worker thread 1/);
    expect(result.threadsAfter).toBe(1);
    expect(result.stillOne).toBe(1);
  });

  it('a trap in a slice of the forward frees the slices that wait on it: one clear error, no hang', () => {
    // The rows of w for the first half of the features lie past the end of memory (addresses
    // wrap at 2³²), the rest at its start: the first slice traps and the second, which waits for
    // the first's rows, must still finish.
    const result = child(`
      const { setThreads, threadsReady, kernels, ThreadError } = engine;
      setThreads(2);
      await threadsReady();
      const k = kernels();
      const m = 8, n = 128, kk = 784;
      const x = k.alloc(m * kk), bias = k.alloc(n), out = k.alloc(m * n);
      for (let i = 0; i < m * kk; i++) x.data[i] = i % 2; // half zeros: the zero-skipping kernel
      const w = { ptr: 2 ** 32 - (kk / 2) * n * 4, length: kk * n, data: new Float32Array(kk * n) };
      const messages = [];
      try {
        k.denseForward(m, n, kk, x, w, bias, out, true);
        messages.push('no error');
      } catch (error) {
        messages.push((error instanceof ThreadError ? 'ThreadError: ' : 'other: ') + error.message);
      }
      console.log(JSON.stringify({ messages, threadsAfter: k.threads }));
    `) as { messages: string[]; threadsAfter: number };
    expect(result.messages).toHaveLength(1);
    expect(result.messages[0]).toMatch(/^ThreadError: (the calling thread|worker thread 1) \(of 2\) failed in sparseForwardSlices: RuntimeError: memory access out of bounds$/);
    expect(result.threadsAfter).toBe(1);
  });

  it('a worker that cannot start surfaces as one clear error at the next split call, and the process exits by itself', () => {
    // A host whose workers die while starting (a forced failure).
    const result = child(`
      const { Worker } = await import('node:worker_threads');
      const { setThreadHost, setThreads, kernels, threadCount, ThreadError } = engine;
      let reported;
      const failed = new Promise((resolve) => { reported = resolve; });
      setThreadHost({
        cores: () => 2,
        canBlock: true,
        start(init, onError) {
          const worker = new Worker("throw new Error('forced failure while starting')", { eval: true });
          worker.on('error', (error) => { onError(error.name + ': ' + error.message); reported(); });
          worker.unref();
          return { terminate: () => void worker.terminate() };
        },
      });
      const k = kernels();
      setThreads(2);
      // The dead worker is unref'd: a timer keeps this process alive until its error has arrived.
      const keepAlive = setTimeout(() => {}, 30_000);
      await failed;
      clearTimeout(keepAlive);
      const w = k.alloc(100000), g = k.alloc(100000), m = k.alloc(100000), v = k.alloc(100000);
      let message = 'no error';
      try {
        k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      } catch (error) {
        message = (error instanceof ThreadError ? 'ThreadError: ' : 'other: ') + error.message;
      }
      k.adamUpdate(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7);
      console.log(JSON.stringify({ message, threadsAfter: threadCount() }));
    `);
    expect(result.message).toBe('ThreadError: a worker thread failed to start: Error: forced failure while starting');
    expect(result.threadsAfter).toBe(1);
  });
});
