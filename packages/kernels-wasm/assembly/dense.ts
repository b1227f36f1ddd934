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

/**
 * out[j] (+)= Σ_i x[i, j], each column summed in ascending i. Blocks of 32 columns keep their
 * 8 sums in registers down all the rows (adding into out in memory would wait on the store of
 * the row before, every row); the columns past the last block go 4, then 1 at a time.
 */
export function columnSums(m: i32, n: i32, x: usize, out: usize, accumulate: bool): void {
  if (!accumulate) memory.fill(out, 0, <usize>n << 2);
  const ldx = <usize>n << 2;
  let j = 0;
  for (; j + 32 <= n; j += 32) {
    const o = out + (<usize>j << 2);
    let a0 = v128.load(o), a1 = v128.load(o, 16), a2 = v128.load(o, 32), a3 = v128.load(o, 48);
    let a4 = v128.load(o, 64), a5 = v128.load(o, 80), a6 = v128.load(o, 96), a7 = v128.load(o, 112);
    let row = x + (<usize>j << 2);
    for (let i = 0; i < m; i++, row += ldx) {
      a0 = f32x4.add(a0, v128.load(row)); a1 = f32x4.add(a1, v128.load(row, 16));
      a2 = f32x4.add(a2, v128.load(row, 32)); a3 = f32x4.add(a3, v128.load(row, 48));
      a4 = f32x4.add(a4, v128.load(row, 64)); a5 = f32x4.add(a5, v128.load(row, 80));
      a6 = f32x4.add(a6, v128.load(row, 96)); a7 = f32x4.add(a7, v128.load(row, 112));
    }
    v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
    v128.store(o, a4, 64); v128.store(o, a5, 80); v128.store(o, a6, 96); v128.store(o, a7, 112);
  }
  if (j == n) return;
  const n4 = n & ~3;
  for (let i = 0; i < m; i++) {
    const row = x + <usize>i * ldx;
    let c = j;
    for (; c < n4; c += 4) {
      const o = <usize>c << 2;
      v128.store(out + o, f32x4.add(v128.load(out + o), v128.load(row + o)));
    }
    for (; c < n; c++) {
      const o = <usize>c << 2;
      store<f32>(out + o, load<f32>(out + o) + load<f32>(row + o));
    }
  }
}
