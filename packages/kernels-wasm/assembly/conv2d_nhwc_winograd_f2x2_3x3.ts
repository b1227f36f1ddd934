/**
 * conv2d_nhwc_winograd_f2x2_3x3: a 3×3, stride-1 convolution (and its two gradients) with
 * Winograd's minimal filtering F(2×2, 3×3), NHWC images, four channels per v128.
 *
 * A 2×2 block of outputs reads a 4×4 tile of the input. Computed directly it takes 2·2·3·3 = 36
 * multiplications per channel pair; Winograd's transforms turn it into 16 (Lavin and Gray, 2016):
 *
 *     Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A          d: 4×4 input tile, g: 3×3 filter, Y: 2×2 outputs
 *
 *          ⎡1  0 −1  0⎤        ⎡1   0   0⎤        ⎡1  1  1  0⎤
 *     Bᵀ = ⎢0  1  1  0⎥    G = ⎢½   ½   ½⎥   Aᵀ = ⎣0  1 −1 −1⎦
 *          ⎢0 −1  1  0⎥        ⎢½  −½   ½⎥
 *          ⎣0  1  0 −1⎦        ⎣0   0   1⎦
 *
 * Summed over input channels, the ⊙ becomes 16 matrix products, one per position of the 4×4
 * transformed tile, over all tiles T = batch·⌈OH/2⌉·⌈OW/2⌉ at once; they run in the GEMM kernel:
 *
 *   forward       V[p] = Bᵀ d B   [16][T][C]   (winogradInputTransform)
 *                 U[p] = G g Gᵀ   [16][C][F]   (winogradFilterTransform)
 *                 M[p] = V[p]·U[p]               [T, F]   (gemm, 16 times)
 *                 out  = Aᵀ M A + bias, ReLU     (winogradOutputTransform)
 *
 * The gradients are the same algorithm transposed: y is linear in g and in d, so
 * Σ dy·y = ⟨A dy Aᵀ, U ⊙ V⟩ gives, with W[p] = A dy Aᵀ [16][T][F] (winogradGradTransform),
 *
 *   filter grad   dg = Gᵀ (Σ_tiles V ⊙ W) G:     M[p] = V[p]ᵀ·W[p]  [C, F]   (gemm, transposeA)
 *                                                dw (+)= Gᵀ M G              (winogradFilterGradTransform)
 *   input grad    dd = B (U ⊙ W) Bᵀ:             X[p] = W[p]·U[p]ᵀ  [T, C]   (gemm, transposeB)
 *                                                dx += B X Bᵀ, tiles added where they overlap
 *                                                                          (winogradInputGradTransform)
 *
 * For the tutorial CNN's second layer (13×13×32 → 11×11×64, batch 32) the products shrink from
 * 3872×288×64 to 16 × 1152×32×64 multiply-adds: 1.9 times fewer (the last, half-used row and
 * column of tiles cost the rest of the 2.25). Input positions outside the image read as 0 and
 * receive nothing; outputs past OH or OW are not stored, and their gradients read as 0.
 *
 * Geometry arguments, in this order: batch, inHeight, inWidth, channels, outHeight, outWidth,
 * padTop, padLeft (the window is 3×3 and the stride 1).
 *
 * Threads: the input, output and gradient transforms have `…Images` entry points that do the
 * tiles of images n0..n1 only (tiles are numbered image by image), to the bit; threads share
 * the images, and the 16 products are shared whole between threads (engine's wasm-conv.ts).
 */

const HALF = f32x4.splat(0.5);
const ZERO = f32x4.splat(0);

/** n ≤ 4 floats from p, zero beyond them. */
// @ts-ignore: decorator
@inline
function ld(p: usize, n: i32): v128 {
  if (n >= 4) return v128.load(p);
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/** The first n ≤ 4 lanes of v to p. */
// @ts-ignore: decorator
@inline
function st(p: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(p, v);
    return;
  }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (n > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/**
 * Each transform works through one 4×4 tile of v128 at a time, kept in `tile`: 256 bytes of the
 * caller's scratch, 16-byte aligned (static memory would be shared by threads).
 */
// @ts-ignore: decorator
@inline
function tileAt(tile: usize, i: i32, j: i32): usize {
  return tile + (<usize>(i * 4 + j) << 4);
}

/** U[p][c][f] = (G g Gᵀ)[p] for every input channel c and filter f; g is [3][3][C][F]. */
export function winogradFilterTransform(channels: i32, filters: i32, g: usize, u: usize, tile: usize): void {
  const tap = <usize>channels * filters << 2; // bytes between g[a][b] and the next tap
  const plane = tap; // U[p] is [C][F] too
  for (let c = 0; c < channels; c++) {
    for (let f = 0; f < filters; f += 4) {
      const n = min<i32>(4, filters - f);
      const at = ((<usize>c * filters + f) << 2);
      // Rows: G·g (4×3).
      for (let b = 0; b < 3; b++) {
        const g0 = ld(g + at + <usize>(b) * tap, n), g1 = ld(g + at + <usize>(3 + b) * tap, n), g2 = ld(g + at + <usize>(6 + b) * tap, n);
        const s = f32x4.add(g0, g2);
        v128.store(tileAt(tile, 0, b), g0);
        v128.store(tileAt(tile, 1, b), f32x4.mul(HALF, f32x4.add(s, g1)));
        v128.store(tileAt(tile, 2, b), f32x4.mul(HALF, f32x4.sub(s, g1)));
        v128.store(tileAt(tile, 3, b), g2);
      }
      // Columns: (G·g)·Gᵀ (4×4).
      for (let i = 0; i < 4; i++) {
        const r0 = v128.load(tileAt(tile, i, 0)), r1 = v128.load(tileAt(tile, i, 1)), r2 = v128.load(tileAt(tile, i, 2));
        const s = f32x4.add(r0, r2);
        const out = u + at + <usize>(i * 4) * plane;
        st(out, r0, n);
        st(out + plane, f32x4.mul(HALF, f32x4.add(s, r1)), n);
        st(out + 2 * plane, f32x4.mul(HALF, f32x4.sub(s, r1)), n);
        st(out + 3 * plane, r2, n);
      }
    }
  }
}

/** V[p][t][c] = (Bᵀ d B)[p] for every 4×4 input tile d (zero outside the image). */
export function winogradInputTransform(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32, padTop: i32, padLeft: i32,
  x: usize, v: usize, tile: usize,
): void {
  winogradInputTransformImages(batch, inHeight, inWidth, channels, outHeight, outWidth, padTop, padLeft, x, v, tile, 0, batch);
}

/** The tiles of images n0..n1 of `winogradInputTransform`'s V, to the bit. */
export function winogradInputTransformImages(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32, padTop: i32, padLeft: i32,
  x: usize, v: usize, tile: usize, n0: i32, n1: i32,
): void {
  const tilesH = (outHeight + 1) >> 1, tilesW = (outWidth + 1) >> 1;
  const tiles = batch * tilesH * tilesW;
  const plane = <usize>tiles * channels << 2;
  let t = n0 * tilesH * tilesW;
  for (let n = n0; n < n1; n++) {
    for (let ty = 0; ty < tilesH; ty++) {
      const y0 = 2 * ty - padTop;
      for (let tx = 0; tx < tilesW; tx++) {
        const x0 = 2 * tx - padLeft;
        const inside = y0 >= 0 && x0 >= 0 && y0 + 4 <= inHeight && x0 + 4 <= inWidth;
        for (let c = 0; c < channels; c += 4) {
          const cn = min<i32>(4, channels - c);
          // Rows: Bᵀ·d, one column j at a time.
          for (let j = 0; j < 4; j++) {
            const xx = x0 + j;
            let d0 = ZERO, d1 = ZERO, d2 = ZERO, d3 = ZERO;
            if (inside || (xx >= 0 && xx < inWidth)) {
              const column = x + ((<usize>(n * inHeight) * inWidth + xx) * channels + c << 2);
              const row = <usize>inWidth * channels << 2;
              if (inside || (y0 >= 0 && y0 < inHeight)) d0 = ld(column + <usize>y0 * row, cn);
              if (inside || (y0 + 1 >= 0 && y0 + 1 < inHeight)) d1 = ld(column + <usize>(y0 + 1) * row, cn);
              if (inside || (y0 + 2 >= 0 && y0 + 2 < inHeight)) d2 = ld(column + <usize>(y0 + 2) * row, cn);
              if (inside || (y0 + 3 >= 0 && y0 + 3 < inHeight)) d3 = ld(column + <usize>(y0 + 3) * row, cn);
            }
            v128.store(tileAt(tile, 0, j), f32x4.sub(d0, d2));
            v128.store(tileAt(tile, 1, j), f32x4.add(d1, d2));
            v128.store(tileAt(tile, 2, j), f32x4.sub(d2, d1));
            v128.store(tileAt(tile, 3, j), f32x4.sub(d1, d3));
          }
          // Columns: (Bᵀ·d)·B.
          const at = v + ((<usize>t * channels + c) << 2);
          for (let i = 0; i < 4; i++) {
            const r0 = v128.load(tileAt(tile, i, 0)), r1 = v128.load(tileAt(tile, i, 1)), r2 = v128.load(tileAt(tile, i, 2)), r3 = v128.load(tileAt(tile, i, 3));
            const out = at + <usize>(i * 4) * plane;
            st(out, f32x4.sub(r0, r2), cn);
            st(out + plane, f32x4.add(r1, r2), cn);
            st(out + 2 * plane, f32x4.sub(r2, r1), cn);
            st(out + 3 * plane, f32x4.sub(r1, r3), cn);
          }
        }
        t++;
      }
    }
  }
}

/** out[n, 2ty+i, 2tx+j, f] = act((Aᵀ M A)[i][j] + bias[f]) from M[p][t][f], inside the output only. */
export function winogradOutputTransform(
  batch: i32, outHeight: i32, outWidth: i32, filters: i32,
  m: usize, bias: usize, out: usize, relu: bool, tile: usize,
): void {
  winogradOutputTransformImages(batch, outHeight, outWidth, filters, m, bias, out, relu, tile, 0, batch);
}

/** Images n0..n1 of `winogradOutputTransform`'s out, to the bit. */
export function winogradOutputTransformImages(
  batch: i32, outHeight: i32, outWidth: i32, filters: i32,
  m: usize, bias: usize, out: usize, relu: bool, tile: usize, n0: i32, n1: i32,
): void {
  const tilesH = (outHeight + 1) >> 1, tilesW = (outWidth + 1) >> 1;
  const tiles = batch * tilesH * tilesW;
  const plane = <usize>tiles * filters << 2;
  let t = n0 * tilesH * tilesW;
  for (let n = n0; n < n1; n++) {
    for (let ty = 0; ty < tilesH; ty++) {
      for (let tx = 0; tx < tilesW; tx++) {
        const rows = min<i32>(2, outHeight - 2 * ty), cols = min<i32>(2, outWidth - 2 * tx);
        for (let f = 0; f < filters; f += 4) {
          const fn = min<i32>(4, filters - f);
          const at = m + ((<usize>t * filters + f) << 2);
          // Rows: Aᵀ·M (2×4).
          for (let j = 0; j < 4; j++) {
            const m0 = ld(at + <usize>j * plane, fn), m1 = ld(at + <usize>(4 + j) * plane, fn);
            const m2 = ld(at + <usize>(8 + j) * plane, fn), m3 = ld(at + <usize>(12 + j) * plane, fn);
            v128.store(tileAt(tile, 0, j), f32x4.add(f32x4.add(m0, m1), m2));
            v128.store(tileAt(tile, 1, j), f32x4.sub(f32x4.sub(m1, m2), m3));
          }
          const b = ld(bias + (<usize>f << 2), fn);
          for (let i = 0; i < rows; i++) {
            const r0 = v128.load(tileAt(tile, i, 0)), r1 = v128.load(tileAt(tile, i, 1)), r2 = v128.load(tileAt(tile, i, 2)), r3 = v128.load(tileAt(tile, i, 3));
            let y0 = f32x4.add(f32x4.add(f32x4.add(r0, r1), r2), b);
            let y1 = f32x4.add(f32x4.sub(f32x4.sub(r1, r2), r3), b);
            // pmax(y, 0) is `y < 0 ? 0 : y`: NaN passes through, as in the reference.
            if (relu) {
              y0 = f32x4.pmax(y0, ZERO);
              y1 = f32x4.pmax(y1, ZERO);
            }
            const p = out + ((((<usize>(n * outHeight) + 2 * ty + i) * outWidth + 2 * tx) * filters + f) << 2);
            st(p, y0, fn);
            if (cols > 1) st(p + (<usize>filters << 2), y1, fn);
          }
        }
        t++;
      }
    }
  }
}

/** W[p][t][f] = (A e Aᵀ)[p] for every 2×2 block e of dy (zero past the output). */
export function winogradGradTransform(
  batch: i32, outHeight: i32, outWidth: i32, filters: i32,
  dy: usize, w: usize,
): void {
  winogradGradTransformImages(batch, outHeight, outWidth, filters, dy, w, 0, batch);
}

/** The tiles of images n0..n1 of `winogradGradTransform`'s W, to the bit. */
export function winogradGradTransformImages(
  batch: i32, outHeight: i32, outWidth: i32, filters: i32,
  dy: usize, w: usize, n0: i32, n1: i32,
): void {
  const tilesH = (outHeight + 1) >> 1, tilesW = (outWidth + 1) >> 1;
  const tiles = batch * tilesH * tilesW;
  const plane = <usize>tiles * filters << 2;
  let t = n0 * tilesH * tilesW;
  for (let n = n0; n < n1; n++) {
    for (let ty = 0; ty < tilesH; ty++) {
      for (let tx = 0; tx < tilesW; tx++) {
        const rows = min<i32>(2, outHeight - 2 * ty), cols = min<i32>(2, outWidth - 2 * tx);
        const corner = dy + ((((<usize>(n * outHeight) + 2 * ty) * outWidth + 2 * tx) * filters) << 2);
        const down = <usize>outWidth * filters << 2, right = <usize>filters << 2;
        for (let f = 0; f < filters; f += 4) {
          const fn = min<i32>(4, filters - f);
          const p = corner + (<usize>f << 2);
          const e00 = ld(p, fn);
          const e01 = cols > 1 ? ld(p + right, fn) : ZERO;
          const e10 = rows > 1 ? ld(p + down, fn) : ZERO;
          const e11 = rows > 1 && cols > 1 ? ld(p + down + right, fn) : ZERO;
          // Rows: A·e (4×2): e0, e0 + e1, e0 − e1, −e1; then the same along the columns.
          const s0 = f32x4.add(e00, e10), d0 = f32x4.sub(e00, e10);
          const s1 = f32x4.add(e01, e11), d1 = f32x4.sub(e01, e11);
          const at = w + ((<usize>t * filters + f) << 2);
          gradRow(at, plane, e00, e01, fn);
          gradRow(at + 4 * plane, plane, s0, s1, fn);
          gradRow(at + 8 * plane, plane, d0, d1, fn);
          gradRow(at + 12 * plane, plane, f32x4.neg(e10), f32x4.neg(e11), fn);
        }
        t++;
      }
    }
  }
}

/** One row of A e Aᵀ from the row's two values a, b: a, a + b, a − b, −b. */
// @ts-ignore: decorator
@inline
function gradRow(out: usize, plane: usize, a: v128, b: v128, n: i32): void {
  st(out, a, n);
  st(out + plane, f32x4.add(a, b), n);
  st(out + 2 * plane, f32x4.sub(a, b), n);
  st(out + 3 * plane, f32x4.neg(b), n);
}

/** dw[a][b][c][f] = (Gᵀ M G)[a][b] from M[p][c][f] (or += when accumulating). */
export function winogradFilterGradTransform(channels: i32, filters: i32, m: usize, dw: usize, accumulate: bool, tile: usize): void {
  const plane = <usize>channels * filters << 2;
  for (let c = 0; c < channels; c++) {
    for (let f = 0; f < filters; f += 4) {
      const n = min<i32>(4, filters - f);
      const at = (<usize>c * filters + f) << 2;
      // Rows: Gᵀ·M (3×4): m0 + ½(m1 + m2), ½(m1 − m2), ½(m1 + m2) + m3.
      for (let j = 0; j < 4; j++) {
        const m0 = ld(m + at + <usize>j * plane, n), m1 = ld(m + at + <usize>(4 + j) * plane, n);
        const m2 = ld(m + at + <usize>(8 + j) * plane, n), m3 = ld(m + at + <usize>(12 + j) * plane, n);
        const s = f32x4.mul(HALF, f32x4.add(m1, m2));
        v128.store(tileAt(tile, 0, j), f32x4.add(m0, s));
        v128.store(tileAt(tile, 1, j), f32x4.mul(HALF, f32x4.sub(m1, m2)));
        v128.store(tileAt(tile, 2, j), f32x4.add(s, m3));
      }
      for (let a = 0; a < 3; a++) {
        const r0 = v128.load(tileAt(tile, a, 0)), r1 = v128.load(tileAt(tile, a, 1)), r2 = v128.load(tileAt(tile, a, 2)), r3 = v128.load(tileAt(tile, a, 3));
        const s = f32x4.mul(HALF, f32x4.add(r1, r2));
        const p = dw + at + <usize>(a * 3) * plane;
        const k0 = f32x4.add(r0, s), k1 = f32x4.mul(HALF, f32x4.sub(r1, r2)), k2 = f32x4.add(s, r3);
        st(p, accumulate ? f32x4.add(ld(p, n), k0) : k0, n);
        st(p + plane, accumulate ? f32x4.add(ld(p + plane, n), k1) : k1, n);
        st(p + 2 * plane, accumulate ? f32x4.add(ld(p + 2 * plane, n), k2) : k2, n);
      }
    }
  }
}

/** row[xx] += value (n ≤ 4 lanes) when column xx is inside the image. */
// @ts-ignore: decorator
@inline
function addInside(row: usize, pixel: usize, xx: i32, width: i32, value: v128, n: i32): void {
  if (xx < 0 || xx >= width) return;
  const p = row + <usize>xx * pixel;
  st(p, f32x4.add(ld(p, n), value), n);
}

/** dx[n, y0+i, x0+j, c] += (B X Bᵀ)[i][j] from X[p][t][c], for the tile positions inside the image. */
export function winogradInputGradTransform(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32, padTop: i32, padLeft: i32,
  xt: usize, dx: usize, tile: usize,
): void {
  winogradInputGradTransformImages(batch, inHeight, inWidth, channels, outHeight, outWidth, padTop, padLeft, xt, dx, tile, 0, batch);
}

/**
 * Images n0..n1 of `winogradInputGradTransform`'s dx, to the bit: an image's tiles overlap only
 * each other, so each image's dx takes the same additions in the same order.
 */
export function winogradInputGradTransformImages(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32, padTop: i32, padLeft: i32,
  xt: usize, dx: usize, tile: usize, n0: i32, n1: i32,
): void {
  const tilesH = (outHeight + 1) >> 1, tilesW = (outWidth + 1) >> 1;
  const tiles = batch * tilesH * tilesW;
  const plane = <usize>tiles * channels << 2;
  let t = n0 * tilesH * tilesW;
  for (let n = n0; n < n1; n++) {
    for (let ty = 0; ty < tilesH; ty++) {
      const y0 = 2 * ty - padTop;
      for (let tx = 0; tx < tilesW; tx++) {
        const x0 = 2 * tx - padLeft;
        for (let c = 0; c < channels; c += 4) {
          const cn = min<i32>(4, channels - c);
          const at = xt + ((<usize>t * channels + c) << 2);
          // Rows: B·X (4×4): x0, x1 − x2 + x3, −x0 + x1 + x2, −x3.
          for (let j = 0; j < 4; j++) {
            const x0v = ld(at + <usize>j * plane, cn), x1v = ld(at + <usize>(4 + j) * plane, cn);
            const x2v = ld(at + <usize>(8 + j) * plane, cn), x3v = ld(at + <usize>(12 + j) * plane, cn);
            v128.store(tileAt(tile, 0, j), x0v);
            v128.store(tileAt(tile, 1, j), f32x4.add(f32x4.sub(x1v, x2v), x3v));
            v128.store(tileAt(tile, 2, j), f32x4.sub(f32x4.add(x1v, x2v), x0v));
            v128.store(tileAt(tile, 3, j), f32x4.neg(x3v));
          }
          for (let i = 0; i < 4; i++) {
            const yy = y0 + i;
            if (yy < 0 || yy >= inHeight) continue;
            const r0 = v128.load(tileAt(tile, i, 0)), r1 = v128.load(tileAt(tile, i, 1)), r2 = v128.load(tileAt(tile, i, 2)), r3 = v128.load(tileAt(tile, i, 3));
            // Columns: (B·X)·Bᵀ, added onto dx where the tile lies inside the image.
            const row = dx + ((((<usize>(n * inHeight) + yy) * inWidth) * channels + c) << 2);
            const pixel = <usize>channels << 2;
            addInside(row, pixel, x0, inWidth, r0, cn);
            addInside(row, pixel, x0 + 1, inWidth, f32x4.add(f32x4.sub(r1, r2), r3), cn);
            addInside(row, pixel, x0 + 2, inWidth, f32x4.sub(f32x4.add(r1, r2), r0), cn);
            addInside(row, pixel, x0 + 3, inWidth, f32x4.neg(r3), cn);
          }
        }
        t++;
      }
    }
  }
}
