/**
 * matmul: C = op(A)·op(B), where op transposes when asked (no transpose is ever materialised;
 * the kernel reads the stored layout directly).
 *
 * Math (no transposes): C[i,j] = Σ_p A[i,p]·B[p,j], so
 *   dA = dC·Bᵀ   ([m,n]·[n,k] = [m,k])
 *   dB = Aᵀ·dC   ([k,m]·[m,n] = [k,n])
 * With transposes the same rule is applied to the stored layouts (see the four cases below).
 */
import { addGrad, record } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { ShapeError, formatShape } from '../errors.js';
import { Tensor } from '../tensor.js';

export interface MatmulOptions {
  transposeA?: boolean;
  transposeB?: boolean;
}

export function matmul(a: Tensor, b: Tensor, { transposeA = false, transposeB = false }: MatmulOptions = {}): Tensor {
  if (a.rank !== 2 || b.rank !== 2) {
    throw new ShapeError(`matmul needs two matrices, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  }
  const [m, k] = transposeA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kB, n] = transposeB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k !== kB) {
    throw new ShapeError(
      `matmul: inner dimensions differ: ${formatShape(a.shape)}${transposeA ? 'ᵀ' : ''} · ${formatShape(b.shape)}${transposeB ? 'ᵀ' : ''} (${k} vs ${kB})`,
    );
  }
  const out = Tensor.empty([m, n]);
  kernels().gemm(m, n, k, a.storage, transposeA, b.storage, transposeB, out.storage, false);

  return record('matmul', [a, b], out, (dC) => {
    const K = kernels();
    const dc = dC.storage;
    // Each case writes dA in A's stored layout and dB in B's stored layout, all of it when not
    // accumulating (so fresh gradients need no zeros).
    if (!transposeA && !transposeB) {
      addGrad(a, (dA, acc) => K.gemm(m, k, n, dc, false, b.storage, true, dA, acc), true, true); // dC·Bᵀ
      addGrad(b, (dB, acc) => K.gemm(k, n, m, a.storage, true, dc, false, dB, acc), true, true); // Aᵀ·dC
    } else if (!transposeA && transposeB) {
      addGrad(a, (dA, acc) => K.gemm(m, k, n, dc, false, b.storage, false, dA, acc), true, true); // dC·B
      addGrad(b, (dB, acc) => K.gemm(n, k, m, dc, true, a.storage, false, dB, acc), true, true); // dCᵀ·A
    } else if (transposeA && !transposeB) {
      addGrad(a, (dA, acc) => K.gemm(k, m, n, b.storage, false, dc, true, dA, acc), true, true); // B·dCᵀ
      addGrad(b, (dB, acc) => K.gemm(k, n, m, a.storage, false, dc, false, dB, acc), true, true); // A·dC
    } else {
      addGrad(a, (dA, acc) => K.gemm(k, m, n, b.storage, true, dc, true, dA, acc), true, true); // Bᵀ·dCᵀ
      addGrad(b, (dB, acc) => K.gemm(n, k, m, dc, true, a.storage, true, dB, acc), true, true); // dCᵀ·Aᵀ
    }
  });
}
