/**
 * maxpool_nhwc_simd: 2-D max pooling over NHWC images, four channels per v128.
 *
 * With channels last, the C values of one pixel are consecutive, so a window is reduced for four
 * channels at once: one accumulator per group of four channels, one `f32x4.max` per window
 * position. Positions outside the image ('same' padding) are left out, not read as zeros.
 *
 *   forward   y[n,oh,ow,c] = max over the window of x (f32x4.max: NaN wins, as Math.max)
 *   backward  each dy[n,oh,ow,c] goes to the first window position (row by row) where x = y:
 *               found = 0
 *               for each position p:  hit = (x[p] == y) and not found
 *                                     dx[p] += dy & hit;   found |= hit
 *             so ties send the gradient to the first maximum, as TensorFlow does, with no branch.
 *
 * Geometry arguments as in conv2d_nhwc_im2col.ts: batch, inHeight, inWidth, channels,
 * outHeight, outWidth, windowHeight, windowWidth, strideHeight, strideWidth, padTop, padLeft.
 */

export function maxPool2d(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  windowHeight: i32, windowWidth: i32, strideHeight: i32, strideWidth: i32, padTop: i32, padLeft: i32,
  x: usize, out: usize,
): void {
  if (isTwoByTwo(inHeight, inWidth, channels, outHeight, outWidth, windowHeight, windowWidth, strideHeight, strideWidth, padTop, padLeft)) {
    maxPool2x2(batch, inHeight, inWidth, channels, outHeight, outWidth, x, out);
    return;
  }
  const pixelBytes = <usize>channels << 2;
  const rowBytes = <usize>inWidth * pixelBytes;
  const imageBytes = <usize>inHeight * rowBytes;
  const c4 = channels & ~3;
  let dst = out;
  for (let n = 0; n < batch; n++) {
    const image = x + <usize>n * imageBytes;
    for (let oh = 0; oh < outHeight; oh++) {
      const ih0 = oh * strideHeight - padTop;
      const khStart = ih0 < 0 ? -ih0 : 0;
      const khEnd = min<i32>(windowHeight, inHeight - ih0);
      for (let ow = 0; ow < outWidth; ow++) {
        const iw0 = ow * strideWidth - padLeft;
        const kwStart = iw0 < 0 ? -iw0 : 0;
        const kwEnd = min<i32>(windowWidth, inWidth - iw0);
        const corner = image + <usize>ih0 * rowBytes + <usize>iw0 * pixelBytes;
        let c = 0;
        for (; c < c4; c += 4) {
          let best = f32x4.splat(-Infinity);
          for (let kh = khStart; kh < khEnd; kh++) {
            const row = corner + <usize>kh * rowBytes + (<usize>c << 2);
            for (let kw = kwStart; kw < kwEnd; kw++) best = f32x4.max(best, v128.load(row + <usize>kw * pixelBytes));
          }
          v128.store(dst + (<usize>c << 2), best);
        }
        for (; c < channels; c++) {
          let best: f32 = -Infinity;
          for (let kh = khStart; kh < khEnd; kh++) {
            const row = corner + <usize>kh * rowBytes + (<usize>c << 2);
            for (let kw = kwStart; kw < kwEnd; kw++) best = max<f32>(best, load<f32>(row + <usize>kw * pixelBytes));
          }
          store<f32>(dst + (<usize>c << 2), best);
        }
        dst += pixelBytes;
      }
    }
  }
}

export function maxPool2dGrad(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  windowHeight: i32, windowWidth: i32, strideHeight: i32, strideWidth: i32, padTop: i32, padLeft: i32,
  x: usize, y: usize, dy: usize, dx: usize, accumulate: bool,
): void {
  const pixelBytes = <usize>channels << 2;
  const rowBytes = <usize>inWidth * pixelBytes;
  const imageBytes = <usize>inHeight * rowBytes;
  const sideBySide = strideHeight == windowHeight && strideWidth == windowWidth && padTop == 0 && padLeft == 0 &&
    outHeight * windowHeight <= inHeight && outWidth * windowWidth <= inWidth;
  if (!accumulate && sideBySide) {
    if (isTwoByTwo(inHeight, inWidth, channels, outHeight, outWidth, windowHeight, windowWidth, strideHeight, strideWidth, padTop, padLeft)) {
      maxPool2x2Grad(batch, inHeight, inWidth, channels, outHeight, outWidth, x, y, dy, dx);
    } else {
      tiledGrad(batch, inHeight, inWidth, channels, outHeight, outWidth, windowHeight, windowWidth, x, y, dy, dx);
    }
    return;
  }
  if (!accumulate) memory.fill(dx, 0, <usize>batch * imageBytes);
  const c4 = channels & ~3;
  let o: usize = 0; // byte offset of output pixel (n, oh, ow) in y and dy
  for (let n = 0; n < batch; n++) {
    const image = <usize>n * imageBytes; // byte offset of image n in x and dx
    for (let oh = 0; oh < outHeight; oh++) {
      const ih0 = oh * strideHeight - padTop;
      const khStart = ih0 < 0 ? -ih0 : 0;
      const khEnd = min<i32>(windowHeight, inHeight - ih0);
      for (let ow = 0; ow < outWidth; ow++) {
        const iw0 = ow * strideWidth - padLeft;
        const kwStart = iw0 < 0 ? -iw0 : 0;
        const kwEnd = min<i32>(windowWidth, inWidth - iw0);
        const corner = image + <usize>ih0 * rowBytes + <usize>iw0 * pixelBytes;
        let c = 0;
        for (; c < c4; c += 4) {
          const cb = <usize>c << 2;
          const pooled = v128.load(y + o + cb);
          const grad = v128.load(dy + o + cb);
          let found = i32x4.splat(0);
          for (let kh = khStart; kh < khEnd; kh++) {
            const row = corner + <usize>kh * rowBytes + cb;
            for (let kw = kwStart; kw < kwEnd; kw++) {
              const p = row + <usize>kw * pixelBytes;
              const hit = v128.andnot(f32x4.eq(v128.load(x + p), pooled), found);
              v128.store(dx + p, f32x4.add(v128.load(dx + p), v128.and(grad, hit)));
              found = v128.or(found, hit);
            }
          }
        }
        for (; c < channels; c++) {
          const cb = <usize>c << 2;
          const pooled = load<f32>(y + o + cb);
          let found = false;
          for (let kh = khStart; kh < khEnd && !found; kh++) {
            const row = corner + <usize>kh * rowBytes + cb;
            for (let kw = kwStart; kw < kwEnd; kw++) {
              const p = row + <usize>kw * pixelBytes;
              if (load<f32>(x + p) == pooled) {
                store<f32>(dx + p, load<f32>(dx + p) + load<f32>(dy + o + cb));
                found = true;
                break;
              }
            }
          }
        }
        o += pixelBytes;
      }
    }
  }
}

/**
 * The gradient for windows side by side (stride = window, all inside the image), the common case: every
 * input position belongs to at most one window, so dx is written once, without clearing it first
 * or reading it back: dy where the position is its window's first maximum, 0 elsewhere and in the
 * rows and columns no window covers.
 */
function tiledGrad(
  batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  windowHeight: i32, windowWidth: i32, x: usize, y: usize, dy: usize, dx: usize,
): void {
  const pixelBytes = <usize>channels << 2;
  const rowBytes = <usize>inWidth * pixelBytes;
  const imageBytes = <usize>inHeight * rowBytes;
  const c4 = channels & ~3;
  const coveredRows = outHeight * windowHeight, coveredCols = outWidth * windowWidth;
  let o: usize = 0;
  for (let n = 0; n < batch; n++) {
    const image = <usize>n * imageBytes;
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        const corner = image + <usize>(oh * windowHeight) * rowBytes + <usize>(ow * windowWidth) * pixelBytes;
        let c = 0;
        for (; c < c4; c += 4) {
          const cb = <usize>c << 2;
          const pooled = v128.load(y + o + cb);
          const grad = v128.load(dy + o + cb);
          let found = i32x4.splat(0);
          for (let kh = 0; kh < windowHeight; kh++) {
            const row = corner + <usize>kh * rowBytes + cb;
            for (let kw = 0; kw < windowWidth; kw++) {
              const p = row + <usize>kw * pixelBytes;
              const hit = v128.andnot(f32x4.eq(v128.load(x + p), pooled), found);
              v128.store(dx + p, v128.and(grad, hit));
              found = v128.or(found, hit);
            }
          }
        }
        for (; c < channels; c++) {
          const cb = <usize>c << 2;
          const pooled = load<f32>(y + o + cb);
          let found = false;
          for (let kh = 0; kh < windowHeight; kh++) {
            const row = corner + <usize>kh * rowBytes + cb;
            for (let kw = 0; kw < windowWidth; kw++) {
              const p = row + <usize>kw * pixelBytes;
              const hit = !found && load<f32>(x + p) == pooled;
              store<f32>(dx + p, hit ? load<f32>(dy + o + cb) : 0);
              found = found || hit;
            }
          }
        }
        o += pixelBytes;
      }
    }
    // Rows and columns past the last whole window get no gradient.
    for (let r = 0; r < inHeight; r++) {
      const row = dx + image + <usize>r * rowBytes;
      if (r >= coveredRows) memory.fill(row, 0, rowBytes);
      else if (coveredCols < inWidth) memory.fill(row + <usize>coveredCols * pixelBytes, 0, <usize>(inWidth - coveredCols) * pixelBytes);
    }
  }
}

/**
 * 2×2 windows with stride 2, inside the image, and channels a multiple of 4: the CNNs' usual
 * pooling, unrolled. The same results as the general loops (max is exact and order-free, and the
 * first maximum is found in the same row-by-row order).
 */
function isTwoByTwo(
  inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32,
  windowHeight: i32, windowWidth: i32, strideHeight: i32, strideWidth: i32, padTop: i32, padLeft: i32,
): bool {
  return windowHeight == 2 && windowWidth == 2 && strideHeight == 2 && strideWidth == 2 && padTop == 0 && padLeft == 0 &&
    2 * outHeight <= inHeight && 2 * outWidth <= inWidth && (channels & 3) == 0;
}

function maxPool2x2(batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32, x: usize, out: usize): void {
  const pixelBytes = <usize>channels << 2;
  const rowBytes = <usize>inWidth * pixelBytes;
  const imageBytes = <usize>inHeight * rowBytes;
  let dst = out;
  for (let n = 0; n < batch; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      let top = x + <usize>n * imageBytes + <usize>(2 * oh) * rowBytes;
      for (let ow = 0; ow < outWidth; ow++) {
        const bottom = top + rowBytes;
        for (let c: usize = 0; c < pixelBytes; c += 16) {
          const upper = f32x4.max(v128.load(top + c), v128.load(top + pixelBytes + c));
          const lower = f32x4.max(v128.load(bottom + c), v128.load(bottom + pixelBytes + c));
          v128.store(dst + c, f32x4.max(upper, lower));
        }
        top += 2 * pixelBytes;
        dst += pixelBytes;
      }
    }
  }
}

function maxPool2x2Grad(batch: i32, inHeight: i32, inWidth: i32, channels: i32, outHeight: i32, outWidth: i32, x: usize, y: usize, dy: usize, dx: usize): void {
  const pixelBytes = <usize>channels << 2;
  const rowBytes = <usize>inWidth * pixelBytes;
  const imageBytes = <usize>inHeight * rowBytes;
  let o: usize = 0;
  for (let n = 0; n < batch; n++) {
    const image = <usize>n * imageBytes;
    for (let oh = 0; oh < outHeight; oh++) {
      let top = image + <usize>(2 * oh) * rowBytes;
      for (let ow = 0; ow < outWidth; ow++) {
        const bottom = top + rowBytes;
        for (let c: usize = 0; c < pixelBytes; c += 16) {
          const pooled = v128.load(y + o + c), grad = v128.load(dy + o + c);
          const hit0 = f32x4.eq(v128.load(x + top + c), pooled);
          const hit1 = v128.andnot(f32x4.eq(v128.load(x + top + pixelBytes + c), pooled), hit0);
          const found = v128.or(hit0, hit1);
          const hit2 = v128.andnot(f32x4.eq(v128.load(x + bottom + c), pooled), found);
          const hit3 = v128.andnot(f32x4.eq(v128.load(x + bottom + pixelBytes + c), pooled), v128.or(found, hit2));
          v128.store(dx + top + c, v128.and(grad, hit0));
          v128.store(dx + top + pixelBytes + c, v128.and(grad, hit1));
          v128.store(dx + bottom + c, v128.and(grad, hit2));
          v128.store(dx + bottom + pixelBytes + c, v128.and(grad, hit3));
        }
        top += 2 * pixelBytes;
        o += pixelBytes;
      }
    }
    // An odd last row or column is in no window: no gradient.
    for (let r = 0; r < inHeight; r++) {
      const row = dx + image + <usize>r * rowBytes;
      if (r >= 2 * outHeight) memory.fill(row, 0, rowBytes);
      else if (2 * outWidth < inWidth) memory.fill(row + <usize>(2 * outWidth) * pixelBytes, 0, <usize>(inWidth - 2 * outWidth) * pixelBytes);
    }
  }
}
