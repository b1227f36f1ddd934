/**
 * `npm run profile -- --fresh` on the fixture: every run a fresh process, its first epoch timed in
 * windows of steps. Checks the table's shape and that its counts add up (not its speeds).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PROFILE = fileURLToPath(new URL('../dist/profile.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/fashion-mnist', import.meta.url));

describe('profile --fresh', () => {
  it('times the first epoch of fresh processes in windows, with the calls the workers missed and the stalls', () => {
    const output = execFileSync(process.execPath, [PROFILE, '--fresh', '--threads', '1,2', '--runs', '1', '--window', '20', '--data', FIXTURE], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rows = output.split('\n').filter((line) => line.startsWith('| ')).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
    expect(rows[0]).toEqual(['steps', '1 thread: µs/step', '2 threads: µs/step', '2 threads: calls missed by the workers']);
    // The fixture's 2,000 training images are 63 batches of 32: windows of 20, 20, 20 and 3 steps.
    const windows = rows.slice(2, -3);
    expect(windows.map((row) => row[0])).toEqual(['1–20', '21–40', '41–60', '61–63']);
    for (const [, oneThread, twoThreads, missed] of windows) {
      expect(Number(oneThread)).toBeGreaterThan(0);
      expect(Number(twoThreads)).toBeGreaterThan(0);
      const [missedCalls, calls] = missed.split(' of ').map(Number);
      expect(calls).toBeGreaterThan(0);
      expect(missedCalls).toBeGreaterThanOrEqual(0);
      expect(missedCalls).toBeLessThanOrEqual(calls);
    }
    const [epoch, stalls, stalledMs] = rows.slice(-3);
    expect(epoch[0]).toBe('**epoch (s)**');
    expect(Number(epoch[1])).toBeGreaterThan(0);
    expect(Number(epoch[2])).toBeGreaterThan(0);
    expect(stalls[1]).toBe('–');
    expect(Number(stalls[2])).toBeGreaterThanOrEqual(0);
    expect(Number(stalledMs[2])).toBeGreaterThanOrEqual(0);
    expect(output).toMatch(/the first epoch of a fresh process \(the bench model, 2,000 Fashion-MNIST training images, batch 32\), medians of 1 run/);
  });
});

describe('profile', () => {
  it('times every kernel of a step, and how the split ones shared out their work between the threads', () => {
    const output = execFileSync(process.execPath, [PROFILE, '--threads', '1,2', '--steps', '20', '--rounds', '1', '--data', FIXTURE], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tables = output.split('\n\n').map((block) => block.split('\n').filter((line) => line.startsWith('| '))
      .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()))).filter((rows) => rows.length > 0);
    const [kernels, shares] = tables;
    expect(kernels[0]).toEqual(['µs per step', '1 thread', '2 threads']);
    const step = kernels.find((row) => row[0] === '**one step**')!;
    expect(Number(step[1])).toBeGreaterThan(0);
    expect(Number(step[2])).toBeGreaterThan(0);
    expect(shares[0]).toEqual([
      'split kernel, 2 threads', 'calls per step', 'µs per share, caller', 'µs per share, a worker', 'µs the caller waited per call', "caller's part of the output",
    ]);
    // The first layer's weights, 784×128 of them, are one split Adam call a step.
    const adam = shares.find((row) => row[0] === 'adam')!;
    expect(Number(adam[1])).toBe(1);
    expect(Number(adam[2])).toBeGreaterThan(0);
    expect(Number(adam[4])).toBeGreaterThanOrEqual(0);
    const part = Number(adam[5].replace('%', ''));
    expect(part).toBeGreaterThanOrEqual(20);
    expect(part).toBeLessThanOrEqual(100);
    expect(shares.map((row) => row[0])).toContain('sparseForwardSlices');
  });
});
