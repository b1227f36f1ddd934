export { gemm, dense, gemmScratchBytes } from './gemm_f32_4x8_simd';
export function heapBase(): usize { return __heap_base; }
