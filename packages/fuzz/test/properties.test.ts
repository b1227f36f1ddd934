/**
 * Seeded property tests over every reader of outside input: whatever the bytes, the outcome is a
 * success or a typed descent error with a one-line message of at most 300 characters, within a
 * bounded amount of memory and time. `npm run fuzz -- --cases N` runs the same properties longer.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { DEFAULT_LIMITS, makeTargets, runCase, runPrepared, violations, type TargetName, type Targets } from '../src/index.js';

/** A few thousand cases in all, about 30 s of CPU. */
const CASES: Record<TargetName, number> = { idx: 1000, model: 300, optimizer: 250, image: 150, zip: 60, definition: 250, space: 300 };
/** Generous against a shared machine: the property is "no hang", timings are the fuzz runner's business. */
const LIMITS = { ...DEFAULT_LIMITS, timeMs: 10_000 };

let made: Targets;
beforeAll(async () => {
  made = await makeTargets();
}, 60_000);
afterAll(() => made?.close());

describe('readers of outside input never crash', () => {
  for (const name of Object.keys(CASES) as TargetName[]) {
    it(`${name}: ${CASES[name]} seeded cases end in success or a short typed error, within memory and time`, async () => {
      const target = made.targets.get(name)!;
      await fc.assert(
        fc.asyncProperty(target.arbitrary, async (input) => {
          const problems = violations(await runPrepared(target, input, runCase), LIMITS);
          if (problems.length > 0) throw new Error(`${problems.join('; ')} for ${target.describe(input).slice(0, 300)}`);
        }),
        { seed: 18, numRuns: CASES[name], endOnFailure: true },
      );
    });
  }
});
