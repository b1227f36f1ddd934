/**
 * dense_sparse_input: the first layer's two big products, skipping the input's exact zeros.
 *
 * Half the pixels of a Fashion-MNIST image are exactly 0, so half the multiply-adds of
 *   forward       out[m,n] = act(x[m,k]·w[k,n] + bias[n])
 *   weight grad   dw[k,n] (+)= xᵀ·dz,  x stored [m,k], dz [m,n]
 * multiply by zero. These kernels list the nonzero entries first, then multiply-add only those:
 *
 *   forward, per row i of x and chunk of 64 k (64 rows of w, 32 KB at n = 128, stay in L1):
 *     list (kk, x[i,kk]) for every x[i,kk] ≠ 0, kk ascending
 *     per 24 columns j of out: 6 v128 accumulators start from bias[j..j+24) (first chunk) or
 *       out[i, j..j+24), take  acc += splat(x[i,kk]) · w[kk, j..j+24)  for each listed kk,
 *       then ReLU (last chunk) and one store.
 *   weight grad, per column kk of x (one row of dw):
 *     list (i, x[i,kk]) for every x[i,kk] ≠ 0, i ascending
 *     per 24 columns j: accumulators start from dw[kk, j..) (accumulate) or 0 and take
 *       acc += splat(x[i,kk]) · dz[i, j..j+24)      for each listed i.
 *
 * Tile: 1 row × 24 columns, chosen by measurement (V8, x86-64). Rows of x need not agree on
 * where their zeros are (a 2-row tile would have to take the union of both rows' nonzeros:
 * measured on the training set, only 34% of k are zero in both of 2 images, 21% in all of 4).
 * But one row reuses nothing it loads: each listed k costs 6 loads of w, a broadcast and a
 * list entry for 6 vector multiply-adds, where the dense 4×8 tile loads 6 values for 8. The
 * loop is bound by loads, so skipping half the work gains less than half the time: measured
 * 7–10% on the forward and about 20% on the weight gradient of a batch of 32. A 32-column
 * tile (8 accumulators) needs 17 xmm registers once V8 hoists the loads, spills, and is slower
 * than the dense kernel. Columns past the 24s go 16, then 4 at a time, and the last n mod 4
 * through a copy of those columns padded to 4, so every column uses the same vector
 * multiply-add as the dense kernel.
 *
 * Same results as `dense` and `gemm` (transposeA): each output is the same multiply-adds in
 * the same ascending order (chunks store and reload exactly, as the dense kernel's K chunks
 * do), minus terms 0·w. Adding such a term (±0) leaves any sum unchanged, except that it can
 * turn a running -0 into +0; so the two paths differ only where every remaining term and the
 * start value are -0 (they compare equal even then). One real difference: 0·Inf and 0·NaN are
 * NaN in the dense product and are skipped here; an Inf or NaN weight or gradient still
 * spreads through every row whose input there is nonzero.
 */
import { madd } from './simd';

/** K chunk of the forward: a 64-row slice of w (32 KB at n = 128) stays in L1 across rows. */
const KCS: i32 = 64;
/** Row block of the forward: its slice of out (128 KB at n = 128) stays in L2 across the K chunks. */
const MBS: i32 = 256;

/** Bytes of scratch the sparse kernels need: the list and the padded column tail. */
export function sparseInputScratchBytes(n: i32, k: i32, m: i32): i32 {
  const len = m > k ? m : k;
  return len * 12 + len * 16 + 64;
}

/** Number of elements of x[0..n) equal to zero (+0 or -0). */
export function countZeros(x: usize, n: i32): i32 {
  const zero = f32x4.splat(0);
  let counts = i32x4.splat(0);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    // eq gives -1 per zero lane.
    counts = i32x4.sub(counts, f32x4.eq(v128.load(x + (<usize>i << 2)), zero));
  }
  let total = i32x4.extract_lane(counts, 0) + i32x4.extract_lane(counts, 1) +
    i32x4.extract_lane(counts, 2) + i32x4.extract_lane(counts, 3);
  for (; i < n; i++) total += i32(load<f32>(x + (<usize>i << 2)) == 0);
  return total;
}

/** out[m,n] = act(x[m,k]·w[k,n] + bias[n]), skipping x's zeros. */
export function denseSparseInput(
  m: i32, n: i32, k: i32,
  x: usize, w: usize, bias: usize, out: usize, relu: bool,
  scratch: usize,
): void {
  if (m <= 0 || n <= 0) return;
  layout(scratch, k);
  const n4 = n & ~3;
  if (n4 < n) packColumnTail(w, k, n, n4, tailColumns);
  for (let i0 = 0; i0 < m; i0 += MBS) {
    addFeatures(n, k, x, w, bias, out, relu, i0, m - i0 < MBS ? m : i0 + MBS, 0, k);
  }
}

/**
 * Rows i0..i1 of out take the terms of features k0..k1, a chunk of KCS features at a time (rows
 * inner, so the chunk's rows of w stay in L1): the chunk at feature 0 starts from the bias, the
 * others add onto out, and the one that ends at k applies the ReLU. Runs once even for no
 * features, so that a sum with none is still started and finished.
 */
function addFeatures(
  n: i32, k: i32, x: usize, w: usize, bias: usize, out: usize, relu: bool, i0: i32, i1: i32, k0: i32, k1: i32,
): void {
  const ldw = <usize>n << 2;
  let kc0 = k0;
  do {
    const kc = k1 - kc0 < KCS ? k1 - kc0 : KCS;
    const first = kc0 == 0;
    const lastRelu = relu && kc0 + kc >= k;
    for (let i = i0; i < i1; i++) {
      const entries = listNonzerosContiguous(x + ((<usize>i * k + kc0) << 2), kc, ldw, (n & 3) != 0);
      // Later chunks add onto what the earlier ones stored: a chunk of zeros changes nothing.
      if (entries == listEntries && !first && !lastRelu) continue;
      const outRow = out + ((<usize>i * n) << 2);
      rowTiles(n, entries, w + <usize>kc0 * ldw, first ? bias : outRow, outRow, lastRelu, tailColumns + (<usize>kc0 << 4));
    }
    kc0 += kc;
  } while (kc0 < k1);
}

/**
 * Rows of x per step of the slices' pipeline (see `denseSparseInputSlice`). A later slice waits
 * for the first block at the start and the earlier one for the last block at the end, so smaller
 * blocks wait less; fewer rows also reuse each chunk of w less from L1. Measured on the default
 * model's training forward on two threads: the caller waited about 18.5 µs a call with 2 rows
 * against 25–29 µs with 4, and its own share took as long.
 */
const SLICE_ROWS: i32 = 2;

/** Bytes of the flags `denseSparseInputSlice` hands rows on with, for a batch of m rows: one cache line per block of rows. */
export function sliceFlagsBytes(m: i32): i32 {
  return ((m + SLICE_ROWS - 1) / SLICE_ROWS) * 64;
}

/**
 * Features k0..k1 of `denseSparseInput`'s sums, for every row of x, to the bit: slice 0 starts
 * each row's sums from the bias, a later slice from what the slice before it stored in out, and
 * the last slice (k1 = k) applies the ReLU. Each output element still takes the same
 * multiply-adds in the same ascending order as in one call (a stored float reloads exactly), so
 * threads can split the forward of a training batch by rows of w: each thread then reads only
 * the rows of w it wrote in the last optimizer step, which are in its own core's cache. Split
 * any other way, every thread fetched the other's part of w from the other core each step,
 * and on a two-core machine that cost more than the second core saved.
 *
 * Slices run at once as a pipeline over blocks of SLICE_ROWS rows: slice s works on a block once
 * slice s - 1 has set the block's flag to stamp + s, and then sets it to stamp + s + 1. `stamp`
 * must change by more than the number of slices from one call to the next (the flags are not
 * cleared). With one thread, running the slices in order needs no waiting.
 */
export function denseSparseInputSlice(
  m: i32, n: i32, k: i32,
  x: usize, w: usize, bias: usize, out: usize, relu: bool,
  scratch: usize,
  k0: i32, k1: i32, slice: i32, flags: usize, stamp: i32,
): void {
  // Even a slice with nothing to compute hands every block on, or the next would wait forever.
  if (k1 < k0) k1 = k0;
  if (n <= 0) k1 = k0 = k;
  layout(scratch, k);
  const n4 = n & ~3;
  if (n4 < n) packColumnTail(w + <usize>k0 * (<usize>n << 2), k1 - k0, n, n4, tailColumns + (<usize>k0 << 4));
  for (let i0 = 0, block = 0; i0 < m; i0 += SLICE_ROWS, block++) {
    const flag = flags + (<usize>block << 6);
    if (slice > 0) awaitFlag(flag, stamp + slice);
    if (n > 0) addFeatures(n, k, x, w, bias, out, relu, i0, m - i0 < SLICE_ROWS ? m : i0 + SLICE_ROWS, k0, k1);
    setFlag(flag, stamp + slice + 1);
  }
}

/** Sets every block's flag of a call to `value`: frees later slices when a slice failed. */
export function releaseSliceFlags(flags: usize, m: i32, value: i32): void {
  for (let block = 0; block * SLICE_ROWS < m; block++) setFlag(flags + (<usize>block << 6), value);
}

// @ts-ignore: decorator
@inline
function awaitFlag(flag: usize, value: i32): void {
  if (ASC_FEATURE_THREADS) {
    while (atomic.load<i32>(flag) != value) {
      // spin: the slice before this one finishes a block within microseconds
    }
  }
}

// @ts-ignore: decorator
@inline
function setFlag(flag: usize, value: i32): void {
  if (ASC_FEATURE_THREADS) atomic.store<i32>(flag, value);
  else store<i32>(flag, value);
}

/**
 * dw[k,n] = xᵀ·dz, or dw += xᵀ·dz when `accumulate`, with x stored [m,k] and dz [m,n]
 * (the product gemm(k, n, m, x, transposeA, dz, …) computes), skipping x's zeros.
 */
export function weightGradSparseInput(
  k: i32, n: i32, m: i32,
  x: usize, dz: usize, dw: usize, accumulate: bool,
  scratch: usize,
): void {
  weightGradSparseInputRows(k, n, m, x, dz, dw, accumulate, scratch, 0, k);
}

/**
 * Rows k0..k1 of `weightGradSparseInput`'s dw (one row per input feature), to the bit: each row
 * is computed on its own, so threads can share the rows.
 */
export function weightGradSparseInputRows(
  k: i32, n: i32, m: i32,
  x: usize, dz: usize, dw: usize, accumulate: bool,
  scratch: usize,
  k0: i32, k1: i32,
): void {
  if (k1 <= k0 || n <= 0) return;
  layout(scratch, m);
  const ldz = <usize>n << 2;
  const n4 = n & ~3;
  if (n4 < n) packColumnTail(dz, m, n, n4, tailColumns);
  for (let kk = k0; kk < k1; kk++) {
    const entries = listNonzeros(x + (<usize>kk << 2), <usize>k << 2, m, ldz);
    const row = dw + ((<usize>kk * n) << 2);
    if (entries == listEntries && accumulate) continue;
    rowTiles(n, entries, dz, accumulate ? row : 0, row, false, tailColumns);
  }
}

/**
 * The scratch, for lists of up to `len` entries: the padded column tail (len × 4 floats), its
 * start values (4 floats), the list (len × [byte offset of the row of b, value]) and the
 * positions (len i32, to address the padded tail).
 */
let tailColumns: usize = 0;
let tailStart: usize = 0;
let listEntries: usize = 0;
let listPositions: usize = 0;

function layout(scratch: usize, len: i32): void {
  tailColumns = (scratch + 15) & ~15;
  tailStart = tailColumns + (<usize>len << 4);
  listEntries = tailStart + 16;
  listPositions = listEntries + (<usize>len << 3);
}

/**
 * Lists the nonzero src[t·stride], t < len, ascending: entry = (t·ldb, value), position t.
 * Returns the end of the list.
 */
function listNonzeros(src: usize, stride: usize, len: i32, ldb: usize): usize {
  return appendNonzeros(listEntries, src, stride, 0, len, ldb);
}

/**
 * Appends the nonzero src[t·stride], t0 ≤ t < len, to the list that ends at `entry`.
 * Branch-free: every entry is written, and the end moves on only past a nonzero.
 */
function appendNonzeros(entry: usize, src: usize, stride: usize, t0: i32, len: i32, ldb: usize): usize {
  // An entry takes 8 bytes and a position 4.
  let position = listPositions + ((entry - listEntries) >> 1);
  let offset = <usize>t0 * ldb;
  src += <usize>t0 * stride;
  for (let t = t0; t < len; t++) {
    const v = load<f32>(src);
    store<u32>(entry, offset);
    store<f32>(entry, v, 4);
    store<i32>(position, t);
    const nonzero = <usize>(v != 0);
    entry += nonzero << 3;
    position += nonzero << 2;
    src += stride;
    offset += ldb;
  }
  return entry;
}

/** i8x16.swizzle indices that move the 4-byte lanes a 4-bit mask picks to the front, in order (16 bytes per mask). */
const PACK_LANES: usize = memory.data<u8>([
  128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
  0, 1, 2, 3, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
  4, 5, 6, 7, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
  0, 1, 2, 3, 4, 5, 6, 7, 128, 128, 128, 128, 128, 128, 128, 128,
  8, 9, 10, 11, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
  0, 1, 2, 3, 8, 9, 10, 11, 128, 128, 128, 128, 128, 128, 128, 128,
  4, 5, 6, 7, 8, 9, 10, 11, 128, 128, 128, 128, 128, 128, 128, 128,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 128, 128, 128, 128,
  12, 13, 14, 15, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
  0, 1, 2, 3, 12, 13, 14, 15, 128, 128, 128, 128, 128, 128, 128, 128,
  4, 5, 6, 7, 12, 13, 14, 15, 128, 128, 128, 128, 128, 128, 128, 128,
  0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 128, 128, 128, 128,
  8, 9, 10, 11, 12, 13, 14, 15, 128, 128, 128, 128, 128, 128, 128, 128,
  0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 128, 128, 128, 128,
  4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 128, 128, 128, 128,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
]);

/**
 * `listNonzeros` for floats side by side (stride 4), four at a time and without a branch: the
 * nonzero lanes' values, offsets and positions are packed to the front with one swizzle each,
 * stored as whole vectors, and the end moves on by their count. A store may write up to three
 * entries past the end; the next store or the end pointer makes them irrelevant, and they stay
 * within the list's room (the last full group of four starts at len - 4 or before).
 * Measured on the forward of the 10,000 test images, one thread: listing one value at a time
 * took 9 to 18 ms (of 37 to 47), this way 6.3 to 6.5 ms (of 33). Listing the pixels' bytes
 * instead (each group of 4 turned into the floats normalizeBytes makes, so that inference could
 * skip that pass) took 6.8–7.0 ms against 5.4–5.8 ms from the floats, and the whole forward
 * 55–58 ms against 52.5–54 ms: the packing, not the reading, is what listing costs.
 * Positions are listed only when `positionsToo` (the padded column tail reads them, and a
 * tail exists only when n mod 4 ≠ 0): without them, the forward of the 10,000 test images at
 * n = 128 took 31.9–32.1 ms against 32.6–33.3 ms (one thread, AMD Zen 5, the two builds in
 * turns in one process).
 */
function listNonzerosContiguous(src: usize, len: i32, ldb: usize, positionsToo: bool): usize {
  return positionsToo ? listContiguous(src, len, ldb, true) : listContiguous(src, len, ldb, false);
}

// @ts-ignore: decorator
@inline
function listContiguous(src: usize, len: i32, ldb: usize, positionsToo: bool): usize {
  let entry = listEntries;
  let position = listPositions;
  const zero = f32x4.splat(0);
  let offsets = i32x4(0, <i32>ldb, <i32>(ldb * 2), <i32>(ldb * 3));
  const offsetStep = i32x4.splat(<i32>(ldb * 4));
  let positions = i32x4(0, 1, 2, 3);
  const positionStep = i32x4.splat(4);
  const len4 = len & ~3;
  let t = 0;
  for (; t < len4; t += 4) {
    const values = v128.load(src + (<usize>t << 2));
    // ne is false for +0 and -0 and true for NaN, as `v != 0` is.
    const mask = i32x4.bitmask(f32x4.ne(values, zero));
    const pack = v128.load(PACK_LANES + (<usize>mask << 4));
    const packedValues = v128.swizzle(values, pack);
    const packedOffsets = v128.swizzle(offsets, pack);
    // Entries are (offset, value) pairs.
    v128.store(entry, v128.shuffle<i32>(packedOffsets, packedValues, 0, 4, 1, 5));
    v128.store(entry, v128.shuffle<i32>(packedOffsets, packedValues, 2, 6, 3, 7), 16);
    const count = <usize>popcnt<i32>(mask);
    entry += count << 3;
    offsets = i32x4.add(offsets, offsetStep);
    if (positionsToo) {
      v128.store(position, v128.swizzle(positions, pack));
      position += count << 2;
      positions = i32x4.add(positions, positionStep);
    }
  }
  return appendNonzeros(entry, src, 4, t, len, ldb);
}

/**
 * One output row c[0..n) = start + Σ_entries value·b[row, 0..n), then ReLU; start is the n
 * floats at `start` (the bias, or c itself), or zero when `start` is 0. `tail` holds the
 * columns past n mod 4 of b, padded to 4.
 */
function rowTiles(n: i32, end: usize, b: usize, start: usize, c: usize, relu: bool, tail: usize): void {
  const n4 = n & ~3;
  let j = 0;
  for (; j + 24 <= n; j += 24) {
    const off = <usize>j << 2;
    tile24(end, b + off, start != 0 ? start + off : 0, c + off, relu);
  }
  for (; j + 16 <= n; j += 16) {
    const off = <usize>j << 2;
    tile16(end, b + off, start != 0 ? start + off : 0, c + off, relu);
  }
  // A tile with fewer than 6 accumulators waits on its adds' latency: 8 columns in one pass
  // (two chains) take about the time 4 take, so n = 128's last 8 go as one tile, not two.
  for (; j + 8 <= n; j += 8) {
    const off = <usize>j << 2;
    tile8(end, b + off, start != 0 ? start + off : 0, c + off, relu);
  }
  for (; j < n4; j += 4) {
    const off = <usize>j << 2;
    tile4(end, b + off, start != 0 ? v128.load(start + off) : f32x4.splat(0), c + off, relu);
  }
  if (n4 < n) {
    const off = <usize>n4 << 2;
    v128.store(tailStart, f32x4.splat(0));
    if (start != 0) memory.copy(tailStart, start + off, <usize>(n - n4) << 2);
    let acc = v128.load(tailStart);
    for (let e = listEntries, p = listPositions; e < end; e += 8, p += 4) {
      acc = madd(v128.load32_splat(e, 4), v128.load(tail + (<usize>load<i32>(p) << 4)), acc);
    }
    if (relu) acc = f32x4.pmax(acc, f32x4.splat(0));
    store<f32>(c + off, f32x4.extract_lane(acc, 0));
    if (n - n4 > 1) store<f32>(c + off, f32x4.extract_lane(acc, 1), 4);
    if (n - n4 > 2) store<f32>(c + off, f32x4.extract_lane(acc, 2), 8);
  }
}

// The tiles: 6, 4 or 1 accumulators for 24, 16 or 4 columns. Small functions of their own, so
// V8 keeps the loop's few pointers in registers.

function tile24(end: usize, b: usize, start: usize, c: usize, relu: bool): void {
  let c0: v128, c1: v128, c2: v128, c3: v128, c4: v128, c5: v128;
  if (start != 0) {
    c0 = v128.load(start); c1 = v128.load(start, 16); c2 = v128.load(start, 32); c3 = v128.load(start, 48);
    c4 = v128.load(start, 64); c5 = v128.load(start, 80);
  } else {
    c0 = f32x4.splat(0); c1 = c0; c2 = c0; c3 = c0; c4 = c0; c5 = c0;
  }
  for (let e = listEntries; e < end; e += 8) {
    const a = v128.load32_splat(e, 4);
    const p = b + <usize>load<u32>(e);
    c0 = madd(a, v128.load(p), c0);
    c1 = madd(a, v128.load(p, 16), c1);
    c2 = madd(a, v128.load(p, 32), c2);
    c3 = madd(a, v128.load(p, 48), c3);
    c4 = madd(a, v128.load(p, 64), c4);
    c5 = madd(a, v128.load(p, 80), c5);
  }
  if (relu) {
    // pmax(x, 0) is `x < 0 ? 0 : x`, as in the dense kernel: NaN passes through.
    const zero = f32x4.splat(0);
    c0 = f32x4.pmax(c0, zero); c1 = f32x4.pmax(c1, zero); c2 = f32x4.pmax(c2, zero); c3 = f32x4.pmax(c3, zero);
    c4 = f32x4.pmax(c4, zero); c5 = f32x4.pmax(c5, zero);
  }
  v128.store(c, c0); v128.store(c, c1, 16); v128.store(c, c2, 32); v128.store(c, c3, 48);
  v128.store(c, c4, 64); v128.store(c, c5, 80);
}

function tile16(end: usize, b: usize, start: usize, c: usize, relu: bool): void {
  let c0: v128, c1: v128, c2: v128, c3: v128;
  if (start != 0) {
    c0 = v128.load(start); c1 = v128.load(start, 16); c2 = v128.load(start, 32); c3 = v128.load(start, 48);
  } else {
    c0 = f32x4.splat(0); c1 = c0; c2 = c0; c3 = c0;
  }
  for (let e = listEntries; e < end; e += 8) {
    const a = v128.load32_splat(e, 4);
    const p = b + <usize>load<u32>(e);
    c0 = madd(a, v128.load(p), c0);
    c1 = madd(a, v128.load(p, 16), c1);
    c2 = madd(a, v128.load(p, 32), c2);
    c3 = madd(a, v128.load(p, 48), c3);
  }
  if (relu) {
    const zero = f32x4.splat(0);
    c0 = f32x4.pmax(c0, zero); c1 = f32x4.pmax(c1, zero); c2 = f32x4.pmax(c2, zero); c3 = f32x4.pmax(c3, zero);
  }
  v128.store(c, c0); v128.store(c, c1, 16); v128.store(c, c2, 32); v128.store(c, c3, 48);
}

function tile8(end: usize, b: usize, start: usize, c: usize, relu: bool): void {
  let c0: v128, c1: v128;
  if (start != 0) {
    c0 = v128.load(start); c1 = v128.load(start, 16);
  } else {
    c0 = f32x4.splat(0); c1 = c0;
  }
  for (let e = listEntries; e < end; e += 8) {
    const a = v128.load32_splat(e, 4);
    const p = b + <usize>load<u32>(e);
    c0 = madd(a, v128.load(p), c0);
    c1 = madd(a, v128.load(p, 16), c1);
  }
  if (relu) {
    const zero = f32x4.splat(0);
    c0 = f32x4.pmax(c0, zero); c1 = f32x4.pmax(c1, zero);
  }
  v128.store(c, c0); v128.store(c, c1, 16);
}

function tile4(end: usize, b: usize, start: v128, c: usize, relu: bool): void {
  let acc = start;
  for (let e = listEntries; e < end; e += 8) {
    acc = madd(v128.load32_splat(e, 4), v128.load(b + <usize>load<u32>(e)), acc);
  }
  if (relu) acc = f32x4.pmax(acc, f32x4.splat(0));
  v128.store(c, acc);
}

/** Copies columns from..n of src[rows, n] into dst[rows, 4], zero padded. */
function packColumnTail(src: usize, rows: i32, n: i32, from: i32, dst: usize): void {
  const zero = f32x4.splat(0);
  const bytes = <usize>(n - from) << 2;
  let p = src + (<usize>from << 2);
  const ld = <usize>n << 2;
  for (let r = 0; r < rows; r++) {
    v128.store(dst, zero);
    memory.copy(dst, p, bytes);
    p += ld;
    dst += 16;
  }
}
