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
 * `weightGradSparseGradDirectRows` does the same for a convolution without its patch matrix,
 * reading each patch where it lies in the image.
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
  const rowStart = scratch;
  const entries = listNonzeros(m, n, dz, scratch, f0, f1);

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
      addToListed32(e, end, dwT + kb, ldx, x0, x1, x2, x3, x4, x5, x6, x7);
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

/**
 * The list of dz's nonzeros in columns f0..f1: for row i, entries rowStart[i] .. rowStart[i+1]
 * of (f, dz[i, f]), rowStart at `scratch`. Returns where the entries start.
 */
// @ts-ignore: decorator
@inline
function listNonzeros(m: i32, n: i32, dz: usize, scratch: usize, f0: i32, f1: i32): usize {
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
  return entries;
}

/** Bytes of scratch `weightGradSparseGradDirectRows` needs: a block of zeros for the padding, then the list. */
export function sparseGradDirectScratchBytes(m: i32, n: i32): i32 {
  return ZERO_BLOCK_BYTES + sparseGradScratchBytes(m, n);
}

/** 32 floats of zeros: what a window position on the padding reads. */
const ZERO_BLOCK_BYTES = 128;

/**
 * Rows f0..f1 of dwᵀ exactly as `weightGradSparseGradRows` computes them from x's patch matrix,
 * but read from the image x itself, so the patch matrix (kh·kw times the image's size) is never
 * written. A patch's columns (kh, kw, c) are, for each window position, C consecutive floats of
 * x (NHWC), or zeros on the padding:
 *
 *     per window position (ky, kx), per block of 32 or 16 channels cb:
 *       per patch row i = (n, oh, ow): load x[n, oh·sh − pt + ky, ow·sw − pl + kx, cb]
 *         per listed (f, g) of row i:  dwᵀ[f, (ky, kx, cb)] += splat(g) · that block
 *
 * Every dwᵀ element takes the same multiply-adds in the same ascending order of i (the padding's
 * zeros included), so the floats are the patch-matrix kernel's. Channels a multiple of 16 (the
 * host checks); geometry arguments as in conv2d_nhwc_im2col.ts.
 */
export function weightGradSparseGradDirectRows(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  windowHeight: i32, windowWidth: i32, strideHeight: i32, strideWidth: i32, padTop: i32, padLeft: i32,
  n: i32, x: usize, dz: usize, dwT: usize, accumulate: bool, scratch: usize, f0: i32, f1: i32,
): void {
  if (f1 <= f0) return;
  const m = batch * outHeight * outWidth;
  const kdim = windowHeight * windowWidth * channels;
  const ldd = <usize>kdim << 2;
  if (!accumulate) memory.fill(dwT + <usize>f0 * ldd, 0, <usize>(f1 - f0) * ldd);
  const zeros = scratch;
  memory.fill(zeros, 0, ZERO_BLOCK_BYTES);
  const rowStart = scratch + ZERO_BLOCK_BYTES;
  const entries = listNonzeros(m, n, dz, rowStart, f0, f1);

  for (let ky = 0; ky < windowHeight; ky++) {
    for (let kx = 0; kx < windowWidth; kx++) {
      const tap = (ky * windowWidth + kx) * channels;
      let c = 0;
      for (; c + 32 <= channels; c += 32) {
        directBlock(batch, inHeight, inWidth, channels, outHeight, outWidth, strideHeight, strideWidth, padTop - ky, padLeft - kx,
          x + (<usize>c << 2), dwT + (<usize>(tap + c) << 2), ldd, rowStart, entries, zeros, true);
      }
      for (; c + 16 <= channels; c += 16) {
        directBlock(batch, inHeight, inWidth, channels, outHeight, outWidth, strideHeight, strideWidth, padTop - ky, padLeft - kx,
          x + (<usize>c << 2), dwT + (<usize>(tap + c) << 2), ldd, rowStart, entries, zeros, false);
      }
    }
  }
}

/**
 * One block of 32 (`wide`) or 16 columns of dwᵀ, at `d0` of its first row, over every patch row:
 * the block's floats of patch row (n, oh, ow) are x's at (n, oh·sh − top, ow·sw − left), offset
 * already into `x`, or the zero block where that lies on the padding.
 */
// @ts-ignore: decorator
@inline
function directBlock(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  strideHeight: i32, strideWidth: i32, top: i32, left: i32,
  x: usize, d0: usize, ldd: usize, rowStart: usize, entries: usize, zeros: usize, wide: bool,
): void {
  const pixelBytes = <usize>channels << 2;
  const rowBytes = <usize>inWidth * pixelBytes;
  let i = 0;
  for (let b = 0; b < batch; b++) {
    const image = x + <usize>b * <usize>inHeight * rowBytes;
    for (let oh = 0; oh < outHeight; oh++) {
      const ih = oh * strideHeight - top;
      const rowInside = ih >= 0 && ih < inHeight;
      const row = image + <usize>max(ih, 0) * rowBytes;
      for (let ow = 0; ow < outWidth; ow++, i++) {
        let e = entries + (<usize>load<i32>(rowStart + (<usize>i << 2)) << 3);
        const end = entries + (<usize>load<i32>(rowStart + (<usize>(i + 1) << 2)) << 3);
        if (e == end) continue;
        const iw = ow * strideWidth - left;
        const xr = rowInside && iw >= 0 && iw < inWidth ? row + <usize>iw * pixelBytes : zeros;
        const x0 = v128.load(xr), x1 = v128.load(xr, 16), x2 = v128.load(xr, 32), x3 = v128.load(xr, 48);
        if (wide) {
          const x4 = v128.load(xr, 64), x5 = v128.load(xr, 80), x6 = v128.load(xr, 96), x7 = v128.load(xr, 112);
          addToListed32(e, end, d0, ldd, x0, x1, x2, x3, x4, x5, x6, x7);
        } else {
          addToListed16(e, end, d0, ldd, x0, x1, x2, x3);
        }
      }
    }
  }
}

/** Row f of dwᵀ at d0 + f·ldd, 32 columns: += g · (x0..x7) for each listed (f, g) from e to end. */
// @ts-ignore: decorator
@inline
function addToListed32(
  e: usize, end: usize, d0: usize, ldd: usize, x0: v128, x1: v128, x2: v128, x3: v128, x4: v128, x5: v128, x6: v128, x7: v128,
): void {
  for (; e < end; e += 8) {
    const d = d0 + <usize>load<i32>(e) * ldd;
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

/** The same for 16 columns (x0..x3). */
// @ts-ignore: decorator
@inline
function addToListed16(e: usize, end: usize, d0: usize, ldd: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  for (; e < end; e += 8) {
    const d = d0 + <usize>load<i32>(e) * ldd;
    const g = v128.load32_splat(e, 4);
    v128.store(d, madd(g, x0, v128.load(d)));
    v128.store(d, madd(g, x1, v128.load(d, 16)), 16);
    v128.store(d, madd(g, x2, v128.load(d, 32)), 32);
    v128.store(d, madd(g, x3, v128.load(d, 48)), 48);
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
