/**
 * Small SIMD helpers shared by the kernel families.
 *
 * `madd(a, b, c)` is a·b + c per lane. The relaxed-SIMD build turns it into one fused
 * multiply-add (`f32x4.relaxed_madd`); the plain SIMD build multiplies, then adds.
 * The choice is made at compile time, so the plain build contains no relaxed instruction.
 */

// @ts-ignore: decorator
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

// @ts-ignore: decorator
@inline
export function min32(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

/** Sum of the four lanes. */
// @ts-ignore: decorator
@inline
export function hsum(v: v128): f32 {
  const s = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Largest of the four lanes. */
// @ts-ignore: decorator
@inline
export function hmax(v: v128): f32 {
  const s = f32x4.max(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return max<f32>(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
}
