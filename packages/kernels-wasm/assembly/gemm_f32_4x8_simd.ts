/**
 * gemm_f32_4x8_simd: single-precision matrix product on a 4×8 register tile.
 *
 * Shapes in this package are always written M×K×N:
 *
 *     C[M,N] = op(A)[M,K] · op(B)[K,N]        (or C += …, or + bias[N] then ReLU for `dense`)
 *
 *   op(A) is A stored [M,K], or Aᵀ with A stored [K,M] (transposeA).
 *   op(B) is B stored [K,N], or Bᵀ with B stored [N,K] (transposeB).
 *
 * So the three products of training need no transposed copy:
 *   forward       X·W    M×K×N = batch×in×out
 *   input grad    dY·Wᵀ  M×K×N = batch×out×in      (transposeB)
 *   weight grad   Xᵀ·dY  M×K×N = in×batch×out      (transposeA)
 * The transposes are absorbed by the packing below, which reads either layout.
 *
 * Micro-kernel: one call produces a 4×8 block of C, one k per step:
 *
 *                              B panel, row k (8 floats)
 *                              ┌──────────┬──────────┐
 *                              │   vb0    │   vb1    │
 *                              └──────────┴──────────┘
 *     A panel, group k           accumulators: 4 rows × 2 v128
 *     ┌──────────────┐         ┌──────────┬──────────┐
 *     │ a[k][0] ─────┼─splat─→ │   c00    │   c01    │
 *     │ a[k][1] ─────┼─splat─→ │   c10    │   c11    │
 *     │ a[k][2] ─────┼─splat─→ │   c20    │   c21    │
 *     │ a[k][3] ─────┼─splat─→ │   c30    │   c31    │
 *     └──────────────┘         └──────────┴──────────┘
 *
 *     c_r0 += splat(a[k][r]) · vb0;   c_r1 += splat(a[k][r]) · vb1
 *
 * Per k: 2 panel loads and 4 broadcast loads feed 8 multiply-adds of 4 lanes. Why 4×8 and
 * one k per loop pass, measured on V8 (x86-64, 16 xmm registers, one kept by V8):
 *   - V8 may schedule all of an iteration's loads ahead of its arithmetic, and then all that
 *     is loaded is live at once: 2 panel vectors + 4 broadcasts + 8 accumulators + 1 product
 *     = 15 registers, exactly what is free. A 5×8 tile (10 accumulators) was scheduled that
 *     way, spilled, and ran at half the speed.
 *   - Unrolling k makes V8 group each accumulator's chain across the unrolled steps, which
 *     keeps 8 panel vectors alive and spills too; the plain loop is faster.
 *   - Both operands advance through one pointer each with immediate offsets, so the loop
 *     carries two pointer bumps and one compare; with relaxed SIMD each multiply-add is one
 *     fused instruction.
 *
 * Packing (both operands, so the kernel never sees a stride or a transpose):
 *
 *   B panels: op(B) rows k0..k0+kc, columns 8p..8p+7, as kc rows of 8 floats, zero past N
 *       panel 0: b[k0][0..7]  b[k0+1][0..7] …    panel 1: b[k0][8..15] …
 *   A panels: op(A) rows 4q..4q+3, columns k0..k0+kc, as kc groups of 4 floats, zero past M
 *       panel 0: a[0..3][k0]  a[0..3][k0+1] …    panel 1: a[4..7][k0] …
 *
 * Loop nest (from the outside in):
 *     k0 in steps of KC    — a kc×8 B panel (8 KB) stays in L1 while A panels stream past
 *       pack op(B) rows k0..k0+kc
 *       i0 in steps of MC  — MC×kc of packed A (128 KB) stays in L2 across all B panels
 *         pack op(A) rows i0..i0+MC
 *         panel p          — 8 columns of C
 *           4 rows at a time: micro-kernel
 *
 * Tails, with no scalar path for the whole matrix:
 *   rows: a last A panel of fewer than 4 rows is zero padded, and the missing rows' C
 *         pointers alias the last real row; the kernel stores rows 3, 2, 1, 0 in that order,
 *         so the real row is written last;
 *   columns: the last B panel is zero padded; its tile is computed into a 4×8 scratch tile
 *         and only the first N mod 8 columns are copied to (or from) C;
 *   K: chunks of KC accumulate into C, so only the first chunk starts from zero or bias and
 *         only the last applies ReLU.
 *
 * Blocks, for threads: `gemmBlock` and `denseBlock` compute rows r0..r1 and columns c0..c1 of
 * the same product. Every element of C still takes the same multiply-adds in the same order
 * (K chunks, then k ascending, each in its own lane), whatever block it falls in, so any split
 * of C into blocks gives exactly the floats one call gives. Nothing is shared between calls but
 * the operands: packing and the tail tile live in the caller's scratch, one per thread.
 */
import { madd, min32 } from './simd';

const KC: i32 = 256;
const MC: i32 = 128;

/** How the accumulators start: from zero, from C (accumulate), or from the bias row. */
export const INIT_ZERO: i32 = 0;
export const INIT_C: i32 = 1;
export const INIT_BIAS: i32 = 2;

/** The 4×8 tile for the column tail, and the bias of that tail padded to 8, after the packing. */
const TILE_BYTES: i32 = 4 * 8 * 4;
const BIAS_TAIL_BYTES: i32 = 8 * 4;

/**
 * Bytes of scratch `gemm` and `dense` need (the caller passes a pointer to it): the packed
 * operands, then the column-tail tile and its bias.
 */
export function gemmScratchBytes(n: i32, k: i32): i32 {
  return packedBBytes(n, k) + packedABytes(k) + TILE_BYTES + BIAS_TAIL_BYTES;
}

function packedABytes(k: i32): i32 {
  return MC * min32(k, KC) * 4;
}

/** The packed B panels of one K chunk. */
function packedBBytes(n: i32, k: i32): i32 {
  return ((n + 7) >> 3) * min32(k, KC) * 32;
}

/**
 * C[M,N] = op(A)·op(B), or C += op(A)·op(B) when `accumulate`.
 * `scratch` must hold gemmScratchBytes(n, k) bytes, 16-byte aligned.
 */
export function gemm(
  m: i32, n: i32, k: i32,
  a: usize, transposeA: bool,
  b: usize, transposeB: bool,
  c: usize, accumulate: bool,
  scratch: usize,
): void {
  gemmInto(m, n, k, a, transposeA ? m : k, transposeA, b, transposeB ? k : n, transposeB, c, n, accumulate ? INIT_C : INIT_ZERO, 0, false, scratch);
}

/**
 * Rows r0..r1 and columns c0..c1 of C[M,N] = op(A)·op(B) (or C += …): what `gemm` computes
 * there, to the bit. `scratch` must hold gemmScratchBytes(c1 - c0, k) bytes.
 */
export function gemmBlock(
  m: i32, n: i32, k: i32,
  a: usize, transposeA: bool,
  b: usize, transposeB: bool,
  c: usize, accumulate: bool,
  scratch: usize,
  r0: i32, r1: i32, c0: i32, c1: i32,
): void {
  blockInto(m, n, k, a, transposeA, b, transposeB, c, accumulate ? INIT_C : INIT_ZERO, 0, false, scratch, r0, r1, c0, c1);
}

/**
 * The block r0..r1 × c0..c1 of the product: operand pointers move to the block's first row of
 * op(A) and first column of op(B); the leading dimensions stay those of the whole matrices.
 */
export function blockInto(
  m: i32, n: i32, k: i32,
  a: usize, transA: bool,
  b: usize, transB: bool,
  c: usize, init: i32, bias: usize, relu: bool,
  scratch: usize,
  r0: i32, r1: i32, c0: i32, c1: i32,
): void {
  const aBlock = a + ((transA ? <usize>r0 : <usize>r0 * k) << 2);
  const bBlock = b + ((transB ? <usize>c0 * k : <usize>c0) << 2);
  const cBlock = c + ((<usize>r0 * n + c0) << 2);
  gemmInto(
    r1 - r0, c1 - c0, k, aBlock, transA ? m : k, transA, bBlock, transB ? k : n, transB,
    cBlock, n, init, bias + (<usize>c0 << 2), relu, scratch,
  );
}

/**
 * The blocked product behind `gemm` and `dense`: C = init + op(A)·op(B), then ReLU if asked,
 * where init is zero, C itself, or bias[N] broadcast over rows. lda, ldb and ldc are the row
 * lengths (in floats) of A, B and C as stored.
 */
export function gemmInto(
  m: i32, n: i32, k: i32,
  a: usize, lda: i32, transA: bool,
  b: usize, ldb: i32, transB: bool,
  c: usize, ldcFloats: i32, init: i32, bias: usize, relu: bool,
  scratch: usize,
): void {
  if (m <= 0 || n <= 0) return;
  const ldc = <usize>ldcFloats << 2;
  if (k <= 0) {
    emptyProduct(m, n, c, ldc, init, bias, relu);
    return;
  }
  const bPack = scratch;
  const aPack = scratch + <usize>packedBBytes(n, k);
  const tile = aPack + <usize>packedABytes(k);
  const biasTail = tile + TILE_BYTES;
  for (let k0 = 0; k0 < k; k0 += KC) {
    const kc = min32(KC, k - k0);
    // Later K chunks add onto what the earlier ones stored; ReLU only after the last one.
    const chunkInit = k0 == 0 ? init : INIT_C;
    const chunkRelu = relu && k0 + kc >= k;
    packB(b, ldb, transB, n, k0, kc, bPack);
    const bPanelBytes = <usize>kc << 5;
    const aPanelBytes = <usize>kc << 4;

    for (let i0 = 0; i0 < m; i0 += MC) {
      const iEnd = min32(i0 + MC, m);
      packA(a, lda, transA, i0, iEnd, k0, kc, aPack);
      for (let j0 = 0; j0 < n; j0 += 8) {
        const nr = min32(8, n - j0);
        const bPanel = bPack + <usize>(j0 >> 3) * bPanelBytes;
        let aPanel = aPack;
        for (let i = i0; i < iEnd; i += 4) {
          const mr = min32(4, iEnd - i);
          if (nr == 8) {
            const c0 = c + <usize>i * ldc + (<usize>j0 << 2);
            const c1 = mr > 1 ? c0 + ldc : c0;
            const c2 = mr > 2 ? c1 + ldc : c1;
            const c3 = mr > 3 ? c2 + ldc : c2;
            microkernel4x8(kc, aPanel, bPanel, c0, c1, c2, c3, chunkInit, bias + (<usize>j0 << 2), chunkRelu);
          } else {
            const cTile = c + <usize>i * ldc + (<usize>j0 << 2);
            if (chunkInit == INIT_C) copyTileIn(tile, cTile, ldc, mr, nr);
            if (chunkInit == INIT_BIAS) {
              v128.store(biasTail, f32x4.splat(0));
              v128.store(biasTail, f32x4.splat(0), 16);
              memory.copy(biasTail, bias + (<usize>j0 << 2), <usize>nr << 2);
            }
            microkernel4x8(kc, aPanel, bPanel, tile, tile + 32, tile + 64, tile + 96, chunkInit, biasTail, chunkRelu);
            copyTileOut(tile, cTile, ldc, mr, nr);
          }
          aPanel += aPanelBytes;
        }
      }
    }
  }
}

function microkernel4x8(
  kc: i32,
  a: usize, b: usize,
  c0: usize, c1: usize, c2: usize, c3: usize,
  init: i32, bias: usize, relu: bool,
): void {
  let c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128;
  if (init == INIT_C) {
    c00 = v128.load(c0); c01 = v128.load(c0, 16);
    c10 = v128.load(c1); c11 = v128.load(c1, 16);
    c20 = v128.load(c2); c21 = v128.load(c2, 16);
    c30 = v128.load(c3); c31 = v128.load(c3, 16);
  } else if (init == INIT_BIAS) {
    c00 = v128.load(bias); c01 = v128.load(bias, 16);
    c10 = c00; c11 = c01; c20 = c00; c21 = c01; c30 = c00; c31 = c01;
  } else {
    c00 = f32x4.splat(0); c01 = c00; c10 = c00; c11 = c00;
    c20 = c00; c21 = c00; c30 = c00; c31 = c00;
  }

  const aEnd = a + (<usize>kc << 4);
  while (a < aEnd) {
    const vb0 = v128.load(b), vb1 = v128.load(b, 16);
    let va = v128.load32_splat(a);
    c00 = madd(va, vb0, c00); c01 = madd(va, vb1, c01);
    va = v128.load32_splat(a, 4);
    c10 = madd(va, vb0, c10); c11 = madd(va, vb1, c11);
    va = v128.load32_splat(a, 8);
    c20 = madd(va, vb0, c20); c21 = madd(va, vb1, c21);
    va = v128.load32_splat(a, 12);
    c30 = madd(va, vb0, c30); c31 = madd(va, vb1, c31);
    a += 16;
    b += 32;
  }

  if (relu) {
    // pmax(x, 0) is `x < 0 ? 0 : x`: NaN passes through, as in the reference.
    const zero = f32x4.splat(0);
    c00 = f32x4.pmax(c00, zero); c01 = f32x4.pmax(c01, zero);
    c10 = f32x4.pmax(c10, zero); c11 = f32x4.pmax(c11, zero);
    c20 = f32x4.pmax(c20, zero); c21 = f32x4.pmax(c21, zero);
    c30 = f32x4.pmax(c30, zero); c31 = f32x4.pmax(c31, zero);
  }
  // Row tails: rows past M alias the last real row and hold zeros from the A padding, so
  // they are stored first and the real row overwrites them.
  v128.store(c3, c30); v128.store(c3, c31, 16);
  v128.store(c2, c20); v128.store(c2, c21, 16);
  v128.store(c1, c10); v128.store(c1, c11, 16);
  v128.store(c0, c00); v128.store(c0, c01, 16);
}

/**
 * Copies rows i0..iEnd of op(A), columns k0..k0+kc, into 4-row panels: panel q holds rows
 * i0+4q..i0+4q+3 as kc groups of 4 floats (one per row, zero for rows past iEnd). A's rows
 * as stored are `ldaFloats` long.
 */
function packA(a: usize, ldaFloats: i32, transA: bool, i0: i32, iEnd: i32, k0: i32, kc: i32, dst: usize): void {
  const zero = f32x4.splat(0);
  const lda = <usize>ldaFloats << 2;
  for (let i = i0; i < iEnd; i += 4) {
    const mr = min32(4, iEnd - i);
    if (transA) {
      // A is [K,M]: the 4 values for one k are already adjacent.
      let src = a + ((<usize>k0 * ldaFloats + i) << 2);
      if (mr == 4) {
        for (let kk = 0; kk < kc; kk++) {
          v128.store(dst, v128.load(src));
          src += lda;
          dst += 16;
        }
      } else {
        for (let kk = 0; kk < kc; kk++) {
          v128.store(dst, zero);
          memory.copy(dst, src, <usize>mr << 2);
          src += lda;
          dst += 16;
        }
      }
    } else {
      // A is [M,K]: 4×4 transposes turn 4 row segments into 4 panel groups.
      const r0 = a + ((<usize>i * ldaFloats + k0) << 2);
      let kk = 0;
      if (mr == 4) {
        const r1 = r0 + lda, r2 = r1 + lda, r3 = r2 + lda;
        for (; kk + 4 <= kc; kk += 4) {
          const off = <usize>kk << 2;
          transposeStore4x4(dst, 16, v128.load(r0 + off), v128.load(r1 + off), v128.load(r2 + off), v128.load(r3 + off));
          dst += 64;
        }
      }
      for (; kk < kc; kk++) {
        v128.store(dst, zero);
        let src = r0 + (<usize>kk << 2);
        for (let r = 0; r < mr; r++) {
          store<f32>(dst + (<usize>r << 2), load<f32>(src));
          src += lda;
        }
        dst += 16;
      }
    }
  }
}

/**
 * Copies op(B) rows k0..k0+kc, columns 0..n, into 8-wide panels (see the header), zero padding
 * past n. B's rows as stored are `ldbFloats` long.
 */
function packB(b: usize, ldbFloats: i32, transB: bool, n: i32, k0: i32, kc: i32, pack: usize): void {
  const zero = f32x4.splat(0);
  const ldb = <usize>ldbFloats << 2;
  let dst = pack;
  for (let j0 = 0; j0 < n; j0 += 8) {
    const nr = min32(8, n - j0);
    if (!transB) {
      // B is [K,N]: each panel row is 8 consecutive floats of a row of B.
      let src = b + ((<usize>k0 * ldbFloats + j0) << 2);
      if (nr == 8) {
        for (let kk = 0; kk < kc; kk++) {
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
          src += ldb;
          dst += 32;
        }
      } else {
        for (let kk = 0; kk < kc; kk++) {
          v128.store(dst, zero);
          v128.store(dst, zero, 16);
          for (let j = 0; j < nr; j++) store<f32>(dst + (<usize>j << 2), load<f32>(src + (<usize>j << 2)));
          src += ldb;
          dst += 32;
        }
      }
    } else {
      // B is [N,K]: panel row kk gathers column k0+kk of 8 rows of B; 4×4 transposes do it
      // four k at a time.
      const r0 = b + ((<usize>j0 * ldbFloats + k0) << 2);
      let kk = 0;
      if (nr == 8) {
        const r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb;
        const r4 = r3 + ldb, r5 = r4 + ldb, r6 = r5 + ldb, r7 = r6 + ldb;
        for (; kk + 4 <= kc; kk += 4) {
          const off = <usize>kk << 2;
          transposeStore4x4(dst, 32, v128.load(r0 + off), v128.load(r1 + off), v128.load(r2 + off), v128.load(r3 + off));
          transposeStore4x4(dst + 16, 32, v128.load(r4 + off), v128.load(r5 + off), v128.load(r6 + off), v128.load(r7 + off));
          dst += 128;
        }
      }
      for (; kk < kc; kk++) {
        v128.store(dst, zero);
        v128.store(dst, zero, 16);
        let src = r0 + (<usize>kk << 2);
        for (let j = 0; j < nr; j++) {
          store<f32>(dst + (<usize>j << 2), load<f32>(src));
          src += ldb;
        }
        dst += 32;
      }
    }
  }
}

/**
 * x0..x3 hold 4 consecutive values of 4 different lines; stores them transposed: lane j of
 * x_r goes to position r of the group at dst + j·stride.
 */
// @ts-ignore: decorator
@inline
function transposeStore4x4(dst: usize, stride: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5); // x0[0] x1[0] x0[1] x1[1]
  const t1 = f32x4.shuffle(x2, x3, 0, 4, 1, 5); // x2[0] x3[0] x2[1] x3[1]
  const t2 = f32x4.shuffle(x0, x1, 2, 6, 3, 7); // x0[2] x1[2] x0[3] x1[3]
  const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7); // x2[2] x3[2] x2[3] x3[3]
  v128.store(dst, f32x4.shuffle(t0, t1, 0, 1, 4, 5));
  v128.store(dst + stride, f32x4.shuffle(t0, t1, 2, 3, 6, 7));
  v128.store(dst + 2 * stride, f32x4.shuffle(t2, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * stride, f32x4.shuffle(t2, t3, 2, 3, 6, 7));
}

function copyTileIn(tile: usize, c: usize, ldc: usize, mr: i32, nr: i32): void {
  for (let r = 0; r < mr; r++) {
    memory.copy(tile + (<usize>r << 5), c + <usize>r * ldc, <usize>nr << 2);
  }
}

function copyTileOut(tile: usize, c: usize, ldc: usize, mr: i32, nr: i32): void {
  for (let r = 0; r < mr; r++) {
    memory.copy(c + <usize>r * ldc, tile + (<usize>r << 5), <usize>nr << 2);
  }
}

/** K = 0: the product is empty, so C stays, or becomes the bias (then ReLU), or zero. */
function emptyProduct(m: i32, n: i32, c: usize, ldc: usize, init: i32, bias: usize, relu: bool): void {
  for (let i = 0; i < m; i++) {
    const row = c + <usize>i * ldc;
    for (let j = 0; j < n; j++) {
      const p = row + (<usize>j << 2);
      let v: f32 = init == INIT_C ? load<f32>(p) : init == INIT_BIAS ? load<f32>(bias + (<usize>j << 2)) : 0;
      if (relu && v < 0) v = 0;
      store<f32>(p, v);
    }
  }
}
