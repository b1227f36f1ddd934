/**
 * Parsers for flag values. Each throws commander's InvalidArgumentError, which commander turns into
 * "option '--batch-size <n>' argument '0' is invalid. Expected a positive integer." (exit code 2).
 */
import { InvalidArgumentError } from 'commander';

export function positiveInteger(value: string): number {
  const n = integerOf(value);
  if (n === undefined || n < 1) throw new InvalidArgumentError('Expected a positive integer (1, 2, 3, ...).');
  return n;
}

export function nonNegativeInteger(value: string): number {
  const n = integerOf(value);
  if (n === undefined) throw new InvalidArgumentError('Expected a whole number (0, 1, 2, ...).');
  return n;
}

/** `--threads`: 'auto' (one per core) or a positive integer. */
export function threadCount(value: string): number | 'auto' {
  if (value.trim() === 'auto') return 'auto';
  const n = integerOf(value);
  if (n === undefined || n < 1 || n > 64) throw new InvalidArgumentError("Expected 'auto' or a number of threads from 1 to 64.");
  return n;
}

/** A seed for the generator: a whole number that fits in 32 bits. */
export function seed(value: string): number {
  const n = integerOf(value);
  if (n === undefined || n > 0xffffffff) throw new InvalidArgumentError('Expected a whole number from 0 to 4294967295.');
  return n;
}

export function positiveNumber(value: string): number {
  const n = numberOf(value);
  if (n === undefined || !(n > 0)) throw new InvalidArgumentError('Expected a positive number, e.g. 0.001 or 1e-3.');
  return n;
}

/** A number in [0, 1): dropout rate, momentum, validation split. */
export function fraction(value: string): number {
  const n = numberOf(value);
  if (n === undefined || !(n >= 0 && n < 1)) throw new InvalidArgumentError('Expected a number from 0 up to (not including) 1, e.g. 0.2.');
  return n;
}

/** "128" or "256,128": hidden layer sizes. */
export function layerSizes(value: string): number[] {
  const parts = value.split(',').map((part) => part.trim());
  const sizes = parts.map(integerOf);
  if (parts.length === 0 || sizes.some((n) => n === undefined || n < 1)) {
    throw new InvalidArgumentError('Expected positive integers separated by commas, e.g. 128 or 256,128.');
  }
  return sizes as number[];
}

/**
 * `--index 0 5 --index 7`: test-set indices. The option takes any number of values, so in
 * `predict --index 0 MODEL` it also receives MODEL: whatever is not a whole number is kept apart
 * (`others`), for the command to treat as the positional argument it was meant to be.
 */
export interface IndexList {
  indices: number[];
  others: string[];
}

export function indexList(value: string, previous: IndexList | undefined): IndexList {
  const list = previous ?? { indices: [], others: [] };
  const n = integerOf(value);
  return n === undefined ? { ...list, others: [...list.others, value] } : { ...list, indices: [...list.indices, n] };
}

export const INDEX_EXPECTED = 'Expected a test-set index: a whole number (0, 1, 2, ...).';

function integerOf(value: string): number | undefined {
  if (!/^\s*\d+\s*$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

function numberOf(value: string): number | undefined {
  if (value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}
