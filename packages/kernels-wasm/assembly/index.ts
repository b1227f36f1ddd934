/**
 * The kernels' exports. Every kernel takes byte offsets into this module's memory and
 * explicit sizes; nothing here allocates. The host runs the allocator from `heapBase()` up
 * and grows the exported memory itself.
 *
 * The threads builds import a shared memory instead: one instance per thread, all over the
 * same memory. A kernel writes only where its caller points it (its output and its scratch);
 * the little state it keeps between calls is in globals, which each instance has its own of.
 */
export { fill, copy, addInto, multiply, scale, axpy, sum, dot, normalizeBytes } from './elementwise';
export { gemm, gemmBlock, gemmScratchBytes } from './gemm_f32_4x8_simd';
export { dense, denseBlock, biasAdd, columnSums } from './dense';
export {
  denseSparseInput, denseSparseInputSlice, sliceFlagsBytes, releaseSliceFlags, weightGradSparseInput, weightGradSparseInputRows, sparseInputScratchBytes, countZeros,
} from './dense_sparse_input';
export { reluForward, reluBackward, softmax, logSoftmax, softmaxBackward, logSoftmaxBackward } from './activations';
export {
  softmaxCrossEntropyForward, softmaxCrossEntropyBackward,
  crossEntropyFromProbsForward, crossEntropyFromProbsBackward, countCorrect,
} from './softmax_cross_entropy';
export { sgdUpdate, adamUpdate } from './optimizers';
export { im2col, col2im } from './conv2d_nhwc_im2col';
export { conv2dDirect } from './conv2d_nhwc_direct';
export { conv2dFilterGradDirect, filterGradDirectUnits, filterGradDirectScratchBytes } from './conv2d_nhwc_filter_grad_direct';
export {
  weightGradSparseGrad, weightGradSparseGradRows, sparseGradScratchBytes, weightGradSparseGradDirectRows, sparseGradDirectScratchBytes, transpose,
} from './sparse_gradient';
export {
  winogradFilterTransform, winogradInputTransform, winogradOutputTransform,
  winogradGradTransform, winogradFilterGradTransform, winogradInputGradTransform,
  winogradInputTransformImages, winogradOutputTransformImages, winogradGradTransformImages, winogradInputGradTransformImages,
} from './conv2d_nhwc_winograd_f2x2_3x3';
export { maxPool2d, maxPool2dGrad } from './maxpool_nhwc_simd';
export { rmspropUpdate } from './rmsprop';

/** First byte past the module's static data: where the host's heap may start. */
export function heapBase(): usize {
  return __heap_base;
}

/** 1 when built with relaxed SIMD (fused multiply-add in the GEMM), else 0. */
export function relaxedSimd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

/** 1 for a threads build (imported shared memory), else 0. */
export function sharedMemory(): i32 {
  return ASC_FEATURE_THREADS ? 1 : 0;
}
