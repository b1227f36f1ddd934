/**
 * Sparse categorical cross-entropy, fused with softmax, and accuracy.
 *
 * From logits z[m,n] and class indices y[m] (stored as floats):
 *   forward   p = softmax(z) per row;  loss = (1/m) Σ_i (log Σ_j exp(z_ij - max_i) + max_i - z_i,y_i)
 *             (logsumexp - z_label: never the log of a rounded probability)
 *   backward  dz_ij = (p_ij - [j = y_i]) · scale,  scale = upstream gradient / m
 *
 * From probabilities p[m,n], as Keras does when the model ends in softmax:
 *   forward   loss = (1/m) Σ_i -log(clip(p_i,y_i, ε, 1-ε))
 *   backward  dp_i,y_i = -scale / p_i,y_i where the clip was inactive, else 0; 0 elsewhere
 *
 * countCorrect: rows whose arg-max (first maximum wins, like tf.argMax) equals the label.
 *
 * Rows are short (n = number of classes), so these are scalar loops with float64 sums.
 */

// @ts-ignore: decorator
@inline
function labelAt(labels: usize, i: i32): i32 {
  return <i32>load<f32>(labels + (<usize>i << 2));
}

/** Writes probs[m,n] and returns the mean loss. */
export function softmaxCrossEntropyForward(m: i32, n: i32, logits: usize, labels: usize, probs: usize): f64 {
  let loss: f64 = 0;
  for (let i = 0; i < m; i++) {
    const zr = logits + ((<usize>i * n) << 2);
    const pr = probs + ((<usize>i * n) << 2);
    let mx: f32 = -Infinity;
    for (let j = 0; j < n; j++) mx = max<f32>(mx, load<f32>(zr + (<usize>j << 2)));
    let total: f64 = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp(<f64>load<f32>(zr + (<usize>j << 2)) - <f64>mx);
      store<f32>(pr + (<usize>j << 2), <f32>e);
      total += e;
    }
    const inv = 1 / total;
    for (let j = 0; j < n; j++) {
      const p = pr + (<usize>j << 2);
      store<f32>(p, <f32>(<f64>load<f32>(p) * inv));
    }
    loss += Math.log(total) + <f64>mx - <f64>load<f32>(zr + (<usize>labelAt(labels, i) << 2));
  }
  return loss / m;
}

export function softmaxCrossEntropyBackward(m: i32, n: i32, probs: usize, labels: usize, scale: f64, dlogits: usize): void {
  for (let i = 0; i < m; i++) {
    const off = (<usize>i * n) << 2;
    const label = labelAt(labels, i);
    for (let j = 0; j < n; j++) {
      const o = off + (<usize>j << 2);
      const onehot: f64 = j == label ? 1 : 0;
      store<f32>(dlogits + o, <f32>((<f64>load<f32>(probs + o) - onehot) * scale));
    }
  }
}

export function crossEntropyFromProbsForward(m: i32, n: i32, probs: usize, labels: usize, epsilon: f64): f64 {
  let loss: f64 = 0;
  for (let i = 0; i < m; i++) {
    const p = <f64>load<f32>(probs + ((<usize>i * n + labelAt(labels, i)) << 2));
    loss -= Math.log(min<f64>(max<f64>(p, epsilon), 1 - epsilon));
  }
  return loss / m;
}

export function crossEntropyFromProbsBackward(
  m: i32, n: i32, probs: usize, labels: usize, epsilon: f64, scale: f64, dprobs: usize,
): void {
  memory.fill(dprobs, 0, (<usize>m * n) << 2);
  for (let i = 0; i < m; i++) {
    const o = (<usize>i * n + labelAt(labels, i)) << 2;
    const p = <f64>load<f32>(probs + o);
    // The clip passes the gradient inside [ε, 1-ε] and blocks it outside.
    if (p >= epsilon && p <= 1 - epsilon) store<f32>(dprobs + o, <f32>(-scale / p));
  }
}

export function countCorrect(m: i32, n: i32, scores: usize, labels: usize): i32 {
  let correct = 0;
  for (let i = 0; i < m; i++) {
    const row = scores + ((<usize>i * n) << 2);
    let best = 0;
    let bestValue = load<f32>(row);
    for (let j = 1; j < n; j++) {
      const v = load<f32>(row + (<usize>j << 2));
      if (v > bestValue) {
        best = j;
        bestValue = v;
      }
    }
    if (best == labelAt(labels, i)) correct++;
  }
  return correct;
}
