/**
 * The package on its own: the embedded binaries decode, validate and instantiate with no
 * imports, and export every kernel the KernelExports interface describes.
 */
import { describe, expect, it } from 'vitest';
import { decodeBase64 } from '../src/base64.js';
import {
  createSharedMemory, instantiateKernels, kernelsWasmBytes, sharedMemoryUnavailableReason, simdSupported, type KernelExports,
} from '../src/index.js';

const KERNELS: Array<keyof KernelExports> = [
  'heapBase', 'relaxedSimd', 'sharedMemory', 'gemmBlock', 'denseBlock', 'weightGradSparseInputRows', 'denseSparseInputSlice', 'sliceFlagsBytes', 'releaseSliceFlags', 'fill', 'copy', 'addInto', 'multiply', 'scale', 'axpy', 'sum', 'dot', 'normalizeBytes',
  'gemm', 'gemmScratchBytes', 'dense', 'biasAdd', 'columnSums', 'reluForward', 'reluBackward', 'softmax', 'logSoftmax',
  'softmaxBackward', 'logSoftmaxBackward', 'softmaxCrossEntropyForward', 'softmaxCrossEntropyBackward',
  'crossEntropyFromProbsForward', 'crossEntropyFromProbsBackward', 'countCorrect', 'sgdUpdate', 'adamUpdate',
];

describe('@descent/kernels-wasm', () => {
  it('decodes base64 like Node does, for every padding', () => {
    let seed = 5;
    for (let length = 0; length < 40; length++) {
      const bytes = new Uint8Array(length);
      for (let i = 0; i < length; i++) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        bytes[i] = seed >>> 24;
      }
      expect(Array.from(decodeBase64(Buffer.from(bytes).toString('base64')))).toEqual(Array.from(bytes));
    }
  });

  it('embeds valid SIMD and relaxed-SIMD binaries that import nothing', () => {
    expect(simdSupported()).toBe(true);
    const simd = kernelsWasmBytes('simd');
    expect(WebAssembly.validate(simd)).toBe(true);
    expect(WebAssembly.Module.imports(new WebAssembly.Module(simd))).toEqual([]);
    // The relaxed build starts with the wasm magic; whether this runtime accepts it is a flag away.
    expect(Array.from(kernelsWasmBytes('relaxed-simd').subarray(0, 4))).toEqual([0, 0x61, 0x73, 0x6d]);
  });

  it('exports every kernel, its memory and a heap base', () => {
    const kernels = instantiateKernels('simd');
    for (const name of KERNELS) expect(typeof kernels[name], name).toBe('function');
    expect(kernels.memory).toBeInstanceOf(WebAssembly.Memory);
    expect(kernels.heapBase()).toBeGreaterThan(0);
    expect(kernels.heapBase()).toBeLessThanOrEqual(kernels.memory.buffer.byteLength);
    expect(kernels.relaxedSimd()).toBe(0);
  });

  it('gives each instance its own memory', () => {
    const one = instantiateKernels('simd'), two = instantiateKernels('simd');
    expect(one.memory).not.toBe(two.memory);
    const base = (one.heapBase() + 15) & ~15;
    new Float32Array(one.memory.buffer, base, 4).set([1, 2, 3, 4]);
    expect(one.sum(base, 4)).toBe(10);
    expect(two.sum(base, 4)).toBe(0);
  });

  it('has threads builds that import one shared memory, which instances then share', () => {
    expect(sharedMemoryUnavailableReason()).toBeUndefined();
    const imports = WebAssembly.Module.imports(new WebAssembly.Module(kernelsWasmBytes('simd', { shared: true })));
    expect(imports).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    const memory = createSharedMemory();
    expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    const one = instantiateKernels('simd', { memory }), two = instantiateKernels('simd', { memory });
    expect(one.memory).toBe(memory);
    expect(one.sharedMemory()).toBe(1);
    expect(instantiateKernels('simd').sharedMemory()).toBe(0);
    const base = (one.heapBase() + 15) & ~15;
    new Float32Array(memory.buffer, base, 4).set([1, 2, 3, 4]);
    expect(two.sum(base, 4)).toBe(10);
  });
  it('the zero-skipping forward run as slices of features, one after another, gives denseSparseInput\'s floats (empty slices too)', () => {
    for (const variant of ['simd', 'simd-threads'] as const) {
      const shared = variant === 'simd-threads';
      if (shared && sharedMemoryUnavailableReason() !== undefined) continue;
      const k = shared ? instantiateKernels('simd', { memory: createSharedMemory(64) }) : instantiateKernels('simd');
      if (!shared) k.memory.grow(64);
      let seed = 11;
      const random = (): number => {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        return seed / 2 ** 32;
      };
      const base = (k.heapBase() + 63) & ~63;
      for (const [m, kk, n] of [[1, 1, 1], [5, 200, 31], [9, 784, 128], [33, 130, 41], [7, 129, 3]]) {
        for (const relu of [false, true]) {
          for (const cuts of [[0, kk], [0, 64, kk], [0, 0, kk, kk], [0, 1, 1, kk >> 1, kk], [0, 65, 66, kk]].map((c) => c.map((at) => Math.min(at, kk)).sort((a, b) => a - b))) {
            const f = new Float32Array(k.memory.buffer);
            const x = base, w = x + m * kk * 4, bias = w + kk * n * 4, want = bias + n * 4, got = want + m * n * 4;
            const flags = got + m * n * 4 + 64, scratch = flags + k.sliceFlagsBytes(m) + 64;
            for (let i = 0; i < m * kk; i++) f[x / 4 + i] = random() < 0.5 ? 0 : 2 * random() - 1;
            for (let i = 0; i < kk * n + n; i++) f[w / 4 + i] = 2 * random() - 1;
            f.fill(0, flags / 4, scratch / 4);
            k.denseSparseInput(m, n, kk, x, w, bias, want, relu, scratch);
            const stamp = 1024;
            for (let s = 0; s + 1 < cuts.length; s++) k.denseSparseInputSlice(m, n, kk, x, w, bias, got, relu, scratch, cuts[s], cuts[s + 1], s, flags, stamp);
            const bits = new Uint32Array(k.memory.buffer);
            for (let i = 0; i < m * n; i++) {
              if (bits[want / 4 + i] !== bits[got / 4 + i]) expect.fail(`${variant} ${m}×${kk}×${n} relu=${relu} cuts ${cuts.join(',')}: out[${i}] differs`);
            }
            // Every block's flag was handed on by every slice.
            for (let b = 0; b < Math.ceil(m / 4); b++) expect(new Int32Array(k.memory.buffer)[flags / 4 + b * 16]).toBe(stamp + cuts.length - 1);
          }
        }
      }
    }
  });
});
