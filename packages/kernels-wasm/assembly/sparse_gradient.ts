/**
 * sparse_gradient: a convolution's weight gradient, skipping the exact zeros of the output
 * gradient; and a transpose.
 *
 * Behind max pooling, at most one position of each pooling window gets a gradient per channel
 * (the window's maximum), and the ReLU before it blocks some of those too: in the tutorial CNN,
 * 79% of the second convolution's output gradient dz [positions, filters] is exactly 0. Its
 * weight gradient is a sum of outer products of rows,
 *
 *     dw[k, f] = Σ_i x[i, k] · dz[i, f]       x: the patch matrix [m, kdim], dz [m, n]
 *
 * so it is computed transposed, one row of dwᵀ per nonzero dz[i, f]:
 *
 *     list the nonzeros (i, f, dz[i, f]) of dz, row by row                      (once)
 *     per block of 32 columns kb of x (dwᵀ[:, kb..kb+32) is n·128 bytes: in L1):
 *       per row i: load x[i, kb..kb+32) (8 v128, kept in registers)
 *         per listed (f, g) of row i:  dwᵀ[f, kb..kb+32) += splat(g) · x[i, kb..kb+32)
 *
 * x is read once, in order; each listed gradient costs 8 loads, 8 multiply-adds and 8 stores of
 * dwᵀ. Each dwᵀ[f, k] is the same multiply-adds in the same ascending order of i as the GEMM's
 * (minus the 0·x terms), so the result is the GEMM's, as for dense_sparse_input.ts; the caller
 * transposes dwᵀ into dw. Columns past the last 32 take one more pass, 4 then 1 at a time.
 * Threads share the rows of dwᵀ (filters): `weightGradSparseGradRows` lists and computes only
 * its filters' gradients, so each thread reads all of x but writes only its own rows.
 */
import { madd } from './simd';

/** Bytes of scratch `weightGradSparseGrad` needs: the list of nonzeros (and one spare entry) and the row starts. */
export function sparseGradScratchBytes(m: i32, n: i32): i32 {
  return (m * n + 1) * 8 + (m + 1) * 4 + 16;
}

/** dwT[n, kdim] (+)= dzᵀ·x with x [m, kdim], dz [m, n], skipping dz's zeros. */
export function weightGradSparseGrad(
  m: i32, kdim: i32, n: i32,
  x: usize, dz: usize, dwT: usize, accumulate: bool,
  scratch: usize,
): void {
  weightGradSparseGradRows(m, kdim, n, x, dz, dwT, accumulate, scratch, 0, n);
}

/**
 * Rows f0..f1 of `weightGradSparseGrad`'s dwT (filters), to the bit: the list holds only dz's
 * columns f0..f1, and each row of dwT takes the same multiply-adds in the same order.
 */
export function weightGradSparseGradRows(
  m: i32, kdim: i32, n: i32,
  x: usize, dz: usize, dwT: usize, accumulate: bool,
  scratch: usize, f0: i32, f1: i32,
): void {
  if (f1 <= f0) return;
  if (!accumulate) memory.fill(dwT + ((<usize>f0 * kdim) << 2), 0, <usize>(f1 - f0) * kdim << 2);
  // The list: for row i, entries rowStart[i] .. rowStart[i+1] of (f, dz[i, f]).
  const rowStart = scratch;
  const entries = (scratch + ((<usize>(m + 1) << 2) + 15)) & ~15;
  let count = 0;
  for (let i = 0; i < m; i++) {
    store<i32>(rowStart + (<usize>i << 2), count);
    const row = dz + ((<usize>i * n) << 2);
    // Branch-free: every value is written at the end of the list, which grows only past nonzeros
    // (at three quarters zeros a branch would be mispredicted often).
    for (let f = f0; f < f1; f++) {
      const g = load<f32>(row + (<usize>f << 2));
      const e = entries + (<usize>count << 3);
      store<i32>(e, f);
      store<f32>(e, g, 4);
      count += i32(g != 0);
    }
  }
  store<i32>(rowStart + (<usize>m << 2), count);

  const ldx = <usize>kdim << 2;
  let k = 0;
  for (; k + 32 <= kdim; k += 32) {
    const kb = <usize>k << 2;
    for (let i = 0; i < m; i++) {
      let e = entries + (<usize>load<i32>(rowStart + (<usize>i << 2)) << 3);
      const end = entries + (<usize>load<i32>(rowStart + (<usize>(i + 1) << 2)) << 3);
      if (e == end) continue;
      const xr = x + <usize>i * ldx + kb;
      const x0 = v128.load(xr), x1 = v128.load(xr, 16), x2 = v128.load(xr, 32), x3 = v128.load(xr, 48);
      const x4 = v128.load(xr, 64), x5 = v128.load(xr, 80), x6 = v128.load(xr, 96), x7 = v128.load(xr, 112);
      for (; e < end; e += 8) {
        const d = dwT + <usize>load<i32>(e) * ldx + kb;
        const g = v128.load32_splat(e, 4);
        v128.store(d, madd(g, x0, v128.load(d)));
        v128.store(d, madd(g, x1, v128.load(d, 16)), 16);
        v128.store(d, madd(g, x2, v128.load(d, 32)), 32);
        v128.store(d, madd(g, x3, v128.load(d, 48)), 48);
        v128.store(d, madd(g, x4, v128.load(d, 64)), 64);
        v128.store(d, madd(g, x5, v128.load(d, 80)), 80);
        v128.store(d, madd(g, x6, v128.load(d, 96)), 96);
        v128.store(d, madd(g, x7, v128.load(d, 112)), 112);
      }
    }
  }
  // The last kdim mod 32 columns (all of them when kdim < 32, as for a first layer's 3×3
  // patches): one pass over the list, four columns at a time, then one at a time.
  if (k < kdim) {
    const k4 = k + ((kdim - k) & ~3);
    for (let i = 0; i < m; i++) {
      let e = entries + (<usize>load<i32>(rowStart + (<usize>i << 2)) << 3);
      const end = entries + (<usize>load<i32>(rowStart + (<usize>(i + 1) << 2)) << 3);
      const xr = x + <usize>i * ldx;
      for (; e < end; e += 8) {
        const d = dwT + <usize>load<i32>(e) * ldx;
        const g = v128.load32_splat(e, 4);
        let j = k;
        for (; j < k4; j += 4) {
          const o = <usize>j << 2;
          v128.store(d + o, madd(g, v128.load(xr + o), v128.load(d + o)));
        }
        for (; j < kdim; j++) {
          const o = <usize>j << 2;
          // The same multiply-add as one lane of the vector path (fused in the relaxed build).
          store<f32>(d + o, f32x4.extract_lane(madd(g, f32x4.splat(load<f32>(xr + o)), f32x4.splat(load<f32>(d + o))), 0));
        }
      }
    }
  }
}

/** dst[c, r] = src[r, c] (or dst += srcᵀ when accumulating): src [rows, cols], dst [cols, rows]. */
export function transpose(rows: i32, cols: i32, src: usize, dst: usize, accumulate: bool): void {
  for (let r = 0; r < rows; r++) {
    const s = src + ((<usize>r * cols) << 2);
    for (let c = 0; c < cols; c++) {
      const d = dst + ((<usize>c * rows + r) << 2);
      const v = load<f32>(s + (<usize>c << 2));
      store<f32>(d, accumulate ? load<f32>(d) + v : v);
    }
  }
}
