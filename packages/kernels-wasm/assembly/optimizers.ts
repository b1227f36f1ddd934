/**
 * Parameter updates, in place over n weights w with gradient g.
 *
 *   SGD            w -= lr · g                                   (no velocity buffer: v = 0)
 *   momentum       v = μ·v - lr·g;  w += v
 *   Nesterov       v = μ·v - lr·g;  w += μ·v - lr·g
 *   Adam (Keras epsilon-hat form; the caller folds the bias corrections into lrT):
 *                  m = β1·m + (1-β1)·g
 *                  v = β2·v + (1-β2)·g²
 *                  w -= lrT · m / (√v + ε),   lrT = lr·√(1-β2ᵗ)/(1-β1ᵗ)
 *
 * Slots that fall below the smallest normal float32 (2⁻¹²⁶) are stored as 0, as TensorFlow's CPU
 * kernels do (they run with flush-to-zero). Without it the moments of weights whose gradient is
 * always 0 (inputs that are always 0, ReLU units that never fire) decay geometrically into
 * subnormal numbers, which x86 handles in microcode at ~100 cycles an operation and WASM cannot
 * switch off: a tenth of Adam's first moments after one Fashion-MNIST epoch, and Adam took three
 * times as long. The weights then move by at most lrT·2⁻¹²⁶/ε ≈ 1e-35 less; NaN stays NaN.
 * Adam's first moment goes to 0 sooner, once lrT·m would be subnormal (|m| < 2⁻¹²⁶/lrT, about
 * 1e-35 at lr 1e-3; TensorFlow flushes that product): on its way down a decaying m otherwise
 * spent ~65 steps in that band, each making a subnormal product, and in steps 400–1200 of the
 * first Fashion-MNIST epoch enough moments were there to make Adam 25% slower.
 */

/** The smallest normal float32, 2⁻¹²⁶. */
const MIN_NORMAL: f32 = 1.1754943508222875e-38;

/**
 * Below this, Adam stores a first moment as 0: 2⁻¹²⁶/lrT (where lrT·m turns subnormal), kept
 * within [2⁻¹²⁶, 2⁻¹⁰⁰] so that a tiny step size (a warm-up from 0) keeps its moments; 2⁻¹²⁶ at lrT 0.
 */
function adamMomentFloor(lrT: f32): f32 {
  if (lrT == 0) return MIN_NORMAL;
  const floor = MIN_NORMAL / Mathf.abs(lrT);
  return floor < MIN_NORMAL ? MIN_NORMAL : floor > MAX_MOMENT_FLOOR ? MAX_MOMENT_FLOOR : floor;
}

/** 2⁻¹⁰⁰: the largest floor `adamMomentFloor` gives. */
const MAX_MOMENT_FLOOR: f32 = 7.888609052210118e-31;

/** x, or +0 where |x| < 2⁻¹²⁶ (NaN passes). */
// @ts-ignore: decorator
@inline
function flushSubnormals(x: v128, minNormal: v128): v128 {
  return v128.andnot(x, f32x4.lt(f32x4.abs(x), minNormal));
}

// @ts-ignore: decorator
@inline
function flushSubnormal(x: f32, floor: f32 = MIN_NORMAL): f32 {
  return Mathf.abs(x) < floor ? 0 : x;
}

export function sgdUpdate(w: usize, g: usize, velocity: usize, n: i32, lr: f32, momentum: f32, nesterov: bool): void {
  const vlr = f32x4.splat(lr);
  const n4 = n & ~3;
  let i = 0;
  if (velocity == 0) {
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      v128.store(w + o, f32x4.sub(v128.load(w + o), f32x4.mul(vlr, v128.load(g + o))));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(w + o, load<f32>(w + o) - lr * load<f32>(g + o));
    }
    return;
  }
  const vmu = f32x4.splat(momentum);
  const tiny = f32x4.splat(MIN_NORMAL);
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    const step = f32x4.mul(vlr, v128.load(g + o));
    const v = flushSubnormals(f32x4.sub(f32x4.mul(vmu, v128.load(velocity + o)), step), tiny);
    v128.store(velocity + o, v);
    const dw = nesterov ? f32x4.sub(f32x4.mul(vmu, v), step) : v;
    v128.store(w + o, f32x4.add(v128.load(w + o), dw));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const step = lr * load<f32>(g + o);
    const v = flushSubnormal(momentum * load<f32>(velocity + o) - step);
    store<f32>(velocity + o, v);
    store<f32>(w + o, load<f32>(w + o) + (nesterov ? momentum * v - step : v));
  }
}

export function adamUpdate(
  w: usize, g: usize, m: usize, v: usize, n: i32,
  lrT: f64, beta1: f64, beta2: f64, epsilon: f64,
): void {
  // Coefficients are rounded to float32 once, from their float64 values.
  const sb1 = <f32>beta1, sc1 = <f32>(1 - beta1), sb2 = <f32>beta2, sc2 = <f32>(1 - beta2);
  const slr = <f32>lrT, seps = <f32>epsilon;
  const b1 = f32x4.splat(sb1), c1 = f32x4.splat(sc1);
  const b2 = f32x4.splat(sb2), c2 = f32x4.splat(sc2);
  const vlr = f32x4.splat(slr), veps = f32x4.splat(seps);
  const tiny = f32x4.splat(MIN_NORMAL);
  const smallestMoment = adamMomentFloor(slr);
  const mFloor = f32x4.splat(smallestMoment);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    const gi = v128.load(g + o);
    const mi = flushSubnormals(f32x4.add(f32x4.mul(b1, v128.load(m + o)), f32x4.mul(c1, gi)), mFloor);
    const vi = flushSubnormals(f32x4.add(f32x4.mul(b2, v128.load(v + o)), f32x4.mul(c2, f32x4.mul(gi, gi))), tiny);
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const step = f32x4.div(f32x4.mul(vlr, mi), f32x4.add(f32x4.sqrt(vi), veps));
    v128.store(w + o, f32x4.sub(v128.load(w + o), step));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const mi = flushSubnormal(sb1 * load<f32>(m + o) + sc1 * gi, smallestMoment);
    const vi = flushSubnormal(sb2 * load<f32>(v + o) + sc2 * (gi * gi));
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(w + o, load<f32>(w + o) - (slr * mi) / (Mathf.sqrt(vi) + seps));
  }
}
