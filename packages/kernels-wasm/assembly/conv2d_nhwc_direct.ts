/**
 * conv2d_nhwc_direct: the forward convolution computed in place, without a patch matrix.
 *
 * The third way to run a convolution (beside im2col + GEMM and Winograd), taken for small patches
 * (a first layer's 3×3 of one channel, where im2col copies as much as the GEMM multiplies) and
 * measured against the others for the rest (packages/bench conv suite): each block of 4 neighbouring output
 * pixels × 8 filters is held in 8 v128 accumulators while the window is walked in the kernel's
 * order (kh, kw, c), reading the input image where it lies:
 *
 *     out[n, oh, ow + p, f..f+7] = act(bias[f..f+7] + Σ_{kh, kw, c} x[n, ih, iw_p, c] · w[kh, kw, c, f..f+7])
 *     with ih = oh·sh − pt + kh, iw_p = (ow + p)·sw − pl + kw, and x = 0 on the padding.
 *
 * It needs filters to be a multiple of 8 (the host checks). Geometry arguments as in
 * conv2d_nhwc_im2col.ts.
 */
import { madd } from './simd';

export function conv2dDirect(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  windowHeight: i32, windowWidth: i32, strideHeight: i32, strideWidth: i32, padTop: i32, padLeft: i32,
  filters: i32, x: usize, w: usize, bias: usize, out: usize, relu: bool,
): void {
  const pixelBytes = <usize>channels << 2;
  const rowBytes = <usize>inWidth * pixelBytes;
  const imageBytes = <usize>inHeight * rowBytes;
  const filterRowBytes = <usize>filters << 2;
  /** Bytes between the inputs of neighbouring output pixels. */
  const stepBytes = <usize>strideWidth * pixelBytes;
  const zero = f32x4.splat(0);
  for (let n = 0; n < batch; n++) {
    const image = x + <usize>n * imageBytes;
    for (let oh = 0; oh < outHeight; oh++) {
      const top = oh * strideHeight - padTop;
      const outRow = out + ((<usize>(n * outHeight + oh) * <usize>outWidth) * <usize>filters << 2);
      for (let f = 0; f < filters; f += 8) {
        const b0 = v128.load(bias + (<usize>f << 2)), b1 = v128.load(bias + (<usize>f << 2), 16);
        let ow = 0;
        while (ow < outWidth) {
          const left = ow * strideWidth - padLeft;
          if (ow + 4 > outWidth || left < 0 || (ow + 3) * strideWidth - padLeft + windowWidth > inWidth) {
            // Near the left or right padding, and the last pixels: one output pixel.
            singlePixel(image, rowBytes, pixelBytes, inHeight, inWidth, channels, windowHeight, windowWidth, top, left, w, filterRowBytes, f, b0, b1, relu,
              outRow + ((<usize>ow * <usize>filters + <usize>f) << 2));
            ow++;
            continue;
          }
          // Four output pixels at once: all four windows lie inside the image's columns.
          let a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1;
          for (let kh = 0; kh < windowHeight; kh++) {
            const ih = top + kh;
            if (ih < 0 || ih >= inHeight) continue;
            let src = image + <usize>ih * rowBytes + <usize>left * pixelBytes;
            let wp = w + ((<usize>(kh * windowWidth) * <usize>channels) * filterRowBytes) + (<usize>f << 2);
            // A window row's kw·C inputs are consecutive floats (NHWC), in w's order.
            const run = windowWidth * channels;
            for (let i = 0; i < run; i++) {
              const w0 = v128.load(wp), w1 = v128.load(wp, 16);
              const x0 = f32x4.splat(load<f32>(src));
              const x1 = f32x4.splat(load<f32>(src + stepBytes));
              const x2 = f32x4.splat(load<f32>(src + 2 * stepBytes));
              const x3 = f32x4.splat(load<f32>(src + 3 * stepBytes));
              a00 = madd(x0, w0, a00); a01 = madd(x0, w1, a01);
              a10 = madd(x1, w0, a10); a11 = madd(x1, w1, a11);
              a20 = madd(x2, w0, a20); a21 = madd(x2, w1, a21);
              a30 = madd(x3, w0, a30); a31 = madd(x3, w1, a31);
              src += 4;
              wp += filterRowBytes;
            }
          }
          if (relu) {
            a00 = f32x4.max(a00, zero); a01 = f32x4.max(a01, zero); a10 = f32x4.max(a10, zero); a11 = f32x4.max(a11, zero);
            a20 = f32x4.max(a20, zero); a21 = f32x4.max(a21, zero); a30 = f32x4.max(a30, zero); a31 = f32x4.max(a31, zero);
          }
          const dst = outRow + ((<usize>ow * <usize>filters + <usize>f) << 2);
          v128.store(dst, a00); v128.store(dst, a01, 16);
          v128.store(dst + filterRowBytes, a10); v128.store(dst + filterRowBytes, a11, 16);
          v128.store(dst + 2 * filterRowBytes, a20); v128.store(dst + 2 * filterRowBytes, a21, 16);
          v128.store(dst + 3 * filterRowBytes, a30); v128.store(dst + 3 * filterRowBytes, a31, 16);
          ow += 4;
        }
      }
    }
  }
}

/** One output pixel's 8 filters from f: windows across the padding skip the outside inputs. */
// @ts-ignore: decorator
@inline
function singlePixel(
  image: usize, rowBytes: usize, pixelBytes: usize, inHeight: i32, inWidth: i32, channels: i32, windowHeight: i32, windowWidth: i32,
  top: i32, left: i32, w: usize, filterRowBytes: usize, f: i32, b0: v128, b1: v128, relu: bool, dst: usize,
): void {
  let a0 = b0, a1 = b1;
  for (let kh = 0; kh < windowHeight; kh++) {
    const ih = top + kh;
    if (ih < 0 || ih >= inHeight) continue;
    for (let kw = 0; kw < windowWidth; kw++) {
      const iw = left + kw;
      if (iw < 0 || iw >= inWidth) continue;
      let src = image + <usize>ih * rowBytes + <usize>iw * pixelBytes;
      let wp = w + ((<usize>(kh * windowWidth + kw) * <usize>channels) * filterRowBytes) + (<usize>f << 2);
      for (let c = 0; c < channels; c++) {
        const xv = f32x4.splat(load<f32>(src));
        a0 = madd(xv, v128.load(wp), a0);
        a1 = madd(xv, v128.load(wp, 16), a1);
        src += 4;
        wp += filterRowBytes;
      }
    }
  }
  if (relu) {
    const zero = f32x4.splat(0);
    a0 = f32x4.max(a0, zero);
    a1 = f32x4.max(a1, zero);
  }
  v128.store(dst, a0);
  v128.store(dst, a1, 16);
}
