/**
 * RMSprop as Keras computes it, in place over n weights w with gradient g:
 *
 *   ms  = ρ·ms + (1-ρ)·g²               running mean of squared gradients
 *   mg  = ρ·mg + (1-ρ)·g                running mean of gradients (centered only; mg = 0 means none)
 *   d   = ms - mg² + ε   (centered)     or   ms + ε
 *   inc = lr · g / √d                   ε inside the root, as Keras and TensorFlow.js put it
 *   mom = μ·mom + inc;  w -= mom        (momentum buffer given)   or   w -= inc
 *
 * `mg` and `mom` are byte offsets of their buffers, or 0 when the variant does not use them.
 */

export function rmspropUpdate(
  w: usize, g: usize, ms: usize, mg: usize, mom: usize, n: i32,
  lr: f64, rho: f64, momentum: f64, epsilon: f64,
): void {
  // Coefficients are rounded to float32 once, from their float64 values.
  const sr = <f32>rho, sc = <f32>(1 - rho), slr = <f32>lr, seps = <f32>epsilon, smu = <f32>momentum;
  const vr = f32x4.splat(sr), vc = f32x4.splat(sc), vlr = f32x4.splat(slr), veps = f32x4.splat(seps), vmu = f32x4.splat(smu);
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const o = <usize>i << 2;
    const gi = v128.load(g + o);
    const msi = f32x4.add(f32x4.mul(vr, v128.load(ms + o)), f32x4.mul(vc, f32x4.mul(gi, gi)));
    v128.store(ms + o, msi);
    let denominator = f32x4.add(msi, veps);
    if (mg != 0) {
      const mgi = f32x4.add(f32x4.mul(vr, v128.load(mg + o)), f32x4.mul(vc, gi));
      v128.store(mg + o, mgi);
      denominator = f32x4.add(f32x4.sub(msi, f32x4.mul(mgi, mgi)), veps);
    }
    let step = f32x4.div(f32x4.mul(vlr, gi), f32x4.sqrt(denominator));
    if (mom != 0) {
      step = f32x4.add(f32x4.mul(vmu, v128.load(mom + o)), step);
      v128.store(mom + o, step);
    }
    v128.store(w + o, f32x4.sub(v128.load(w + o), step));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const msi = sr * load<f32>(ms + o) + sc * (gi * gi);
    store<f32>(ms + o, msi);
    let denominator = msi + seps;
    if (mg != 0) {
      const mgi = sr * load<f32>(mg + o) + sc * gi;
      store<f32>(mg + o, mgi);
      denominator = msi - mgi * mgi + seps;
    }
    let step = (slr * gi) / Mathf.sqrt(denominator);
    if (mom != 0) {
      step = smu * load<f32>(mom + o) + step;
      store<f32>(mom + o, step);
    }
    store<f32>(w + o, load<f32>(w + o) - step);
  }
}
