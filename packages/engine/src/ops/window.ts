/**
 * The geometry of a sliding 2-D window (convolution kernel or pooling window) over NHWC images,
 * with Keras's two paddings:
 *   valid  the window stays inside the image:  out = ⌊(in − window) / stride⌋ + 1, no padding
 *   same   out = ⌈in / stride⌉; the missing rows and columns, max((out − 1)·stride + window − in, 0)
 *          of them, are split with the smaller half on top (left) and the larger at the bottom
 *          (right), as TensorFlow does
 */
import type { Window2d } from '../backend/kernels.js';
import { ShapeError, formatShape } from '../errors.js';

export type Padding = 'valid' | 'same';

/** Output size and leading padding along one axis. */
export function windowAxis(size: number, window: number, stride: number, padding: Padding): { out: number; padBefore: number } {
  if (padding === 'same') {
    const out = Math.ceil(size / stride);
    const total = Math.max((out - 1) * stride + window - size, 0);
    return { out, padBefore: Math.floor(total / 2) };
  }
  return { out: size >= window ? Math.floor((size - window) / stride) + 1 : 0, padBefore: 0 };
}

/**
 * The per-sample output shape [outHeight, outWidth] of a window over a per-sample input shape
 * [height, width, channels]; throws a ShapeError (naming `what`) when it does not fit.
 */
export function windowOutputSize(
  what: string, inputShape: readonly number[], window: readonly [number, number], strides: readonly [number, number], padding: Padding,
): [number, number] {
  if (inputShape.length !== 3) {
    throw new ShapeError(`${what} needs images of [height, width, channels] per sample, got ${formatShape(inputShape)}; add a reshape layer first`);
  }
  const [height, width] = inputShape;
  const rows = windowAxis(height, window[0], strides[0], padding);
  const cols = windowAxis(width, window[1], strides[1], padding);
  if (rows.out < 1 || cols.out < 1) {
    throw new ShapeError(`${what}: a ${window[0]}×${window[1]} window does not fit in a ${height}×${width} input with 'valid' padding`);
  }
  return [rows.out, cols.out];
}

/** The Window2d of a batch x [batch, height, width, channels]. */
export function window2d(
  x: { shape: readonly number[] }, window: readonly [number, number], strides: readonly [number, number], padding: Padding, what: string,
): Window2d {
  if (x.shape.length !== 4) throw new ShapeError(`${what} needs [batch, height, width, channels], got ${formatShape(x.shape)}`);
  const [batch, inHeight, inWidth, channels] = x.shape;
  const rows = windowAxis(inHeight, window[0], strides[0], padding);
  const cols = windowAxis(inWidth, window[1], strides[1], padding);
  if (rows.out < 1 || cols.out < 1) {
    throw new ShapeError(`${what}: a ${window[0]}×${window[1]} window does not fit in ${formatShape(x.shape)} with 'valid' padding`);
  }
  return {
    batch, inHeight, inWidth, channels,
    outHeight: rows.out, outWidth: cols.out,
    windowHeight: window[0], windowWidth: window[1],
    strideHeight: strides[0], strideWidth: strides[1],
    padTop: rows.padBefore, padLeft: cols.padBefore,
  };
}
