/**
 * The kernels' exports. Every kernel takes byte offsets into this module's memory and
 * explicit sizes; nothing here allocates. The host runs the allocator from `heapBase()` up
 * and grows the exported memory itself.
 */
export { fill, copy, addInto, multiply, scale, axpy, sum, dot, normalizeBytes } from './elementwise';
export { gemm, gemmScratchBytes } from './gemm_f32_4x8_simd';
export { dense, biasAdd, columnSums } from './dense';
export { denseSparseInput, weightGradSparseInput, sparseInputScratchBytes, countZeros } from './dense_sparse_input';
export { reluForward, reluBackward, softmax, logSoftmax, softmaxBackward, logSoftmaxBackward } from './activations';
export {
  softmaxCrossEntropyForward, softmaxCrossEntropyBackward,
  crossEntropyFromProbsForward, crossEntropyFromProbsBackward, countCorrect,
} from './softmax_cross_entropy';
export { sgdUpdate, adamUpdate } from './optimizers';
export { im2col, col2im } from './conv2d_nhwc_im2col';
export { conv2dDirect } from './conv2d_nhwc_direct';
export { weightGradSparseGrad, sparseGradScratchBytes, transpose } from './sparse_gradient';
export {
  winogradFilterTransform, winogradInputTransform, winogradOutputTransform,
  winogradGradTransform, winogradFilterGradTransform, winogradInputGradTransform,
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
