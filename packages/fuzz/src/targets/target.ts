import type fc from 'fast-check';

/**
 * A reader under test: how to make its inputs, and how to feed it one. `prepare` builds the
 * case's files or bytes (not measured); `run` is the reader's work alone (measured).
 */
export interface FuzzTarget<Input, Prepared = unknown> {
  name: string;
  description: string;
  arbitrary: fc.Arbitrary<Input>;
  prepare(input: Input): Prepared | Promise<Prepared>;
  /** Reads one prepared case; returns (or resolves) on success, throws on failure. */
  run(prepared: Prepared): unknown;
  /** A short description of an input, to reproduce a failing case. */
  describe(input: Input): string;
  /** Frees what the target keeps between cases (temporary folders). */
  close?(): void;
}

/** Prepares a case, then runs it inside `measure` (which times it and watches its memory). */
export async function runPrepared<T>(target: FuzzTarget<unknown>, input: unknown, measure: (fn: () => unknown) => Promise<T>): Promise<T> {
  const prepared = await target.prepare(input);
  return measure(() => target.run(prepared));
}
