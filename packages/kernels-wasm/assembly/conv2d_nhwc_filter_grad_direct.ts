/**
 * conv2d_nhwc_filter_grad_direct: a convolution's filter gradient for small patches, computed
 * from the image where it lies, without a patch matrix.
 *
 *     dw[t, f] (+)= Σ_i x_t(i) · dy[i, f]      t = (kh, kw, c) a tap of the window, i = (n, oh, ow)
 *     x_t(i) = x[n, oh·sh − pt + kh, ow·sw − pl + kw, c], 0 on the padding
 *
 * A first convolution's patches hold few values (3×3 of one channel: 9), so its im2col + GEMM
 * spends as long packing and copying as multiplying. Here the output [taps, filters] is cut into
 * units of 3 taps × 8 filters (a 3×3 window's row of one channel), whose 6 v128 sums stay in registers while the rows i go by:
 *
 *     per image n, per unit (3 taps, filters f..f+8):
 *       acc = dw[taps, f..f+8)
 *       per output pixel i of image n:  acc[t] += splat(x_t(i)) · dy[i, f..f+8)
 *       dw[taps, f..f+8) = acc
 *
 * An image at a time, so its dy (and x) is read from cache by every unit. Each dw element sums in
 * ascending i whatever the units are, so threads may take any units (`u0..u1`): the floats are
 * the same for any thread count. Filters a multiple of 8 (the host checks). Geometry arguments as
 * in conv2d_nhwc_im2col.ts; `taps` is scratch of filterGradDirectScratchBytes bytes.
 */
import { madd } from './simd';

const TAPS_PER_UNIT = 3;

/** Units of the filter gradient: groups of 3 taps × blocks of 8 filters. */
export function filterGradDirectUnits(windowHeight: i32, windowWidth: i32, channels: i32, filters: i32): i32 {
  const taps = windowHeight * windowWidth * channels;
  return ((taps + TAPS_PER_UNIT - 1) / TAPS_PER_UNIT) * (filters >> 3);
}

/** Bytes of the table of taps conv2dFilterGradDirect keeps in scratch. */
export function filterGradDirectScratchBytes(windowHeight: i32, windowWidth: i32, channels: i32): i32 {
  return (windowHeight * windowWidth * channels + TAPS_PER_UNIT) << 3;
}

/** dw[kh·kw·C, filters] (+)= the filter gradient, units u0..u1 of it (see filterGradDirectUnits). */
export function conv2dFilterGradDirect(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  windowHeight: i32, windowWidth: i32, strideHeight: i32, strideWidth: i32, padTop: i32, padLeft: i32,
  filters: i32, x: usize, dy: usize, dw: usize, accumulate: bool, taps: usize, u0: i32, u1: i32,
): void {
  const tapCount = windowHeight * windowWidth * channels;
  const groups = (tapCount + TAPS_PER_UNIT - 1) / TAPS_PER_UNIT;
  const pixelBytes = channels << 2;
  const rowBytes = inWidth * pixelBytes;
  const filterRowBytes = <usize>filters << 2;
  // Each tap's byte offset from its window's top-left pixel, and its (kh, kw) packed; the group
  // past the last tap repeats tap 0 (its sums are dropped).
  for (let t = 0; t < groups * TAPS_PER_UNIT; t++) {
    const tap = t < tapCount ? t : 0;
    const c = tap % channels, kw = (tap / channels) % windowWidth, kh = tap / (channels * windowWidth);
    store<i32>(taps + (<usize>t << 3), kh * rowBytes + kw * pixelBytes + (c << 2));
    store<i32>(taps + (<usize>t << 3), (kh << 16) | kw, 4);
  }
  // Whether every window lies inside the image (no padding to check for).
  const inside = padTop <= 0 && padLeft <= 0 && (outHeight - 1) * strideHeight - padTop + windowHeight <= inHeight &&
    (outWidth - 1) * strideWidth - padLeft + windowWidth <= inWidth;
  const zero = f32x4.splat(0);

  for (let n = 0; n < batch; n++) {
    const image = x + <usize>n * <usize>inHeight * <usize>rowBytes;
    const dyImage = dy + <usize>n * <usize>outHeight * <usize>outWidth * filterRowBytes;
    for (let u = u0; u < u1; u++) {
      const group = u % groups, f = (u / groups) << 3;
      const t0 = group * TAPS_PER_UNIT;
      const count = min(TAPS_PER_UNIT, tapCount - t0);
      const e = taps + (<usize>t0 << 3);
      const o0 = load<i32>(e), o1 = load<i32>(e, 8), o2 = load<i32>(e, 16);
      const d0 = dw + <usize>t0 * filterRowBytes + (<usize>f << 2);
      const d1 = d0 + filterRowBytes, d2 = d1 + filterRowBytes;
      const fresh = !accumulate && n == 0;
      let a00 = zero, a01 = zero, a10 = zero, a11 = zero, a20 = zero, a21 = zero;
      if (!fresh) {
        a00 = v128.load(d0); a01 = v128.load(d0, 16);
        if (count > 1) { a10 = v128.load(d1); a11 = v128.load(d1, 16); }
        if (count > 2) { a20 = v128.load(d2); a21 = v128.load(d2, 16); }
      }
      let g = dyImage + (<usize>f << 2);
      for (let oh = 0; oh < outHeight; oh++) {
        const ih = oh * strideHeight - padTop;
        for (let ow = 0; ow < outWidth; ow++) {
          const iw = ow * strideWidth - padLeft;
          const gy0 = v128.load(g), gy1 = v128.load(g, 16);
          g += filterRowBytes;
          let x0: f32, x1: f32, x2: f32;
          if (inside) {
            const p = image + <usize>(ih * rowBytes + iw * pixelBytes);
            x0 = load<f32>(p + <usize>o0); x1 = load<f32>(p + <usize>o1); x2 = load<f32>(p + <usize>o2);
          } else {
            x0 = tapValue(image, e, ih, iw, inHeight, inWidth, rowBytes, pixelBytes);
            x1 = tapValue(image, e + 8, ih, iw, inHeight, inWidth, rowBytes, pixelBytes);
            x2 = tapValue(image, e + 16, ih, iw, inHeight, inWidth, rowBytes, pixelBytes);
          }
          const v0 = f32x4.splat(x0), v1 = f32x4.splat(x1), v2 = f32x4.splat(x2);
          a00 = madd(v0, gy0, a00); a01 = madd(v0, gy1, a01);
          a10 = madd(v1, gy0, a10); a11 = madd(v1, gy1, a11);
          a20 = madd(v2, gy0, a20); a21 = madd(v2, gy1, a21);
        }
      }
      v128.store(d0, a00); v128.store(d0, a01, 16);
      if (count > 1) { v128.store(d1, a10); v128.store(d1, a11, 16); }
      if (count > 2) { v128.store(d2, a20); v128.store(d2, a21, 16); }
    }
  }
}

/** x at the tap listed at `entry` of the window whose top-left pixel is (ih, iw), 0 on the padding. */
// @ts-ignore: decorator
@inline
function tapValue(image: usize, entry: usize, ih: i32, iw: i32, inHeight: i32, inWidth: i32, rowBytes: i32, pixelBytes: i32): f32 {
  const place = load<i32>(entry, 4);
  const y = ih + (place >> 16), xw = iw + (place & 0xffff);
  if (<u32>y >= <u32>inHeight || <u32>xw >= <u32>inWidth) return 0;
  return load<f32>(image + <usize>(ih * rowBytes + iw * pixelBytes + load<i32>(entry)));
}
