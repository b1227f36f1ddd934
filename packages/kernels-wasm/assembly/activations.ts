/**
 * Activations, forward and backward.
 *
 *   ReLU          y = x < 0 ? 0 : x  (NaN passes)    dx = dy · [y > 0]   (from the output y)
 *   softmax       y_j = exp(x_j - max) / Σ_k exp(x_k - max)     (row-wise over x[m,n])
 *                 dx_j = y_j · (dy_j - Σ_k dy_k · y_k)
 *   log-softmax   y_j = x_j - max - log Σ_k exp(x_k - max)
 *                 dx_j = dy_j - exp(y_j) · Σ_k dy_k
 *
 * ReLU is lane-parallel. The row-wise kernels work on class scores (n is small, 10 for
 * MNIST), so they are scalar and keep their sums in float64; subtracting the row max first
 * keeps exp from overflowing.
 */

export function reluForward(x: usize, out: usize, n: i32): void {
  const zero = f32x4.splat(0);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    // pmax(x, 0) is `x < 0 ? 0 : x`: NaN passes through so a diverging run shows in the loss.
    v128.store(out + o, f32x4.pmax(v128.load(x + o), zero));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(out + o, v < 0 ? 0 : v);
  }
}

/** dx = dy where y > 0, else 0; or dx += that when `accumulate`. */
export function reluBackward(y: usize, dy: usize, dx: usize, n: i32, accumulate: bool): void {
  const zero = f32x4.splat(0);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    // The comparison yields all-ones lanes where y > 0: a mask that keeps dy there.
    let g = v128.and(v128.load(dy + o), f32x4.gt(v128.load(y + o), zero));
    if (accumulate) g = f32x4.add(v128.load(dx + o), g);
    v128.store(dx + o, g);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    let g: f32 = load<f32>(y + o) > 0 ? load<f32>(dy + o) : 0;
    if (accumulate) g += load<f32>(dx + o);
    store<f32>(dx + o, g);
  }
}

// @ts-ignore: decorator
@inline
function rowMax(row: usize, n: i32): f32 {
  let m: f32 = -Infinity;
  for (let j = 0; j < n; j++) m = max<f32>(m, load<f32>(row + (<usize>j << 2)));
  return m;
}

export function softmax(m: i32, n: i32, x: usize, out: usize): void {
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2);
    const or = out + ((<usize>i * n) << 2);
    const mx = <f64>rowMax(xr, n);
    let total: f64 = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp(<f64>load<f32>(xr + (<usize>j << 2)) - mx);
      store<f32>(or + (<usize>j << 2), <f32>e);
      total += e;
    }
    const inv = 1 / total;
    for (let j = 0; j < n; j++) {
      const p = or + (<usize>j << 2);
      store<f32>(p, <f32>(<f64>load<f32>(p) * inv));
    }
  }
}

export function logSoftmax(m: i32, n: i32, x: usize, out: usize): void {
  for (let i = 0; i < m; i++) {
    const xr = x + ((<usize>i * n) << 2);
    const or = out + ((<usize>i * n) << 2);
    const mx = <f64>rowMax(xr, n);
    let total: f64 = 0;
    for (let j = 0; j < n; j++) total += Math.exp(<f64>load<f32>(xr + (<usize>j << 2)) - mx);
    const shift = mx + Math.log(total);
    for (let j = 0; j < n; j++) {
      store<f32>(or + (<usize>j << 2), <f32>(<f64>load<f32>(xr + (<usize>j << 2)) - shift));
    }
  }
}

export function softmaxBackward(m: i32, n: i32, y: usize, dy: usize, dx: usize): void {
  for (let i = 0; i < m; i++) {
    const off = (<usize>i * n) << 2;
    let weighted: f64 = 0;
    for (let j = 0; j < n; j++) {
      const o = off + (<usize>j << 2);
      weighted += <f64>load<f32>(dy + o) * <f64>load<f32>(y + o);
    }
    for (let j = 0; j < n; j++) {
      const o = off + (<usize>j << 2);
      store<f32>(dx + o, <f32>(<f64>load<f32>(y + o) * (<f64>load<f32>(dy + o) - weighted)));
    }
  }
}

export function logSoftmaxBackward(m: i32, n: i32, y: usize, dy: usize, dx: usize): void {
  for (let i = 0; i < m; i++) {
    const off = (<usize>i * n) << 2;
    let total: f64 = 0;
    for (let j = 0; j < n; j++) total += <f64>load<f32>(dy + off + (<usize>j << 2));
    for (let j = 0; j < n; j++) {
      const o = off + (<usize>j << 2);
      store<f32>(dx + o, <f32>(<f64>load<f32>(dy + o) - Math.exp(<f64>load<f32>(y + o)) * total));
    }
  }
}
