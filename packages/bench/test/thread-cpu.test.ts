/**
 * Per-thread CPU time from Linux's /proc/<pid>/task/<tid>/stat, and its split by thread role
 * (the calling thread, the pool's workers, the runtime's helpers), which `profile --fresh` reports.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cpuByRole, parseTaskCpuMs, threadCpuMs } from '../src/machine.js';

/** A stat line as Linux writes it: pid, (name), state, then fields 4 to 52, with utime and stime at 14 and 15. */
function statLine(tid: number, name: string, userTicks: number, systemTicks: number): string {
  const fields = Array.from({ length: 49 }, (_, i) => String(i + 4));
  fields[14 - 4] = String(userTicks);
  fields[15 - 4] = String(systemTicks);
  return `${tid} (${name}) S ${fields.join(' ')}\n`;
}

describe('parseTaskCpuMs', () => {
  it('reads user plus system time, in ms, from a real line', () => {
    expect(parseTaskCpuMs(statLine(5097, 'node', 10, 1))).toBe(110);
    expect(parseTaskCpuMs(statLine(5098, 'V8 DefaultWorke', 0, 0))).toBe(0);
  });

  it('counts the fields from the last parenthesis, whatever the thread is named (seeded)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 15 }), fc.nat(1e9), fc.nat(1e9), (name, user, system) => {
        expect(parseTaskCpuMs(statLine(42, name, user, system))).toBe((user + system) * 10);
      }),
      { seed: 20261203, numRuns: 300 },
    );
  });

  it('gives undefined, and never throws, for text that is not a stat line (seeded)', () => {
    expect(parseTaskCpuMs('')).toBeUndefined();
    expect(parseTaskCpuMs('42 (node) S 1 2 3')).toBeUndefined();
    expect(parseTaskCpuMs(statLine(42, 'node', 10, 1).replace(' 10 1 ', ' -10 1 '))).toBeUndefined();
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const ms = parseTaskCpuMs(text);
        if (ms !== undefined) expect(Number.isSafeInteger(ms) && ms >= 0).toBe(true);
      }),
      { seed: 20261204, numRuns: 300 },
    );
  });
});

describe('threadCpuMs', () => {
  it.runIf(process.platform === 'linux')('lists this process, its main thread among them, and the main thread spends CPU', () => {
    const before = threadCpuMs()!;
    expect(before.has(process.pid)).toBe(true);
    const started = performance.now();
    let spin = 0;
    while (performance.now() - started < 60) spin++;
    expect(spin).toBeGreaterThan(0);
    const after = threadCpuMs()!;
    expect(after.get(process.pid)!).toBeGreaterThan(before.get(process.pid)!);
  });
});

describe('cpuByRole', () => {
  it('puts the caller, the threads started since startup, and the startup threads apart', () => {
    const startup = new Set([100, 101, 102]);
    const before = new Map([[100, 500], [101, 20], [102, 0], [200, 0]]);
    const after = new Map([[100, 900], [101, 60], [102, 10], [200, 350], [201, 40]]);
    expect(cpuByRole(before, after, startup, 100)).toEqual({ caller: 400, workers: 390, helpers: 50 });
  });

  it('shares out exactly the time spent between the snapshots (seeded)', () => {
    const threads = fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(threads, fc.array(fc.nat(10_000), { minLength: 12, maxLength: 12 }), fc.array(fc.nat(10_000), { minLength: 12, maxLength: 12 }), fc.nat(11),
        (tids, starts, spent, startupCount) => {
          const before = new Map(tids.map((tid, i) => [tid, starts[i]]));
          const after = new Map(tids.map((tid, i) => [tid, starts[i] + spent[i]]));
          const startup = new Set(tids.slice(0, startupCount));
          const roles = cpuByRole(before, after, startup, tids[0]);
          const total = tids.reduce((sum, _, i) => sum + spent[i], 0);
          expect(roles.caller + roles.workers + roles.helpers).toBe(total);
          expect(roles.caller).toBe(spent[0]);
          expect(roles.workers).toBe(tids.reduce((sum, tid, i) => sum + (i > 0 && !startup.has(tid) ? spent[i] : 0), 0));
        }),
      { seed: 20261205, numRuns: 300 },
    );
  });
});
