import type fc from 'fast-check';

/** A reader under test: how to make its inputs, and how to feed it one. */
export interface FuzzTarget<Input> {
  name: string;
  description: string;
  arbitrary: fc.Arbitrary<Input>;
  /** Reads one input; returns (or resolves) on success, throws on failure. */
  run(input: Input): unknown;
  /** A short description of an input, to reproduce a failing case. */
  describe(input: Input): string;
  /** Frees what the target keeps between cases (temporary folders). */
  close?(): void;
}
