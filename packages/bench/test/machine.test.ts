/**
 * What the bench says of the machine besides its model name: the CPU's family and vector
 * instructions (from /proc/cpuinfo's text), and how long a sleeping thread takes to wake.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeCpu, parseCpuDetails, wakeRoundTripMicros } from '../src/machine.js';

/** One processor's block of /proc/cpuinfo, as Linux writes it on x86. */
function block(processor: number, family: number, model: number, flags: string): string {
  return [
    `processor\t: ${processor}`, 'vendor_id\t: AuthenticAMD', `cpu family\t: ${family}`, `model\t\t: ${model}`,
    'model name\t: AMD EPYC', 'stepping\t: 0', 'cpu MHz\t\t: 2600.000', `flags\t\t: fpu vme de ${flags} pse tsc`, 'bogomips\t: 5200.00', '',
  ].join('\n');
}

describe('parseCpuDetails', () => {
  it('gives the first processor\'s family, model and widest vector instructions', () => {
    const zen5 = block(0, 26, 2, 'avx avx2 fma avx512f avx512bw') + '\n' + block(1, 26, 2, 'avx avx2 fma avx512f avx512bw');
    expect(parseCpuDetails(zen5)).toBe('family 26, model 2, AVX-512');
    expect(parseCpuDetails(block(0, 25, 1, 'avx avx2 fma'))).toBe('family 25, model 1, AVX2');
    expect(parseCpuDetails(block(0, 6, 85, 'sse4_2 avx'))).toBe('family 6, model 85, AVX');
    expect(parseCpuDetails(block(0, 6, 85, 'sse4_2'))).toBe('family 6, model 85');
    // A later processor's flags do not count: the first block's do.
    expect(parseCpuDetails(block(0, 25, 1, 'avx2') + '\n' + block(1, 25, 1, 'avx512f'))).toBe('family 25, model 1, AVX2');
    // 'model name' is not 'model'.
    expect(parseCpuDetails('cpu family\t: 26\nmodel name\t: AMD EPYC\n')).toBe('family 26');
  });

  it('gives undefined where no family is named (an ARM machine, an empty file)', () => {
    expect(parseCpuDetails('')).toBeUndefined();
    expect(parseCpuDetails('processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n')).toBeUndefined();
    expect(parseCpuDetails('cpu family\t: twenty-six\n')).toBeUndefined();
  });

  it('never throws, and names a family whenever it gives anything (seeded)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), fc.option(fc.nat(999)), (text, family) => {
        const input = family === null ? text : `cpu family\t: ${family}\n${text}`;
        const details = parseCpuDetails(input);
        if (details !== undefined) expect(details).toMatch(/^family \d+(, model \d+)?(, AVX(-512|2)?)?$/);
        if (family !== null && !text.startsWith('\n')) expect(details?.startsWith(`family ${family}`)).toBe(true);
      }),
      { seed: 20261204, numRuns: 300 },
    );
  });

  it('puts the details after the model name, or leaves the name alone without them', () => {
    expect(describeCpu({ cpu: 'AMD EPYC', cpuDetails: 'family 26, model 2, AVX-512' })).toBe('AMD EPYC (family 26, model 2, AVX-512)');
    expect(describeCpu({ cpu: 'Apple M2' })).toBe('Apple M2');
  });
});

describe('wakeRoundTripMicros', () => {
  it('times wakes of a sleeping thread and lets it go', async () => {
    const micros = await wakeRoundTripMicros(20, 50);
    expect(micros).toBeDefined();
    expect(micros!).toBeGreaterThan(0);
    expect(micros!).toBeLessThan(1_000_000);
  });
});
