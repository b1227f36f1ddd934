/**
 * `descent train` on the wasm kernels turns V8's inlining off before training (see the CLI's
 * prepareForTraining); on the ts kernels, whose speed comes from inlining, it leaves it on. Read
 * from V8's traces: once V8 first optimizes one of the engine's functions that run after the
 * kernels are chosen (the seeded random numbers that build the model, fit's shuffle and batch
 * gathering), the functions it optimizes later have nothing inlined into them on wasm, and some
 * do on ts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, FIXTURE, NOT_UNDER_NPM } from './cli-helpers.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'descent-jit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The engine's functions that first run after `useBackend`, as V8's trace names them. */
const AFTER_BACKEND = /completed compiling .*<JSFunction (nextUint32|nextInt|uniform|rotl|shuffle|rangeIndices|gatherRows) /;

/** What V8 optimized and inlined once the model was being built, in a one-epoch fixture run on `backend`. */
async function traceAfterBackend(backend: 'wasm' | 'ts'): Promise<{ optimized: number; inlined: number }> {
  const { stdout } = await run(
    process.execPath,
    ['--trace-opt', '--trace-turbo-inlining', CLI, 'train', '--data', FIXTURE, '--epochs', '1', '--backend', backend, '--out', join(dir, backend), '--json'],
    { env: { ...process.env, NO_COLOR: '1', ...NOT_UNDER_NPM }, maxBuffer: 64 << 20 },
  );
  const lines = stdout.split('\n');
  const start = lines.findIndex((line) => AFTER_BACKEND.test(line));
  expect(start).toBeGreaterThanOrEqual(0);
  const after = lines.slice(start + 1);
  return {
    optimized: after.filter((line) => line.includes('completed compiling') && line.includes('TURBOFAN')).length,
    inlined: after.filter((line) => line.startsWith('Inlining 0x')).length,
  };
}

describe('descent train and V8 inlining', () => {
  it('optimizes without inlining on the wasm kernels, and inlines on the ts kernels', async () => {
    const wasm = await traceAfterBackend('wasm');
    expect(wasm.optimized).toBeGreaterThan(0);
    expect(wasm.inlined).toBe(0);
    const ts = await traceAfterBackend('ts');
    expect(ts.inlined).toBeGreaterThan(0);
  }, 120_000);
});
