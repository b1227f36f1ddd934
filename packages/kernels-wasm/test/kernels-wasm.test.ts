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
  'heapBase', 'relaxedSimd', 'sharedMemory', 'gemmBlock', 'denseBlock', 'weightGradSparseInputRows', 'fill', 'copy', 'addInto', 'multiply', 'scale', 'axpy', 'sum', 'dot', 'normalizeBytes',
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
});
