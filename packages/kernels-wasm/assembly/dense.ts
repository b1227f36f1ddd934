/**
 * The dense layer's kernels.
 *
 *   dense        out[m,n] = act(x[m,k]·w[k,n] + bias[n]),  act = ReLU or identity
 *                (one pass: the GEMM accumulators start from the bias and ReLU is applied
 *                 before they are stored, so out is written once)
 *   biasAdd      out[m,n] = x[m,n] + bias[n]               (out may be x)
 *   columnSums   out[n] = Σ_i x[i,n], or out += …          (the bias gradient)
 *
 * The gradients of a dense layer are plain `gemm` calls: dx = dy·wᵀ, dw = xᵀ·dy.
 * `denseBlock` computes rows r0..r1 and columns c0..c1 of `dense`'s output, to the bit.
 */
import { blockInto, INIT_BIAS } from './gemm_f32_4x8_simd';

/** `scratch` must hold gemmScratchBytes(n, k) bytes. */
export function dense(
  m: i32, n: i32, k: i32,
  x: usize, w: usize, bias: usize, out: usize, relu: bool,
  scratch: usize,
): void {
  blockInto(m, n, k, x, false, w, false, out, INIT_BIAS, bias, relu, scratch, 0, m, 0, n);
}

/** Rows r0..r1, columns c0..c1 of `dense`; `scratch` must hold gemmScratchBytes(c1 - c0, k) bytes. */
export function denseBlock(
  m: i32, n: i32, k: i32,
  x: usize, w: usize, bias: usize, out: usize, relu: bool,
  scratch: usize,
  r0: i32, r1: i32, c0: i32, c1: i32,
): void {
  blockInto(m, n, k, x, false, w, false, out, INIT_BIAS, bias, relu, scratch, r0, r1, c0, c1);
}

export function biasAdd(m: i32, n: i32, x: usize, bias: usize, out: usize): void {
  const n4 = n & ~3;
  for (let i = 0; i < m; i++) {
    const row = (<usize>i * n) << 2;
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize>j << 2;
      v128.store(out + row + o, f32x4.add(v128.load(x + row + o), v128.load(bias + o)));
    }
    for (; j < n; j++) {
      const o = <usize>j << 2;
      store<f32>(out + row + o, load<f32>(x + row + o) + load<f32>(bias + o));
    }
  }
}

/** Adds rows into out 4 columns at a time, so each row is read once, in order. */
export function columnSums(m: i32, n: i32, x: usize, out: usize, accumulate: bool): void {
  if (!accumulate) memory.fill(out, 0, <usize>n << 2);
  const n4 = n & ~3;
  for (let i = 0; i < m; i++) {
    const row = x + ((<usize>i * n) << 2);
    let j = 0;
    for (; j < n4; j += 4) {
      const o = <usize>j << 2;
      v128.store(out + o, f32x4.add(v128.load(out + o), v128.load(row + o)));
    }
    for (; j < n; j++) {
      const o = <usize>j << 2;
      store<f32>(out + o, load<f32>(out + o) + load<f32>(row + o));
    }
  }
}
