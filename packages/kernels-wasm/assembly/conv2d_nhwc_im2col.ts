/**
 * conv2d_nhwc_im2col: a 2-D convolution as one matrix product (im2col), NHWC images.
 *
 * Every output pixel (n, oh, ow) reads a kh×kw×C patch of the input. `im2col` copies each
 * patch into one row of a matrix, in the kernel's own order (kh, kw, c), so the convolution is
 * the dense layer's product with the kernel [kh, kw, C, F] read as a [kh·kw·C, F] matrix:
 *
 *     x [N, H, W, C] ──im2col──► col [N·OH·OW, kh·kw·C]
 *
 *     forward        out[N·OH·OW, F]      = act(col · w + bias)     (dense: gemm + bias + ReLU)
 *     filter grad    dw[kh·kw·C, F]      (+)= colᵀ · dz             (gemm, transposeA)
 *     input grad     dcol[N·OH·OW, kh·kw·C] = dz · wᵀ               (gemm, transposeB)
 *                    dx (+)= col2im(dcol)                          (each patch added back in place)
 *
 * The products run in the GEMM kernel of gemm_f32_4x8_simd.ts; this file only moves patches.
 * With NHWC, a patch row of kw pixels is kw·C consecutive floats of the input (the channels of
 * neighbouring pixels are neighbours), so a row is one copy when it lies inside the image;
 * padding is written as zeros (im2col) or skipped (col2im).
 *
 *   patch row kh of output (oh, ow), stride 1:
 *     x row ih = oh·sh − pt + kh:  … │ c0..cC-1 of iw │ c0..cC-1 of iw+1 │ … │ of iw+kw-1 │ …
 *                                    └──────────── kw·C floats, copied as one run ────────┘
 *
 * Geometry arguments, in this order everywhere: batch, inHeight, inWidth, channels, outHeight,
 * outWidth, windowHeight, windowWidth, strideHeight, strideWidth, padTop, padLeft.
 */

/** dst[0..n) = src[0..n), four floats at a time. */
// @ts-ignore: decorator
@inline
function copyRun(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, v128.load(src + o));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, load<f32>(src + o));
  }
}

/** dst[0..n) += src[0..n), four floats at a time. */
// @ts-ignore: decorator
@inline
function addRun(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
  }
}

/** dst[0..n) = 0. */
// @ts-ignore: decorator
@inline
function zeroRun(dst: usize, n: i32): void {
  let i = 0;
  const zero = f32x4.splat(0);
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), zero);
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), 0);
}

/** col[(n,oh,ow), (kh,kw,c)] = x[n, oh·sh − pt + kh, ow·sw − pl + kw, c], or 0 on the padding. */
export function im2col(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  windowHeight: i32, windowWidth: i32, strideHeight: i32, strideWidth: i32, padTop: i32, padLeft: i32,
  x: usize, col: usize,
): void {
  const run = windowWidth * channels;
  const pixelBytes = <usize>channels << 2;
  const rowBytes = <usize>inWidth * pixelBytes;
  const imageBytes = <usize>inHeight * rowBytes;
  let dst = col;
  for (let n = 0; n < batch; n++) {
    const image = x + <usize>n * imageBytes;
    for (let oh = 0; oh < outHeight; oh++) {
      const ih0 = oh * strideHeight - padTop;
      for (let ow = 0; ow < outWidth; ow++) {
        const iw0 = ow * strideWidth - padLeft;
        const inside = iw0 >= 0 && iw0 + windowWidth <= inWidth;
        for (let kh = 0; kh < windowHeight; kh++) {
          const ih = ih0 + kh;
          if (ih < 0 || ih >= inHeight) {
            zeroRun(dst, run);
          } else if (inside) {
            copyRun(dst, image + <usize>ih * rowBytes + <usize>iw0 * pixelBytes, run);
          } else {
            for (let kw = 0; kw < windowWidth; kw++) {
              const iw = iw0 + kw;
              const to = dst + <usize>(kw * channels) * 4;
              if (iw < 0 || iw >= inWidth) zeroRun(to, channels);
              else copyRun(to, image + <usize>ih * rowBytes + <usize>iw * pixelBytes, channels);
            }
          }
          dst += <usize>run << 2;
        }
      }
    }
  }
}

/** dx[n, ih, iw, c] += col[(n,oh,ow), (kh,kw,c)] for every patch position inside the image. */
export function col2im(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  windowHeight: i32, windowWidth: i32, strideHeight: i32, strideWidth: i32, padTop: i32, padLeft: i32,
  col: usize, dx: usize,
): void {
  const run = windowWidth * channels;
  const pixelBytes = <usize>channels << 2;
  const rowBytes = <usize>inWidth * pixelBytes;
  const imageBytes = <usize>inHeight * rowBytes;
  let src = col;
  for (let n = 0; n < batch; n++) {
    const image = dx + <usize>n * imageBytes;
    for (let oh = 0; oh < outHeight; oh++) {
      const ih0 = oh * strideHeight - padTop;
      for (let ow = 0; ow < outWidth; ow++) {
        const iw0 = ow * strideWidth - padLeft;
        const inside = iw0 >= 0 && iw0 + windowWidth <= inWidth;
        for (let kh = 0; kh < windowHeight; kh++) {
          const ih = ih0 + kh;
          if (ih >= 0 && ih < inHeight) {
            if (inside) {
              addRun(image + <usize>ih * rowBytes + <usize>iw0 * pixelBytes, src, run);
            } else {
              for (let kw = 0; kw < windowWidth; kw++) {
                const iw = iw0 + kw;
                if (iw >= 0 && iw < inWidth) addRun(image + <usize>ih * rowBytes + <usize>iw * pixelBytes, src + <usize>(kw * channels) * 4, channels);
              }
            }
          }
          src += <usize>run << 2;
        }
      }
    }
  }
}
