/**
 * The Kernels interface: the only way the engine touches numbers in bulk.
 *
 * Autodiff, ops, layers and optimizers never loop over tensor data themselves;
 * they call a backend through this interface. Two backends implement it:
 *   - `reference.ts`: plain TypeScript, written to be read (and run in float64 for gradient checks);
 *   - `wasm.ts`: drives the AssemblyScript SIMD kernels of `@descent/kernels-wasm`.
 *
 * Buffers are backend-owned `Storage` handles rather than bare typed arrays, so the WASM
 * backend can keep every tensor of a training step inside its linear memory and pass plain
 * pointers to its kernels: no copies in or out except the input batch.
 *
 * Matrices are row-major. Shapes are passed explicitly; kernels do not check them (ops do).
 */

/** A float32 (or, for the reference backend's gradient checks, float64) array. */
export type FloatArray = Float32Array | Float64Array;

/** A float buffer owned by a backend. */
export interface Storage {
  /** Number of elements. */
  readonly length: number;
  /**
   * A live view of the elements. For the WASM backend it is re-created when linear memory
   * grows (growing detaches the old ArrayBuffer), so read it again after any allocation
   * rather than holding on to it.
   */
  readonly data: FloatArray;
  /** Byte offset in WASM linear memory, or -1 for backends that have none. */
  readonly ptr: number;
}

/** A byte buffer owned by a backend: the staging area for a batch of u8 pixels. */
export interface ByteStorage {
  readonly length: number;
  readonly data: Uint8Array;
  readonly ptr: number;
}

/**
 * Where a 2-D window (a convolution kernel or a pooling window) slides over a batch of NHWC
 * images [batch, inHeight, inWidth, channels]: output pixel (oh, ow) reads input rows
 * oh·strideHeight − padTop + (0 … windowHeight−1) and columns ow·strideWidth − padLeft +
 * (0 … windowWidth−1); positions outside the image are padding (zeros for a convolution, left
 * out for max pooling). See ops/window.ts for how Keras's 'valid' and 'same' fix the sizes.
 */
export interface Window2d {
  batch: number;
  inHeight: number;
  inWidth: number;
  /** Channels of the input (the last axis). */
  channels: number;
  outHeight: number;
  outWidth: number;
  windowHeight: number;
  windowWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

export interface Kernels {
  /** 'ts' for the reference kernels, 'wasm' for the SIMD kernels. */
  readonly name: 'ts' | 'wasm';
  /** Element type of every Storage this backend hands out. */
  readonly precision: 'float32' | 'float64';

  // ---- memory -------------------------------------------------------------------------
  /**
   * A zero-filled buffer of `length` elements; with `zeroed` false its values are whatever the
   * memory held (for an output that a kernel then writes entirely).
   */
  alloc(length: number, zeroed?: boolean): Storage;
  /** Give a buffer back; it may be handed out again by a later `alloc` of the same length. */
  free(storage: Storage): void;
  allocBytes(length: number): ByteStorage;
  freeBytes(storage: ByteStorage): void;
  /** Bytes currently held by the backend (for leak checks and benchmarks). */
  memoryBytes(): number;
  /**
   * Whether `storage` is a live buffer of this backend, so that its kernels can read it where it
   * is (a tensor made under another backend is not, and must be copied).
   */
  holds(storage: Storage): boolean;

  // ---- elementwise --------------------------------------------------------------------
  /** out[i] = value */
  fill(out: Storage, value: number): void;
  /** dst[i] = src[i] */
  copy(src: Storage, dst: Storage): void;
  /** dst[i] += src[i] (gradient accumulation) */
  addInto(src: Storage, dst: Storage): void;
  /** out[i] = a[i] * b[i] */
  multiply(a: Storage, b: Storage, out: Storage): void;
  /** out[i] = a[i] * scale */
  scale(a: Storage, scale: number, out: Storage): void;
  /** y[i] += alpha * x[i] */
  axpy(alpha: number, x: Storage, y: Storage): void;
  /** Σ x[i] */
  sum(x: Storage): number;
  /** Σ a[i]·b[i] */
  dot(a: Storage, b: Storage): number;
  /** dst[i] = src[i] * scale for the first `length` bytes of src: a batch of pixels to floats. */
  normalizeBytes(src: ByteStorage, length: number, scale: number, dst: Storage): void;

  // ---- matrix products ----------------------------------------------------------------
  /**
   * C[m,n] = op(A)·op(B), or C += op(A)·op(B) when `accumulate`.
   * op(A) is [m,k]: A is stored [m,k], or [k,m] when transposeA.
   * op(B) is [k,n]: B is stored [k,n], or [n,k] when transposeB.
   * Training needs X·W (forward), dY·Wᵀ (input gradient) and Xᵀ·dY (weight gradient).
   */
  gemm(
    m: number, n: number, k: number,
    a: Storage, transposeA: boolean,
    b: Storage, transposeB: boolean,
    c: Storage, accumulate: boolean,
  ): void;
  /** out[m,n] = x[m,n] + bias[n], broadcast over rows (out may be x). */
  biasAdd(m: number, n: number, x: Storage, bias: Storage, out: Storage): void;
  /** out[n] = Σ_i x[i,n] (the bias gradient), or out += when `accumulate`. */
  columnSums(m: number, n: number, x: Storage, out: Storage, accumulate: boolean): void;
  /** Fused dense layer: out[m,n] = act(x[m,k]·w[k,n] + bias[n]), act = relu or identity. */
  denseForward(
    m: number, n: number, k: number,
    x: Storage, w: Storage, bias: Storage, out: Storage, relu: boolean,
  ): void;

  // ---- convolution and pooling (NHWC) ------------------------------------------------
  /**
   * out[n,oh,ow,f] = act(bias[f] + Σ_{kh,kw,c} x[n, oh·sh−pt+kh, ow·sw−pl+kw, c] · w[kh,kw,c,f]),
   * x [batch, inHeight, inWidth, channels], w [windowHeight, windowWidth, channels, filters],
   * out [batch, outHeight, outWidth, filters]; padding reads as 0; act = relu or identity.
   */
  conv2d(g: Window2d, filters: number, x: Storage, w: Storage, bias: Storage, out: Storage, relu: boolean): void;
  /** dx[n,ih,iw,c] = Σ over the outputs that read it of dy[n,oh,ow,f]·w[kh,kw,c,f] (or dx += when `accumulate`). */
  conv2dInputGrad(g: Window2d, filters: number, dy: Storage, w: Storage, dx: Storage, accumulate: boolean): void;
  /** dw[kh,kw,c,f] = Σ_{n,oh,ow} x[n, oh·sh−pt+kh, ow·sw−pl+kw, c]·dy[n,oh,ow,f] (or dw += when `accumulate`). */
  conv2dFilterGrad(g: Window2d, filters: number, x: Storage, dy: Storage, dw: Storage, accumulate: boolean): void;
  /** out[n,oh,ow,c] = max of x over the window's positions inside the image (NaN wins). */
  maxPool2d(g: Window2d, x: Storage, out: Storage): void;
  /**
   * Sends dy[n,oh,ow,c] to the first position of its window (row by row) where x equals the
   * pooled value y, as TensorFlow does; windows that overlap add up (dx = … or dx += …).
   */
  maxPool2dGrad(g: Window2d, x: Storage, y: Storage, dy: Storage, dx: Storage, accumulate: boolean): void;

  // ---- activations --------------------------------------------------------------------
  /** out[i] = max(x[i], 0) */
  reluForward(x: Storage, out: Storage): void;
  /** dx[i] = y[i] > 0 ? dy[i] : 0, from the ReLU's output y (or += into dx when `accumulate`). */
  reluBackward(y: Storage, dy: Storage, dx: Storage, accumulate: boolean): void;
  /** Row-wise softmax of x[m,n] into out (max-subtracted). */
  softmax(m: number, n: number, x: Storage, out: Storage): void;
  /** Row-wise log-softmax: out = x - max - log Σ exp(x - max). */
  logSoftmax(m: number, n: number, x: Storage, out: Storage): void;
  /** Softmax backward from its output y: dx = y ∘ (dy - Σ_j dy_j·y_j) per row. */
  softmaxBackward(m: number, n: number, y: Storage, dy: Storage, dx: Storage): void;
  /** Log-softmax backward from its output y: dx = dy - exp(y) · Σ_j dy_j per row. */
  logSoftmaxBackward(m: number, n: number, y: Storage, dy: Storage, dx: Storage): void;

  // ---- losses -------------------------------------------------------------------------
  /**
   * Fused softmax + sparse categorical cross-entropy from logits[m,n] and class indices
   * labels[m] (stored as floats). Writes probs[m,n] and returns the mean loss over rows,
   * computed as logsumexp - z[label] (never log of a rounded probability).
   */
  softmaxCrossEntropyForward(m: number, n: number, logits: Storage, labels: Storage, probs: Storage): number;
  /** dlogits[i,j] = (probs[i,j] - onehot(labels[i])[j]) * scale; scale is upstream/m. */
  softmaxCrossEntropyBackward(m: number, n: number, probs: Storage, labels: Storage, scale: number, dlogits: Storage): void;
  /**
   * Sparse categorical cross-entropy from probabilities, as Keras computes it:
   * mean over rows of -log(clip(p[label], ε, 1-ε)).
   */
  crossEntropyFromProbsForward(m: number, n: number, probs: Storage, labels: Storage, epsilon: number): number;
  /**
   * Its gradient: dprobs[i,label] = -scale / p[i,label] where the clip was inactive, else 0;
   * every other entry 0.
   */
  crossEntropyFromProbsBackward(m: number, n: number, probs: Storage, labels: Storage, epsilon: number, scale: number, dprobs: Storage): void;
  /** Number of rows whose arg-max equals the label (first max wins, like tf.argMax). */
  countCorrect(m: number, n: number, scores: Storage, labels: Storage): number;

  // ---- optimizers ---------------------------------------------------------------------
  /**
   * SGD with momentum: v = momentum·v - lr·g; w += v (or w += momentum·v - lr·g when nesterov).
   * With momentum 0 and `velocity` null: w -= lr·g.
   */
  sgdUpdate(w: Storage, g: Storage, velocity: Storage | null, lr: number, momentum: number, nesterov: boolean): void;
  /**
   * Adam in Keras's epsilon-hat form: m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
   * w -= lrT · m / (√v + ε), where lrT = lr·√(1-β2ᵗ)/(1-β1ᵗ) is computed by the caller.
   */
  adamUpdate(w: Storage, g: Storage, m: Storage, v: Storage, lrT: number, beta1: number, beta2: number, epsilon: number): void;
  /**
   * RMSprop as Keras computes it: ms = ρ·ms + (1-ρ)·g²; centered (mg given): mg = ρ·mg + (1-ρ)·g,
   * d = ms - mg² + ε, else d = ms + ε; inc = lr·g/√d; with a momentum buffer mom = μ·mom + inc and
   * w -= mom, else w -= inc.
   */
  rmspropUpdate(w: Storage, g: Storage, ms: Storage, mg: Storage | null, mom: Storage | null, lr: number, rho: number, momentum: number, epsilon: number): void;
}
