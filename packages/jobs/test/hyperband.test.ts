// Hyperband's schedule against tables worked out by hand from keras-tuner's HyperbandOracle
// (keras_tuner/tuners/hyperband.py):
//   brackets      B = times max_epochs divides by factor while ≥ 1
//   size(s, r)    = ceil( ceil(1 + log(max_epochs, factor)) / (s+1) · factor^(s−r) )
//   epochs(s, r)  = ceil( max_epochs / factor^(s−r) ),  round r > 0 starting at epochs(s, r−1)
// with log(x, b) = ln x / ln b in double precision, as Python's math.log computes it.
import { describe, expect, it } from 'vitest';
import {
  bracketCount, correctlyRoundedLn, hyperbandPlan, plannedEpochs, pythonLog, roundEpochs, roundSize, type HyperbandSettings,
} from '../src/search/hyperband.js';

/** [size, epochs] per round, for brackets B-1 … 0 in the order they run. */
function table(settings: HyperbandSettings): Array<Array<[number, number]>> {
  const brackets = bracketCount(settings.maxEpochs, settings.factor);
  const out: Array<Array<[number, number]>> = [];
  for (let s = brackets - 1; s >= 0; s--) {
    const rounds: Array<[number, number]> = [];
    for (let r = 0; r <= s; r++) rounds.push([roundSize(settings, s, r), roundEpochs(settings, s, r)]);
    out.push(rounds);
  }
  return out;
}

describe('Hyperband schedule (keras-tuner)', () => {
  it('max_epochs 10, factor 3 (the tutorial): 3 brackets, 30 trials, 120 epochs', () => {
    // log3(10) = 2.096 → ceil(3.096) = 4 models survive per bracket-0 round.
    // s=2: 4/3 · 9 = 12 models × ceil(10/9)=2 epochs; 4/3 · 3 = 4 × ceil(10/3)=4; ceil(4/3)=2 × 10
    // s=1: 4/2 · 3 = 6 × 4; 2 × 10.   s=0: 4 × 10.
    const settings = { maxEpochs: 10, factor: 3, iterations: 1 };
    expect(bracketCount(10, 3)).toBe(3);
    expect(table(settings)).toEqual([
      [[12, 2], [4, 4], [2, 10]],
      [[6, 4], [2, 10]],
      [[4, 10]],
    ]);
    const plan = hyperbandPlan(settings);
    expect(plan).toHaveLength(30);
    // Continued trials train only the epochs they add: 12·2 + 4·(4−2) + 2·(10−4) + 6·4 + 2·(10−4) + 4·10.
    expect(plannedEpochs(plan)).toBe(24 + 8 + 12 + 24 + 12 + 40);
    expect(plan.slice(12, 18).map((s) => [s.bracket, s.round, s.rank, s.initialEpoch, s.epochs])).toEqual([
      [2, 1, 0, 2, 4], [2, 1, 1, 2, 4], [2, 1, 2, 2, 4], [2, 1, 3, 2, 4], [2, 2, 0, 4, 10], [2, 2, 1, 4, 10],
    ]);
    expect(plan.map((s) => s.index)).toEqual([...Array(30).keys()]);
  });

  it('max_epochs 8, factor 2: the bracket configs of keras-tuner\'s own test', () => {
    // 8, 4, 2, 1 starting epochs → 4 brackets; ceil(1 + 3) = 4.
    // s=3: 4/4 = 1 → 8×1, 4×2, 2×4, 1×8.  s=2: 4/3 → ceil(5.33)=6×2, ceil(2.67)=3×4, ceil(1.33)=2×8.
    // s=1: 2 → 4×4, 2×8.  s=0: 4×8.
    expect(table({ maxEpochs: 8, factor: 2, iterations: 1 })).toEqual([
      [[8, 1], [4, 2], [2, 4], [1, 8]],
      [[6, 2], [3, 4], [2, 8]],
      [[4, 4], [2, 8]],
      [[4, 8]],
    ]);
  });

  it('max_epochs 9, factor 3: Python\'s log(9, 3) is exactly 2, so 3 models end each bracket', () => {
    // ceil(1 + 2.0) = 3.  s=2: 1 → 9×1, 3×3, 1×9.  s=1: 1.5 → ceil(4.5)=5×3, ceil(1.5)=2×9.  s=0: 3×9.
    // (With Math.log, ln 9 / ln 3 = 2.0000000000000004 and every size would be one round too big.)
    expect(table({ maxEpochs: 9, factor: 3, iterations: 1 })).toEqual([
      [[9, 1], [3, 3], [1, 9]],
      [[5, 3], [2, 9]],
      [[3, 9]],
    ]);
  });

  it('max_epochs 5^6, factor 5: Python\'s log(15625, 5) is 6.000000000000001, and keras-tuner rounds that up', () => {
    // ceil(1 + 6.000000000000001) = 8 (exact arithmetic would give 7): bracket 0 trains 8 models.
    expect(roundSize({ maxEpochs: 15625, factor: 5, iterations: 1 }, 0, 0)).toBe(8);
    // 5^3 = 125: log is 3.0000000000000004 but 1 + that rounds to 4.0, so ceil gives 4.
    expect(roundSize({ maxEpochs: 125, factor: 5, iterations: 1 }, 0, 0)).toBe(4);
    expect(bracketCount(125, 5)).toBe(4);
  });

  it('small and odd settings', () => {
    // max_epochs 1: one bracket, ceil(1 + 0) = 1 model of 1 epoch.
    expect(table({ maxEpochs: 1, factor: 3, iterations: 1 })).toEqual([[[1, 1]]]);
    // max_epochs 2, factor 3: 2 → 0.67: one bracket; ceil(1 + 0.63) = 2 models × 2 epochs.
    expect(table({ maxEpochs: 2, factor: 3, iterations: 1 })).toEqual([[[2, 2]]]);
    // max_epochs 3, factor 3: ceil(1 + 1) = 2.  s=1: 1 → 3×1, 1×3.  s=0: 2×3.
    expect(table({ maxEpochs: 3, factor: 3, iterations: 1 })).toEqual([[[3, 1], [1, 3]], [[2, 3]]]);
  });

  it('iterations repeat the whole set of brackets', () => {
    const one = hyperbandPlan({ maxEpochs: 10, factor: 3, iterations: 1 });
    const two = hyperbandPlan({ maxEpochs: 10, factor: 3, iterations: 2 });
    expect(two).toHaveLength(60);
    expect(two.slice(30).map(({ bracket, round, epochs, initialEpoch }) => [bracket, round, epochs, initialEpoch]))
      .toEqual(one.map(({ bracket, round, epochs, initialEpoch }) => [bracket, round, epochs, initialEpoch]));
    expect(two[30].iteration).toBe(1);
  });
});

describe('Python\'s math.log(x, base)', () => {
  it('matches CPython on exact powers, where Math.log does not', () => {
    // Printed by CPython 3.11: [(f, k, math.log(f**k, f)) for f in 2..10 for k in 1..9 if it is not k].
    const cpython: Array<[number, number, number]> = [
      [3, 5, 4.999999999999999], [5, 3, 3.0000000000000004], [5, 6, 6.000000000000001], [6, 3, 3.0000000000000004],
      [6, 6, 6.000000000000001], [7, 5, 5.000000000000001], [8, 7, 7.000000000000001], [8, 9, 9.000000000000002],
      [9, 5, 4.999999999999999], [10, 3, 2.9999999999999996], [10, 6, 5.999999999999999], [10, 9, 8.999999999999998],
    ];
    const differing: Array<[number, number, number]> = [];
    for (let f = 2; f <= 10; f++) for (let k = 1; k <= 9; k++) if (pythonLog(f ** k, f) !== k) differing.push([f, k, pythonLog(f ** k, f)]);
    expect(differing).toEqual(cpython);
    expect(pythonLog(10, 3)).toBe(2.095903274289385);
    expect(Math.log(9) / Math.log(3)).not.toBe(2); // why pythonLog exists
  });

  it('ln of integers is the double nearest the true value', () => {
    expect(correctlyRoundedLn(1)).toBe(0);
    expect(correctlyRoundedLn(2)).toBe(Math.LN2);
    expect(correctlyRoundedLn(10)).toBe(Math.LN10);
    for (const n of [3, 7, 100, 12345, 2 ** 40 + 1]) expect(Math.abs(correctlyRoundedLn(n) - Math.log(n))).toBeLessThanOrEqual(Number.EPSILON * Math.log(n));
    expect(() => correctlyRoundedLn(0)).toThrow(RangeError);
  });
});
