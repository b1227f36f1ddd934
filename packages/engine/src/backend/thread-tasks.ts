/**
 * Kernels split between threads. Each task is one function that every thread runs with the same
 * arguments and its own share number; it computes its part of the output from the arguments and
 * calls the ordinary kernel on that part. The caller's thread runs share 0.
 *
 * Why results do not depend on the number of threads: every task splits its OUTPUT (rows or
 * columns of a product, rows of a weight gradient, runs of elements), never a sum. Each output
 * element is computed by exactly one thread, by the same kernel code, with the same
 * multiply-adds in the same order as when one thread computes all of them. One task splits a
 * sum, in order: the training forward's slices (sparseForwardSlices) each add a run of the
 * terms onto what the slice before stored, so each sum still runs from the first term to the
 * last, as on one thread, and the slices overlap as a pipeline over blocks of rows.
 *
 * Adding a kernel with a row split (say a convolution over batch rows):
 *   1. a function below that reads its arguments, takes rows `part(rows, 1, share, shares)` and
 *      calls the kernel on those rows (offsetting pointers, or passing the row range), with
 *      scratch at `scratch + slot * scratchStride` if it needs any (a thread runs one share at
 *      a time, and a call may have more shares than threads);
 *   2. an entry in TASK and TASKS;
 *   3. in wasm.ts, fill `pool.args` in the same order and call `parallel(TASK.x, work, …)`.
 * Shares can be empty (fewer rows than threads): the function must then do nothing.
 */
import type { KernelExports } from '@descent/kernels-wasm';

/** A task's share: rows (or elements) first..end of its output. */
export interface Part {
  first: number;
  end: number;
}

const part0: Part = { first: 0, end: 0 };

/**
 * The share-th of `shares` nearly equal parts of [0, count), cut at multiples of `align` (so
 * SIMD loops and register tiles stay whole). Reuses one object: read it before the next call.
 */
export function part(count: number, align: number, share: number, shares: number): Part {
  const units = Math.ceil(count / align);
  if (shares === shareCuts.shares) {
    part0.first = Math.min(count, Math.round(units * shareCuts.cuts[share]) * align);
    part0.end = Math.min(count, Math.round(units * shareCuts.cuts[share + 1]) * align);
  } else {
    part0.first = Math.min(count, Math.floor((units * share) / shares) * align);
    part0.end = Math.min(count, Math.floor((units * (share + 1)) / shares) * align);
  }
  return part0;
}

/**
 * Where the shares of the call being run end when the pool sizes them by its threads' speeds
 * (see ThreadPool.shareSpeeds): share s of `shares` is the fraction cuts[s]..cuts[s + 1] of the
 * output, the cuts rising from 0 to 1. `part` uses them for a call of exactly `shares` shares
 * (0: none). Each thread sets this before it runs a share. Where the cuts fall changes which
 * thread computes an output element, never how: the floats stay the same.
 */
export const shareCuts: { shares: number; cuts: Float64Array<ArrayBufferLike> } = { shares: 0, cuts: new Float64Array(2) };

/** `slot` is the thread running the share (0: the caller): the share's scratch is that thread's block. */
export type Task = (wasm: KernelExports, args: Float64Array, share: number, shares: number, slot: number) => void;

/**
 * A product's argument order (gemm, or dense with bias and ReLU): 0 dense?, 1 m, 2 n, 3 k, 4 a,
 * 5 transposeA, 6 b, 7 transposeB, 8 c, 9 accumulate, 10 bias, 11 relu, 12 scratch,
 * 13 scratch per thread.
 */
function product(wasm: KernelExports, args: Float64Array, r0: number, r1: number, c0: number, c1: number, slot: number): void {
  if (r0 >= r1 || c0 >= c1) return;
  const scratch = args[12] + slot * args[13];
  if (args[0]) {
    wasm.denseBlock(args[1], args[2], args[3], args[4], args[6], args[10], args[8], args[11], scratch, r0, r1, c0, c1);
  } else {
    wasm.gemmBlock(args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9], scratch, r0, r1, c0, c1);
  }
}

/** Rows of C, in multiples of the 4-row register tile. */
const productRows: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[1], 4, share, shares);
  product(wasm, args, first, end, 0, args[2], slot);
};

/** Columns of C, in multiples of the 8-column register tile. */
const productColumns: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[2], 8, share, shares);
  product(wasm, args, 0, args[1], first, end, slot);
};

/**
 * The zero-skipping forward (0 m, 1 n, 2 k, 3 x, 4 w, 5 bias, 6 out, 7 relu, 8 scratch,
 * 9 scratch per thread), by rows of x: each row is computed on its own.
 */
const sparseForwardRows: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  const n = args[1], k = args[2];
  wasm.denseSparseInput(
    end - first, n, k, args[3] + first * k * 4, args[4], args[5], args[6] + first * n * 4, args[7], args[8] + slot * args[9],
  );
};

/**
 * The zero-skipping forward (arguments as sparseForwardRows, then 10 flags, 11 stamp) by rows of
 * w, the input features: share s takes features part(k, 1, s, shares), the rows of w that
 * thread's share of the weight gradient and of the optimizer step write (both split by rows of
 * w). The shares run as a pipeline over blocks of rows of x (see denseSparseInputSlice). If a
 * share fails, it frees the shares after it, so none waits forever.
 */
const sparseForwardSlices: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[2], 1, share, shares);
  try {
    wasm.denseSparseInputSlice(
      args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8] + slot * args[9],
      first, end, share, args[10], args[11],
    );
  } catch (error) {
    wasm.releaseSliceFlags(args[10], args[0], args[11] + share + 1);
    throw error;
  }
};

/**
 * The zero-skipping weight gradient (0 k, 1 n, 2 m, 3 x, 4 dz, 5 dw, 6 accumulate, 7 scratch,
 * 8 scratch per thread), by rows of dw (input features).
 */
const sparseWeightGradRows: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  wasm.weightGradSparseInputRows(args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7] + slot * args[8], first, end);
};

/** Adam (0 w, 1 g, 2 m, 3 v, 4 n, 5 lrT, 6 beta1, 7 beta2, 8 epsilon) by runs of 4 elements. */
const adam: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[4], 4, share, shares);
  if (first >= end) return;
  const o = first * 4;
  wasm.adamUpdate(args[0] + o, args[1] + o, args[2] + o, args[3] + o, end - first, args[5], args[6], args[7], args[8]);
};

/** SGD (0 w, 1 g, 2 velocity or 0, 3 n, 4 lr, 5 momentum, 6 nesterov) by runs of 4 elements. */
const sgd: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[3], 4, share, shares);
  if (first >= end) return;
  const o = first * 4;
  wasm.sgdUpdate(args[0] + o, args[1] + o, args[2] === 0 ? 0 : args[2] + o, end - first, args[4], args[5], args[6]);
};

/** Bytes to floats (0 src, 1 n, 2 scale, 3 dst) by runs of 16 bytes. */
const normalizeBytes: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[1], 16, share, shares);
  if (first >= end) return;
  wasm.normalizeBytes(args[0] + first, end - first, args[2], args[3] + first * 4);
};

/** Row-wise softmax (0 m, 1 n, 2 x, 3 out) by rows. */
const softmaxRows: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  const offset = first * args[1] * 4;
  wasm.softmax(end - first, args[1], args[2] + offset, args[3] + offset);
};

/** ReLU's gradient (0 y, 1 dy, 2 dx, 3 n, 4 accumulate) by runs of 4 elements. */
const reluBackward: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[3], 4, share, shares);
  if (first >= end) return;
  const o = first * 4;
  wasm.reluBackward(args[0] + o, args[1] + o, args[2] + o, end - first, args[4]);
};

// Convolution and pooling over NHWC images: args 0–11 are the window's geometry (batch, inHeight,
// inWidth, channels, outHeight, outWidth, windowHeight, windowWidth, strideHeight, strideWidth,
// padTop, padLeft). Images are independent, so a share is a run of images, called as a batch
// of its own with its pointers moved to its first image.

/** Bytes of one input image, and floats of one image's output (or patch rows times patch). */
const inImageBytes = (args: Float64Array): number => args[1] * args[2] * args[3] * 4;
const outImageBytes = (args: Float64Array): number => args[4] * args[5] * args[3] * 4;
const patchImageBytes = (args: Float64Array): number => args[4] * args[5] * args[6] * args[7] * args[3] * 4;

export type WindowArgs = [number, number, number, number, number, number, number, number, number, number, number, number];

/** The window geometry (args 1–11) for `images` images: the first twelve arguments of the window kernels. */
const windowOf = (args: Float64Array, images: number): WindowArgs =>
  [images, args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9], args[10], args[11]];

/** im2col (12 x, 13 col) by images: an image's patch rows are its own rows of col. */
const im2colImages: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  wasm.im2col(
    ...windowOf(args, end - first),
    args[12] + first * inImageBytes(args), args[13] + first * patchImageBytes(args),
  );
};

/** col2im (12 col, 13 dx, 14 clear dx first) by images: patches add onto their own image only. */
const col2imImages: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  const dx = args[13] + first * inImageBytes(args);
  if (args[14]) wasm.fill(dx, ((end - first) * inImageBytes(args)) / 4, 0);
  wasm.col2im(
    ...windowOf(args, end - first),
    args[12] + first * patchImageBytes(args), dx,
  );
};

/** Max pooling (12 x, 13 out) by images. */
const maxPoolImages: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  wasm.maxPool2d(
    ...windowOf(args, end - first),
    args[12] + first * inImageBytes(args), args[13] + first * outImageBytes(args),
  );
};

/** Max pooling's gradient (12 x, 13 y, 14 dy, 15 dx, 16 accumulate) by images: windows stay inside their image. */
const maxPoolGradImages: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  const input = first * inImageBytes(args), output = first * outImageBytes(args);
  wasm.maxPool2dGrad(
    ...windowOf(args, end - first),
    args[12] + input, args[13] + output, args[14] + output, args[15] + input, args[16],
  );
};

// Winograd F(2×2, 3×3) (conv2d_nhwc_winograd_f2x2_3x3.ts): the transforms by images (their
// kernels take the range, since the transformed arrays are [16][tiles][…] over the whole batch),
// the 16 products by positions, each product whole. Winograd geometry: 0 batch, 1 inHeight,
// 2 inWidth, 3 channels, 4 outHeight, 5 outWidth, 6 padTop, 7 padLeft.

/** Input transform (8 x, 9 v, 10 tile scratch, 11 scratch per thread). */
const winogradInput: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  wasm.winogradInputTransformImages(
    args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9], args[10] + slot * args[11], first, end,
  );
};

/** Output transform (0 batch, 1 outHeight, 2 outWidth, 3 filters, 4 m, 5 bias, 6 out, 7 relu, 8 tile scratch, 9 scratch per thread). */
const winogradOutput: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  wasm.winogradOutputTransformImages(
    args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8] + slot * args[9], first, end,
  );
};

/** Output gradient transform (0 batch, 1 outHeight, 2 outWidth, 3 filters, 4 dy, 5 w). */
const winogradGrad: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  wasm.winogradGradTransformImages(args[0], args[1], args[2], args[3], args[4], args[5], first, end);
};

/**
 * Input gradient transform (8 X, 9 dx, 10 tile scratch, 11 scratch per thread, 12 clear dx
 * first): an image's tiles add onto that image's dx only, in the same order.
 */
const winogradInputGrad: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  if (args[12]) {
    const image = args[1] * args[2] * args[3];
    wasm.fill(args[9] + first * image * 4, (end - first) * image, 0);
  }
  wasm.winogradInputGradTransformImages(
    args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9], args[10] + slot * args[11], first, end,
  );
};

/**
 * The 16 products C[p] = op(A[p])·op(B[p]) (0 m, 1 n, 2 k, 3 a, 4 transposeA, 5 b, 6 transposeB,
 * 7 c, 8 scratch, 9 scratch per thread) by positions p: one call for all 16, each product whole.
 */
const winogradProducts: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(16, 1, share, shares);
  const m = args[0], n = args[1], k = args[2];
  for (let p = first; p < end; p++) {
    wasm.gemm(m, n, k, args[3] + p * m * k * 4, args[4], args[5] + p * k * n * 4, args[6], args[7] + p * m * n * 4, false, args[8] + slot * args[9]);
  }
};

/**
 * A convolution's filter gradient skipping dy's zeros (0 m, 1 kdim, 2 n, 3 x, 4 dz, 5 dwT,
 * 6 accumulate, 7 scratch, 8 scratch per thread) by rows of dwT (filters): each share lists its
 * own filters' nonzeros.
 */
const sparseGradRows: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[2], 1, share, shares);
  if (first >= end) return;
  wasm.weightGradSparseGradRows(args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7] + slot * args[8], first, end);
};

/**
 * The same filter gradient read from the image instead of its patch matrix (0–11 geometry,
 * 12 n, 13 x, 14 dz, 15 dwT, 16 accumulate, 17 scratch, 18 scratch per thread), by filters.
 */
const sparseGradDirectRows: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[12], 1, share, shares);
  if (first >= end) return;
  wasm.weightGradSparseGradDirectRows(
    ...windowOf(args, args[0]), args[12], args[13], args[14], args[15], args[16], args[17] + slot * args[18], first, end,
  );
};

/**
 * The filter gradient of small patches (0–11 geometry, 12 filters, 13 x, 14 dy, 15 dw,
 * 16 accumulate, 17 taps scratch, 18 scratch per thread, 19 units) by units of 3 taps × 8 filters.
 */
const filterGradDirectUnits: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[19], 1, share, shares);
  if (first >= end) return;
  wasm.conv2dFilterGradDirect(...windowOf(args, args[0]), args[12], args[13], args[14], args[15], args[16], args[17] + slot * args[18], first, end);
};

/** The direct convolution (0–11 geometry, 12 filters, 13 x, 14 w, 15 bias, 16 out, 17 relu) by images. */
const conv2dDirectImages: Task = (wasm, args, share, shares) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  const outImageBytes = args[4] * args[5] * args[12] * 4;
  wasm.conv2dDirect(
    ...windowOf(args, end - first), args[12], args[13] + first * inImageBytes(args), args[14], args[15], args[16] + first * outImageBytes, args[17],
  );
};

/**
 * A convolution's input gradient skipping dy's zeros, images first..end one at a time: an image's
 * dcol = dy·wᵀ (the zero-skipping forward, rows independent) into `scratch`, then added onto its
 * dx (col2im). The same floats as the whole batch's dcol then col2im, with dcol kept in cache.
 * `scratch` holds one image's dcol (`dcolBytes`), then the forward's own scratch.
 */
export function sparseInputGradImages(
  wasm: KernelExports, window: WindowArgs, filters: number, dy: number, wT: number, bias: number, dx: number, clear: boolean,
  scratch: number, dcolBytes: number, first: number, end: number,
): void {
  const [, inHeight, inWidth, channels, outHeight, outWidth, windowHeight, windowWidth] = window;
  const rows = outHeight * outWidth, patch = windowHeight * windowWidth * channels, imageFloats = inHeight * inWidth * channels;
  const one: WindowArgs = [1, ...window.slice(1)] as WindowArgs;
  for (let image = first; image < end; image++) {
    wasm.denseSparseInput(rows, patch, filters, dy + image * rows * filters * 4, wT, bias, scratch, 0, scratch + dcolBytes);
    const dxImage = dx + image * imageFloats * 4;
    if (clear) wasm.fill(dxImage, imageFloats, 0);
    wasm.col2im(...one, scratch, dxImage);
  }
}

/**
 * sparseInputGradImages (0–11 geometry, 12 filters, 13 dy, 14 wᵀ, 15 zero bias, 16 dx, 17 clear dx
 * first, 18 scratch, 19 scratch per thread, 20 dcol bytes) by images.
 */
const sparseInputGradImagesTask: Task = (wasm, args, share, shares, slot) => {
  const { first, end } = part(args[0], 1, share, shares);
  if (first >= end) return;
  sparseInputGradImages(
    wasm, windowOf(args, args[0]), args[12], args[13], args[14], args[15], args[16], args[17] === 1, args[18] + slot * args[19], args[20], first, end,
  );
};

/** Winograd's geometry: batch, inHeight, inWidth, channels, outHeight, outWidth, padTop, padLeft. */
export type WinogradArgs = [number, number, number, number, number, number, number, number];

const align64 = (bytes: number): number => Math.ceil(bytes / 64) * 64;

/** Scratch of one thread for winogradForwardChunks: a tile, the GEMM's packing, V and M of one chunk. */
export function winogradChunkScratchBytes(wasm: KernelExports, geometry: WinogradArgs, filters: number, chunkImages: number): number {
  const [, , , channels, outHeight, outWidth] = geometry;
  const tiles = chunkImages * Math.ceil(outHeight / 2) * Math.ceil(outWidth / 2);
  return 256 + align64(wasm.gemmScratchBytes(filters, channels)) + align64(16 * tiles * channels * 4) + 16 * tiles * filters * 4;
}

/**
 * Winograd's forward for chunks first..end of `chunkImages` images each: the chunk's input
 * transform V, its 16 products M[p] = V[p]·U[p], its output transform, in the thread's own
 * scratch, so that V and M stay in cache (7 MB for the whole batch of the tutorial CNN's second
 * layer). Each output row's products sum over the channels as for the whole batch: the same floats.
 */
export function winogradForwardChunks(
  wasm: KernelExports, geometry: WinogradArgs, filters: number, x: number, u: number, bias: number, out: number, relu: boolean,
  scratch: number, chunkImages: number, first: number, end: number,
): void {
  const [batch, inHeight, inWidth, channels, outHeight, outWidth, padTop, padLeft] = geometry;
  const tilesPerImage = Math.ceil(outHeight / 2) * Math.ceil(outWidth / 2);
  const tile = scratch, packing = scratch + 256;
  const v = packing + align64(wasm.gemmScratchBytes(filters, channels));
  const m = v + align64(16 * chunkImages * tilesPerImage * channels * 4);
  for (let chunk = first; chunk < end; chunk++) {
    const n0 = chunk * chunkImages, images = Math.min(batch, n0 + chunkImages) - n0, tiles = images * tilesPerImage;
    wasm.winogradInputTransformImages(
      images, inHeight, inWidth, channels, outHeight, outWidth, padTop, padLeft, x + n0 * inHeight * inWidth * channels * 4, v, tile, 0, images,
    );
    for (let p = 0; p < 16; p++) {
      wasm.gemm(tiles, filters, channels, v + p * tiles * channels * 4, false, u + p * channels * filters * 4, false, m + p * tiles * filters * 4, false, packing);
    }
    wasm.winogradOutputTransformImages(images, outHeight, outWidth, filters, m, bias, out + n0 * outHeight * outWidth * filters * 4, relu, tile, 0, images);
  }
}

/** winogradForwardChunks (0–7 geometry, 8 filters, 9 x, 10 U, 11 bias, 12 out, 13 relu, 14 scratch, 15 scratch per thread, 16 images per chunk) by chunks. */
const winogradForwardChunksTask: Task = (wasm, args, share, shares, slot) => {
  const chunkImages = args[16];
  const { first, end } = part(Math.ceil(args[0] / chunkImages), 1, share, shares);
  if (first >= end) return;
  winogradForwardChunks(
    wasm, [args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7]], args[8], args[9], args[10], args[11], args[12], args[13] === 1,
    args[14] + slot * args[15], chunkImages, first, end,
  );
};

/** Nothing: what handing a task to the workers costs by itself (the bench's profile measures it). */
const nothing: Task = () => {};

/** Task numbers, as the control block carries them. */
export const TASK = {
  productRows: 0,
  productColumns: 1,
  sparseForwardRows: 2,
  sparseWeightGradRows: 3,
  adam: 4,
  sgd: 5,
  normalizeBytes: 6,
  softmaxRows: 7,
  nothing: 8,
  reluBackward: 9,
  im2colImages: 10,
  col2imImages: 11,
  maxPoolImages: 12,
  maxPoolGradImages: 13,
  winogradInput: 14,
  winogradOutput: 15,
  winogradGrad: 16,
  winogradInputGrad: 17,
  winogradProducts: 18,
  sparseGradRows: 19,
  sparseForwardSlices: 20,
  sparseGradDirectRows: 21,
  filterGradDirectUnits: 22,
  conv2dDirectImages: 23,
  sparseInputGradImages: 24,
  winogradForwardChunks: 25,
} as const;

export const TASKS: readonly Task[] = [
  productRows, productColumns, sparseForwardRows, sparseWeightGradRows, adam, sgd, normalizeBytes, softmaxRows, nothing,
  reluBackward, im2colImages, col2imImages, maxPoolImages, maxPoolGradImages,
  winogradInput, winogradOutput, winogradGrad, winogradInputGrad, winogradProducts, sparseGradRows,
  sparseForwardSlices, sparseGradDirectRows, filterGradDirectUnits, conv2dDirectImages, sparseInputGradImagesTask, winogradForwardChunksTask,
];

/**
 * Tasks whose shares wait for one another (the forward's slices hand blocks of rows on), so a
 * share's time does not tell its thread's speed.
 */
export const PIPELINED_TASKS: ReadonlySet<number> = new Set([TASK.sparseForwardSlices]);

/** Names for error messages, by task number. */
export const TASK_NAMES: readonly string[] = Object.keys(TASK);
