import type { Kernels } from './kernels.js';
export function createWasmKernels(): Kernels { throw new Error('wasm kernels not built'); }
