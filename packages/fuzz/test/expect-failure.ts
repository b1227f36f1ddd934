import { expect } from 'vitest';
import { DescentError } from '@descent/engine';
import { runCase } from '../src/index.js';

/** Fails unless `attempt` throws a typed error matching `pattern` on one line of at most 300 characters, within 64 MiB. */
export async function expectTypedFailure(attempt: () => unknown, pattern: RegExp, type: typeof DescentError = DescentError): Promise<void> {
  let thrown: unknown;
  const result = await runCase(async () => {
    try {
      await attempt();
    } catch (err) {
      thrown = err;
      throw err;
    }
  });
  expect(thrown).toBeInstanceOf(type);
  expect(result.message).toMatch(pattern);
  expect(result.message).not.toMatch(/[\r\n]/);
  expect(result.message!.length).toBeLessThanOrEqual(300);
  expect(result.memoryBytes).toBeLessThan(64 * 2 ** 20);
}
