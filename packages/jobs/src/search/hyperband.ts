/**
 * Hyperband's schedule, exactly as keras-tuner's HyperbandOracle computes it, so a search here
 * and one in Keras with the same max_epochs and factor train the same number of models for the
 * same epochs (Li et al., "Hyperband: A Novel Bandit-Based Approach to Hyperparameter
 * Optimization", JMLR 18, 2018).
 *
 * An iteration runs brackets s = B-1 … 0 (most aggressive first), where B counts how many times
 * max_epochs can be divided by the factor before dropping below 1. Bracket s has s+1 rounds of
 * successive halving; round r trains
 *     size(s, r)   = ceil( ceil(1 + log_factor(max_epochs)) / (s+1) · factor^(s−r) )   models
 *     epochs(s, r) = ceil( max_epochs / factor^(s−r) )                                  epochs each,
 * and the models of round r > 0 are the best of round r−1, continued from the weights of their
 * best epoch, from epoch epochs(s, r−1) up to epochs(s, r). Bracket 0 is a plain random search
 * with max_epochs each.
 *
 * max_epochs 10, factor 3 (the tutorial's search): B = 3;
 *     bracket 2: 12 models × 2 epochs → best 4 to epoch 4 → best 2 to epoch 10
 *     bracket 1:  6 models × 4 epochs → best 2 to epoch 10
 *     bracket 0:  4 models × 10 epochs
 * 30 trials, 120 epochs of training.
 */

export interface HyperbandSettings {
  maxEpochs: number;
  factor: number;
  /** Times to run the whole set of brackets (keras-tuner's hyperband_iterations). */
  iterations: number;
}

/** One trial of the plan, in the order one keras-tuner worker creates them. */
export interface HyperbandSlot {
  /** 0-based position in the plan: the trial's number. */
  index: number;
  iteration: number;
  bracket: number;
  round: number;
  /** Position within its round: for round > 0, the rank (0 = best) of the trial it continues. */
  rank: number;
  /** Train up to this epoch… */
  epochs: number;
  /** …starting at this one (0 in round 0). */
  initialEpoch: number;
}

/** keras-tuner's _get_num_brackets: how many times max_epochs divides by factor while ≥ 1 (min_epochs). */
export function bracketCount(maxEpochs: number, factor: number): number {
  let epochs = maxEpochs;
  let brackets = 0;
  while (epochs >= 1) {
    epochs = epochs / factor;
    brackets++;
  }
  return brackets;
}

/** keras-tuner's _get_size: models in round `round` of bracket `bracket`. */
export function roundSize({ maxEpochs, factor }: HyperbandSettings, bracket: number, round: number): number {
  const lastBracketEnd = Math.ceil(1 + pythonLog(maxEpochs, factor));
  const bracketEnd = lastBracketEnd / (bracket + 1);
  return Math.ceil(bracketEnd * factor ** (bracket - round));
}

/** keras-tuner's _get_epochs: the epoch each model of this round trains up to. */
export function roundEpochs({ maxEpochs, factor }: HyperbandSettings, bracket: number, round: number): number {
  return Math.ceil(maxEpochs / factor ** (bracket - round));
}

/** Every trial of the search, in the order a single keras-tuner worker runs them. */
export function hyperbandPlan(settings: HyperbandSettings): HyperbandSlot[] {
  const slots: HyperbandSlot[] = [];
  const brackets = bracketCount(settings.maxEpochs, settings.factor);
  for (let iteration = 0; iteration < settings.iterations; iteration++) {
    for (let bracket = brackets - 1; bracket >= 0; bracket--) {
      for (let round = 0; round <= bracket; round++) {
        const size = roundSize(settings, bracket, round);
        const epochs = roundEpochs(settings, bracket, round);
        const initialEpoch = round === 0 ? 0 : roundEpochs(settings, bracket, round - 1);
        for (let rank = 0; rank < size; rank++) slots.push({ index: slots.length, iteration, bracket, round, rank, epochs, initialEpoch });
      }
    }
  }
  return slots;
}

/** Total epochs the plan trains, if no trial stops early. */
export function plannedEpochs(slots: readonly HyperbandSlot[]): number {
  return slots.reduce((sum, slot) => sum + slot.epochs - slot.initialEpoch, 0);
}

/**
 * Python's math.log(x, base) for positive integers: log(x) / log(base), each log correctly
 * rounded (as the C library Python calls gives them), then divided in double precision.
 * Math.log is not always correctly rounded (Math.log(9) / Math.log(3) is 2.0000000000000004
 * where Python gets 2.0), and a ceil over the ratio turns one ulp into a whole extra round.
 */
export function pythonLog(x: number, base: number): number {
  return correctlyRoundedLn(x) / correctlyRoundedLn(base);
}

const BITS = 256n;
const ONE = 1n << BITS;

/** ln(n) for a positive integer n, rounded to the nearest double: computed in 256-bit fixed point. */
export function correctlyRoundedLn(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`correctlyRoundedLn needs a positive integer, got ${n}`);
  // n = 2^k · m with m in [1, 2); ln n = k·ln 2 + ln m, and ln m = 2·atanh((m−1)/(m+1)).
  let k = 0n;
  let m = BigInt(n) << BITS;
  while (m >= 2n * ONE) {
    m >>= 1n;
    k++;
  }
  const scaled = k * LN2 + twiceAtanh(((m - ONE) << BITS) / (m + ONE));
  // Number(bigint) rounds to nearest; dividing by a power of two is exact.
  return Number(scaled) / 2 ** Number(BITS);
}

/** 2·atanh(t) = 2·(t + t³/3 + t⁵/5 + …) for a fixed-point t ≤ 1/3. */
function twiceAtanh(t: bigint): bigint {
  const t2 = (t * t) >> BITS;
  let power = t;
  let sum = 0n;
  for (let i = 1n; power !== 0n; i += 2n) {
    sum += power / i;
    power = (power * t2) >> BITS;
  }
  return 2n * sum;
}

const LN2 = twiceAtanh(ONE / 3n);
