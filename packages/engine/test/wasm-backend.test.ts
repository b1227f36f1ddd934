/**
 * The WASM backend itself: that it really runs (no silent fall back to the reference kernels),
 * and that its allocator reuses memory, survives memory.grow, and stays flat over a training
 * step repeated many times.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { backendFallbackReason, createReferenceKernels, kernels, setBackend } from '../src/backend/index.js';
import type { Kernels, Storage } from '../src/backend/kernels.js';
import { createWasmKernels } from '../src/backend/wasm.js';

describe('the WASM backend is the one running', () => {
  afterAll(() => {
    setBackend('wasm');
  });

  it('createWasmKernels gives WASM kernels whose buffers live in WASM memory', () => {
    const k = createWasmKernels();
    expect(k.name).toBe('wasm');
    expect(k.precision).toBe('float32');
    expect(['simd', 'relaxed-simd']).toContain(k.variant);
    const s = k.alloc(37);
    expect(s.ptr).toBeGreaterThanOrEqual(0);
    expect(s.ptr % 16).toBe(0);
    expect(s.data).toBeInstanceOf(Float32Array);
    expect(s.data.buffer).toBe(k.memory.buffer);
    expect(s.data.byteOffset).toBe(s.ptr);
    const b = k.allocBytes(5);
    expect(b.data.buffer).toBe(k.memory.buffer);
    expect(b.data.byteOffset).toBe(b.ptr);
  });

  it('the engine default backend is wasm, with no fall back reason', () => {
    const active = setBackend('wasm');
    expect(active.name).toBe('wasm');
    expect(kernels().name).toBe('wasm');
    expect(backendFallbackReason()).toBeUndefined();
    const s = kernels().alloc(4);
    expect(s.ptr).toBeGreaterThanOrEqual(0);
    expect(s.data.buffer).toBe((kernels() as ReturnType<typeof createWasmKernels>).memory.buffer);
    kernels().free(s);
  });

  it('the kernels compute in WASM memory (a write through .data is what the kernel reads)', () => {
    const k = createWasmKernels();
    const a = k.alloc(6), b = k.alloc(6), c = k.alloc(4);
    a.data.set([1, 2, 3, 4, 5, 6]); // [2,3]
    b.data.set([1, 0, 0, 1, 1, 1]); // [3,2]
    k.gemm(2, 2, 3, a, false, b, false, c, false);
    expect(Array.from(c.data)).toEqual([4, 5, 10, 11]);
  });
});

describe('allocator', () => {
  it('hands a freed block back to the next alloc of the same size, zero-filled', () => {
    const k = createWasmKernels();
    const first = k.alloc(100);
    first.data.fill(7);
    const ptr = first.ptr;
    k.free(first);
    const again = k.alloc(100);
    expect(again.ptr).toBe(ptr);
    expect(Array.from(again.data).every((v) => v === 0)).toBe(true);
    // Lengths that round to the same 16-byte block share a free list.
    k.free(again);
    expect(k.alloc(97).ptr).toBe(ptr);
    // A different size does not take it.
    const other = k.alloc(3);
    expect(other.ptr).not.toBe(ptr);
  });

  it('byte buffers share the heap and are reused the same way', () => {
    const k = createWasmKernels();
    const bytes = k.allocBytes(784 * 32);
    bytes.data.fill(200);
    const ptr = bytes.ptr;
    k.freeBytes(bytes);
    const again = k.allocBytes(784 * 32);
    expect(again.ptr).toBe(ptr);
    expect(again.data.every((v) => v === 0)).toBe(true);
  });

  it('refuses a double free, and buffers of another backend', () => {
    const k = createWasmKernels();
    const s = k.alloc(8);
    k.free(s);
    expect(() => k.free(s)).toThrow(/freed twice/);
    expect(() => k.free(createWasmKernels().alloc(8))).toThrow(/not allocated by this WASM backend/);
    expect(() => k.freeBytes(createReferenceKernels().allocBytes(8))).toThrow(/not allocated by this WASM backend/);
  });

  it('keeps every view valid after memory.grow', () => {
    const k = createWasmKernels();
    const small = k.alloc(10);
    small.data.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const oldBuffer = k.memory.buffer;
    const pixels = k.allocBytes(3);
    pixels.data.set([255, 0, 51]);

    const big = k.alloc(4 * 1024 * 1024); // 16 MiB: more than the memory has, so it grows
    expect(k.memory.buffer).not.toBe(oldBuffer);
    expect(oldBuffer.byteLength).toBe(0); // the old buffer is detached ...
    expect(small.data.buffer).toBe(k.memory.buffer); // ... and the view follows the new one
    expect(Array.from(small.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(Array.from(pixels.data)).toEqual([255, 0, 51]);
    expect(k.sum(small)).toBe(55);

    big.data[big.length - 1] = 3;
    expect(k.sum(big)).toBe(3);
    const out = k.alloc(3);
    k.normalizeBytes(pixels, 3, 1 / 255, out);
    expect(Array.from(out.data)).toEqual([1, 0, Math.fround(51 * Math.fround(1 / 255))]);
  });

  it('a repeated training step takes no new memory: memoryBytes and the heap stay flat', () => {
    const k = createWasmKernels();
    // Weights and optimizer state live across steps (784 → 128 → 10).
    const w1 = k.alloc(784 * 128), b1 = k.alloc(128), w2 = k.alloc(128 * 10), b2 = k.alloc(10);
    const state = [w1, b1, w2, b2].flatMap((p) => [k.alloc(p.length), k.alloc(p.length)]);
    const batch = 32;
    const pixels = k.allocBytes(batch * 784);

    const step = (): void => {
      const temps: Storage[] = [];
      const tmp = (n: number): Storage => {
        const s = k.alloc(n);
        temps.push(s);
        return s;
      };
      const x = tmp(batch * 784), labels = tmp(batch);
      k.normalizeBytes(pixels, batch * 784, 1 / 255, x);
      const h = tmp(batch * 128), z = tmp(batch * 10), p = tmp(batch * 10);
      k.denseForward(batch, 128, 784, x, w1, b1, h, true);
      k.denseForward(batch, 10, 128, h, w2, b2, z, false);
      k.softmaxCrossEntropyForward(batch, 10, z, labels, p);
      const dz = tmp(batch * 10), dh = tmp(batch * 128);
      k.softmaxCrossEntropyBackward(batch, 10, p, labels, 1 / batch, dz);
      const gw2 = tmp(128 * 10), gb2 = tmp(10), gw1 = tmp(784 * 128), gb1 = tmp(128);
      k.gemm(128, 10, batch, h, true, dz, false, gw2, false);
      k.columnSums(batch, 10, dz, gb2, false);
      k.gemm(batch, 128, 10, dz, false, w2, true, dh, false);
      k.reluBackward(h, dh, dh, false);
      k.gemm(784, 128, batch, x, true, dh, false, gw1, false);
      k.columnSums(batch, 128, dh, gb1, false);
      const params = [w1, b1, w2, b2], grads = [gw1, gb1, gw2, gb2];
      params.forEach((w, i) => k.adamUpdate(w, grads[i], state[2 * i], state[2 * i + 1], 1e-3, 0.9, 0.999, 1e-7));
      for (const s of temps) k.free(s);
    };

    step();
    const live = k.memoryBytes(), reserved = k.reservedBytes(), size = k.memory.buffer.byteLength;
    const buffer = k.memory.buffer;
    for (let i = 0; i < 20; i++) step();
    expect(k.memoryBytes()).toBe(live);
    expect(k.reservedBytes()).toBe(reserved);
    expect(k.memory.buffer.byteLength).toBe(size);
    expect(k.memory.buffer).toBe(buffer); // never grew, so no view was ever detached
  });

  it('memoryBytes counts live buffers only, and returns to zero when all are freed', () => {
    const k: Kernels = createWasmKernels();
    expect(k.memoryBytes()).toBe(0);
    const a = k.alloc(10), b = k.allocBytes(5);
    expect(k.memoryBytes()).toBe(48 + 16);
    k.free(a);
    k.freeBytes(b);
    expect(k.memoryBytes()).toBe(0);
  });
});

describe('relaxed SIMD build', () => {
  it('agrees with the SIMD build on a GEMM, where the runtime runs relaxed SIMD', () => {
    // Node 20 accepts relaxed SIMD only behind a flag, so the check runs in a child process.
    const entry = createRequire(import.meta.url).resolve('@descent/kernels-wasm');
    const script = `
      const { instantiateKernels, relaxedSimdSupported } = await import(${JSON.stringify(entry)});
      if (!relaxedSimdSupported()) { console.log('unsupported'); process.exit(0); }
      const run = (variant) => {
        const w = instantiateKernels(variant);
        const m = 37, k = 300, n = 21, base = (w.heapBase() + 15) & ~15;
        w.memory.grow(16);
        const f = new Float32Array(w.memory.buffer);
        const a = base, b = a + m * k * 4, c = b + k * n * 4, s = c + m * n * 4;
        let seed = 1;
        for (let i = 0; i < m * k + k * n; i++) { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; f[a / 4 + i] = seed / 2 ** 32 - 0.5; }
        w.gemm(m, n, k, a, 0, b, 1, c, 0, s);
        return { relaxed: w.relaxedSimd(), c: Array.from(new Float32Array(w.memory.buffer, c, m * n)) };
      };
      const plain = run('simd'), fused = run('relaxed-simd');
      const err = Math.max(...plain.c.map((v, i) => Math.abs(v - fused.c[i])));
      console.log(JSON.stringify({ relaxed: fused.relaxed, plain: plain.relaxed, err }));
    `;
    const output = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    }).trim();
    if (output === 'unsupported') return;
    const result = JSON.parse(output) as { relaxed: number; plain: number; err: number };
    expect(result.relaxed).toBe(1);
    expect(result.plain).toBe(0);
    expect(result.err).toBeLessThan(1e-4);
  });
});
