/**
 * turnOffJsInlining: V8 stops inlining functions into the ones it optimizes. Checked in child
 * processes with V8's inlining trace, on a hot function that calls a small one.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ENGINE = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** Lines of V8's inlining trace that inline `twice` into `sumOfTwice`, with or without turnOffJsInlining first. */
function inliningsOfTwice(turnOff: boolean): number {
  const script = `
    const { turnOffJsInlining } = await import(${JSON.stringify(ENGINE)});
    if (${turnOff}) turnOffJsInlining();
    function twice(x) { return 2 * x + 1; }
    function sumOfTwice(n) { let sum = 0; for (let i = 0; i < n; i++) sum += twice(i); return sum; }
    let total = 0;
    for (let round = 0; round < 3000; round++) total += sumOfTwice(1000);
    console.log('total', total);
  `;
  const output = execFileSync(process.execPath, ['--trace-turbo-inlining', '--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(output).toContain(`total ${3000 * 1000 * 1000}`);
  return output.split('\n').filter((line) => /^Inlining 0x.*SharedFunctionInfo twice>.* into .*SharedFunctionInfo sumOfTwice>/.test(line)).length;
}

describe('turnOffJsInlining', () => {
  it('stops V8 from inlining a small function into a hot one that calls it', () => {
    expect(inliningsOfTwice(false)).toBeGreaterThan(0);
    expect(inliningsOfTwice(true)).toBe(0);
  });
});
