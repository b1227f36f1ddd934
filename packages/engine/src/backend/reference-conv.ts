/**
 * The reference convolution and max-pooling kernels: the definitions, written as loops over
 * every output and every window position, in plain TypeScript (and float64 for the gradient
 * checks). Images are NHWC, kernels [kh, kw, in, out], as in Keras and TensorFlow.js.
 *
 * One helper does the geometry: `inputIndex` says which input pixel window position (kh, kw) of
 * output pixel (oh, ow) reads, or -1 when it falls on the padding.
 */
import type { Kernels, Window2d } from './kernels.js';

export type ConvKernels = Pick<Kernels, 'conv2d' | 'conv2dInputGrad' | 'conv2dFilterGrad' | 'maxPool2d' | 'maxPool2dGrad'>;

/** Offset of pixel (n, ih, iw) in the input (times channels for its first value), or -1 on the padding. */
function inputIndex(g: Window2d, n: number, oh: number, ow: number, kh: number, kw: number): number {
  const ih = oh * g.strideHeight - g.padTop + kh;
  const iw = ow * g.strideWidth - g.padLeft + kw;
  if (ih < 0 || ih >= g.inHeight || iw < 0 || iw >= g.inWidth) return -1;
  return ((n * g.inHeight + ih) * g.inWidth + iw) * g.channels;
}

/** Offset of output pixel (n, oh, ow) times `depth`. */
function outputIndex(g: Window2d, n: number, oh: number, ow: number, depth: number): number {
  return ((n * g.outHeight + oh) * g.outWidth + ow) * depth;
}

export function createReferenceConvKernels(): ConvKernels {
  return {
    conv2d(g, filters, x, w, bias, out, relu) {
      const X = x.data, W = w.data, b = bias.data, Y = out.data;
      const C = g.channels;
      for (let n = 0; n < g.batch; n++) {
        for (let oh = 0; oh < g.outHeight; oh++) {
          for (let ow = 0; ow < g.outWidth; ow++) {
            const o = outputIndex(g, n, oh, ow, filters);
            for (let f = 0; f < filters; f++) {
              let sum = b[f];
              for (let kh = 0; kh < g.windowHeight; kh++) {
                for (let kw = 0; kw < g.windowWidth; kw++) {
                  const i = inputIndex(g, n, oh, ow, kh, kw);
                  if (i < 0) continue; // padding reads as zero
                  const k = (kh * g.windowWidth + kw) * C;
                  for (let c = 0; c < C; c++) sum += X[i + c] * W[(k + c) * filters + f];
                }
              }
              // NaN passes through the ReLU, as in the reference relu kernel.
              Y[o + f] = relu && sum < 0 ? 0 : sum;
            }
          }
        }
      }
    },

    conv2dInputGrad(g, filters, dy, w, dx, accumulate) {
      const dY = dy.data, W = w.data, dX = dx.data;
      const C = g.channels;
      if (!accumulate) dX.fill(0);
      // Each output pixel sends its gradient back along every weight it used.
      for (let n = 0; n < g.batch; n++) {
        for (let oh = 0; oh < g.outHeight; oh++) {
          for (let ow = 0; ow < g.outWidth; ow++) {
            const o = outputIndex(g, n, oh, ow, filters);
            for (let kh = 0; kh < g.windowHeight; kh++) {
              for (let kw = 0; kw < g.windowWidth; kw++) {
                const i = inputIndex(g, n, oh, ow, kh, kw);
                if (i < 0) continue;
                const k = (kh * g.windowWidth + kw) * C;
                for (let c = 0; c < C; c++) {
                  let sum = 0;
                  for (let f = 0; f < filters; f++) sum += dY[o + f] * W[(k + c) * filters + f];
                  dX[i + c] += sum;
                }
              }
            }
          }
        }
      }
    },

    conv2dFilterGrad(g, filters, x, dy, dw, accumulate) {
      const X = x.data, dY = dy.data, dW = dw.data;
      const C = g.channels;
      if (!accumulate) dW.fill(0);
      // A weight's gradient: its input times the gradient at its output, summed over every place it was used.
      for (let n = 0; n < g.batch; n++) {
        for (let oh = 0; oh < g.outHeight; oh++) {
          for (let ow = 0; ow < g.outWidth; ow++) {
            const o = outputIndex(g, n, oh, ow, filters);
            for (let kh = 0; kh < g.windowHeight; kh++) {
              for (let kw = 0; kw < g.windowWidth; kw++) {
                const i = inputIndex(g, n, oh, ow, kh, kw);
                if (i < 0) continue;
                const k = (kh * g.windowWidth + kw) * C;
                for (let c = 0; c < C; c++) {
                  for (let f = 0; f < filters; f++) dW[(k + c) * filters + f] += X[i + c] * dY[o + f];
                }
              }
            }
          }
        }
      }
    },

    maxPool2d(g, x, out) {
      const X = x.data, Y = out.data;
      const C = g.channels;
      for (let n = 0; n < g.batch; n++) {
        for (let oh = 0; oh < g.outHeight; oh++) {
          for (let ow = 0; ow < g.outWidth; ow++) {
            const o = outputIndex(g, n, oh, ow, C);
            for (let c = 0; c < C; c++) {
              let max = -Infinity;
              for (let kh = 0; kh < g.windowHeight; kh++) {
                for (let kw = 0; kw < g.windowWidth; kw++) {
                  const i = inputIndex(g, n, oh, ow, kh, kw);
                  if (i >= 0) max = Math.max(max, X[i + c]); // padding is left out; Math.max keeps NaN
                }
              }
              Y[o + c] = max;
            }
          }
        }
      }
    },

    maxPool2dGrad(g, x, y, dy, dx, accumulate) {
      const X = x.data, Y = y.data, dY = dy.data, dX = dx.data;
      const C = g.channels;
      if (!accumulate) dX.fill(0);
      for (let n = 0; n < g.batch; n++) {
        for (let oh = 0; oh < g.outHeight; oh++) {
          for (let ow = 0; ow < g.outWidth; ow++) {
            const o = outputIndex(g, n, oh, ow, C);
            for (let c = 0; c < C; c++) {
              // The first position, row by row, that holds the maximum takes the whole gradient.
              search: for (let kh = 0; kh < g.windowHeight; kh++) {
                for (let kw = 0; kw < g.windowWidth; kw++) {
                  const i = inputIndex(g, n, oh, ow, kh, kw);
                  if (i >= 0 && X[i + c] === Y[o + c]) {
                    dX[i + c] += dY[o + c];
                    break search;
                  }
                }
              }
            }
          }
        }
      }
    },
  };
}
