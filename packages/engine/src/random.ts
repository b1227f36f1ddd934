/**
 * The engine's one source of randomness: xoshiro128** (Blackman & Vigna, 2018), a 32-bit
 * generator with 128 bits of state, seeded by running splitmix32 over the seed. It drives
 * weight initialisation, shuffling and dropout masks, so the same seed gives the same run.
 * Its state can be saved and restored, which is how an interrupted run resumes exactly.
 */
export class Random {
  private state: Uint32Array;

  constructor(seed: number) {
    this.state = new Uint32Array(4);
    let s = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32: spreads the bits of a small seed over the whole state.
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.state[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** The next 32 random bits. */
  nextUint32(): number {
    const s = this.state;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1), with 24 bits so every value is exact in float32. */
  next(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** An integer in [0, n). */
  nextInt(n: number): number {
    return Math.floor((this.nextUint32() / 4294967296) * n);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T extends { [index: number]: number; length: number }>(values: T): T {
    for (let i = values.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const swap = values[i];
      values[i] = values[j];
      values[j] = swap;
    }
    return values;
  }

  getState(): number[] {
    return Array.from(this.state);
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4) throw new Error(`Random state needs 4 words, got ${state.length}`);
    this.state = Uint32Array.from(state);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
