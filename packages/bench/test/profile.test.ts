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
    const output = execFileSync(process.execPath, [PROFILE, '--fresh', '--threads', '1,2', '--updates', 'overlapped,waited', '--runs', '1', '--window', '20', '--data', FIXTURE], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rows = output.split('\n').filter((line) => line.startsWith('| ')).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
    expect(rows[0]).toEqual([
      'steps', '1 thread: µs/step', '2 threads: µs/step', '2 threads, updates waited for: µs/step',
      '2 threads: calls missed by the workers', '2 threads: workers woken',
      '2 threads, updates waited for: calls missed by the workers', '2 threads, updates waited for: workers woken',
    ]);
    // The fixture's 2,000 training images are 63 batches of 32: windows of 20, 20, 20 and 3 steps.
    const windows = rows.slice(2, rows.findIndex((row) => row[0] === '**epoch (s)**'));
    expect(windows.map((row) => row[0])).toEqual(['1–20', '21–40', '41–60', '61–63']);
    for (const [, ...cells] of windows) {
      for (const perStep of cells.slice(0, 3)) expect(Number(perStep)).toBeGreaterThan(0);
      for (const [missed, woken] of [cells.slice(3, 5), cells.slice(5, 7)]) {
        const [missedCalls, calls] = missed.split(' of ').map(Number);
        expect(calls).toBeGreaterThan(0);
        expect(missedCalls).toBeGreaterThanOrEqual(0);
        expect(missedCalls).toBeLessThanOrEqual(calls);
        // One worker: at most one wake per split call.
        expect(Number(woken)).toBeGreaterThanOrEqual(0);
        expect(Number(woken)).toBeLessThanOrEqual(calls);
      }
    }
    const named = (name: string): string[] => rows.find((row) => row[0] === name)!;
    const [epoch, stalls, stalledMs] = ['**epoch (s)**', 'stalls: waits over 50 µs for the workers (count)', 'stalls: their time (ms)'].map(named);
    for (const column of [1, 2, 3]) expect(Number(epoch[column])).toBeGreaterThan(0);
    expect(stalls[1]).toBe('–');
    for (const column of [2, 3]) {
      expect(Number(stalls[column])).toBeGreaterThanOrEqual(0);
      expect(Number(stalledMs[column])).toBeGreaterThanOrEqual(0);
    }
    // Where the epoch's CPU time went, by thread (Linux's per-thread counts, in ticks of 10 ms).
    const [caller, workers, helpers] = ['CPU of the calling thread (ms)', 'CPU of the workers (ms)', "CPU of the runtime's helper threads (compiler, GC) (ms)"].map(named);
    expect(Number(caller[1])).toBeGreaterThan(0);
    expect(workers[1]).toBe('–');
    for (const column of [1, 2, 3]) {
      expect(Number(caller[column]) % 10).toBe(0);
      expect(Number(helpers[column])).toBeGreaterThanOrEqual(0);
    }
    for (const column of [2, 3]) expect(Number(workers[column])).toBeGreaterThanOrEqual(0);
    expect(output).toMatch(/the first epoch of a fresh process \(the bench model, 2,000 Fashion-MNIST training images, batch 32\), medians of 1 run/);
  });

  it('with --epochs, runs the windows on through every epoch and gives each epoch its row', () => {
    const output = execFileSync(process.execPath, [PROFILE, '--fresh', '--threads', '1,2', '--runs', '1', '--window', '50', '--epochs', '2', '--data', FIXTURE], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rows = output.split('\n').filter((line) => line.startsWith('| ')).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
    // Two epochs of 63 steps: windows of 50 across the epoch boundary, then the rest.
    expect(rows.slice(2, 5).map((row) => row[0])).toEqual(['1–50', '51–100', '101–126']);
    const epochs = rows.filter((row) => row[0].startsWith('**epoch'));
    expect(epochs.map((row) => row[0])).toEqual(['**epoch 1 (s)**', '**epoch 2 (s)**']);
    for (const row of epochs) for (const column of [1, 2]) expect(Number(row[column])).toBeGreaterThan(0);
    expect(output).toMatch(/the first 2 epochs of a fresh process/);
  });

  it('with --spin, workers that spin a whole second are woken only for the first calls, and a bad --spin is refused', () => {
    const run = (spin: string): string => execFileSync(process.execPath, [PROFILE, '--fresh', '--threads', '2', '--spin', spin, '--runs', '1', '--window', '50', '--data', FIXTURE], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = run('1000000');
    const rows = output.split('\n').filter((line) => line.startsWith('| ')).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
    expect(rows[0]).toEqual(['steps', '2 threads: µs/step', '2 threads: calls missed by the workers', '2 threads: workers woken']);
    const windows = rows.slice(2, 4);
    expect(windows.map((row) => row[0])).toEqual(['1–50', '51–63']);
    // The worker sleeps until the first split call; after it, it spins through the whole epoch.
    expect(Number(windows[0][3])).toBeLessThanOrEqual(1);
    expect(Number(windows[1][3])).toBe(0);
    expect(output).toMatch(/workers spin 1000000 µs for their next task before they sleep\./);
    expect(() => run('1.5')).toThrow(/--spin takes a whole number of µs from 0 to 1000000, not 1.5/);
  });

  it('with --pair, adds a column of two one-thread processes trained side by side', () => {
    const output = execFileSync(process.execPath, [PROFILE, '--fresh', '--threads', '1', '--pair', '--runs', '1', '--window', '50', '--data', FIXTURE], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rows = output.split('\n').filter((line) => line.startsWith('| ')).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
    expect(rows[0]).toEqual(['steps', '1 thread: µs/step', '1 thread, two processes at once: µs/step']);
    expect(rows.slice(2, 4).map((row) => row[0])).toEqual(['1–50', '51–63']);
    for (const row of rows.slice(2, 4)) for (const column of [1, 2]) expect(Number(row[column])).toBeGreaterThan(0);
    const epoch = rows.find((row) => row[0] === '**epoch (s)**')!;
    for (const column of [1, 2]) expect(Number(epoch[column])).toBeGreaterThan(0);
    // One-thread processes have no workers to wait for.
    expect(rows.find((row) => row[0].startsWith('stalls: waits'))!.slice(1)).toEqual(['–', '–']);
    expect(output).toMatch(/"1 thread, two processes at once": two such processes started together, the medians over both\./);
  });

  it('refuses --pair without --fresh, in one line', () => {
    let message = '';
    try {
      execFileSync(process.execPath, [PROFILE, '--pair', '--data', FIXTURE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      message = String((error as { stderr: string }).stderr);
    }
    expect(message.trim()).toBe('profile: --pair needs --fresh');
  });

  it('refuses an --epochs that is not a positive whole number, in one line', () => {
    let message = '';
    try {
      execFileSync(process.execPath, [PROFILE, '--fresh', '--epochs', '0', '--data', FIXTURE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      message = String((error as { stderr: string }).stderr);
    }
    expect(message.trim()).toBe('profile: --runs, --window and --epochs take positive whole numbers');
  });
});

describe('profile', () => {
  it('times every kernel of a step, and how the split ones shared out their work between the threads, with the updates overlapped and waited for', () => {
    const output = execFileSync(process.execPath, [PROFILE, '--threads', '1,2', '--updates', 'overlapped,waited', '--steps', '20', '--rounds', '1', '--data', FIXTURE], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tables = output.split('\n\n').map((block) => block.split('\n').filter((line) => line.startsWith('| '))
      .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()))).filter((rows) => rows.length > 0);
    expect(tables).toHaveLength(3);
    const [kernels, ...shareTables] = tables;
    expect(kernels[0]).toEqual(['µs per step', '1 thread', '2 threads', '2 threads, updates waited for']);
    const step = kernels.find((row) => row[0] === '**one step**')!;
    const untimed = kernels.find((row) => row[0] === 'one step, no kernel call timed (another pass)')!;
    for (const column of [1, 2, 3]) {
      expect(Number(step[column])).toBeGreaterThan(0);
      expect(Number(untimed[column])).toBeGreaterThan(0);
    }
    shareTables.forEach((shares, i) => {
      expect(shares[0]).toEqual([
        `split kernel, ${['2 threads', '2 threads, updates waited for'][i]}`, 'calls per step', 'µs per share, caller', 'µs per share, a worker',
        'µs the caller waited per call', "caller's part of the output",
      ]);
      // The first layer's weights, 784×128 of them, are one split Adam call a step.
      const adam = shares.find((row) => row[0] === 'adam')!;
      expect(Number(adam[1])).toBe(1);
      expect(Number(adam[2])).toBeGreaterThan(0);
      expect(Number(adam[4])).toBeGreaterThanOrEqual(0);
      // Overlapped, the caller's part shrinks while the worker finishes first (at most 0.02 of its share a step).
      const part = Number(adam[5].replace('%', ''));
      expect(part).toBeGreaterThanOrEqual(i === 0 ? 10 : 20);
      expect(part).toBeLessThanOrEqual(100);
      expect(shares.map((row) => row[0])).toContain('sparseForwardSlices');
    });
    // With workers to wake, the footer says what waking a sleeping thread costs here.
    const wake = /A thread asleep in Atomics\.wait answered a notify in ([\d.]+) µs/.exec(output);
    expect(wake).not.toBeNull();
    expect(Number(wake![1])).toBeGreaterThan(0);
  });

  it('refuses an --updates it does not know, in one line', () => {
    let message = '';
    try {
      execFileSync(process.execPath, [PROFILE, '--updates', 'sometimes', '--data', FIXTURE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      message = String((error as { stderr: string }).stderr);
    }
    expect(message.trim()).toBe('profile: --threads takes positive whole numbers (e.g. 1,2), --updates overlapped, waited or both, --step-modes replayed, eager or both');
  });

  it('with --step-modes replayed,eager, gives fit with replayed steps and with every step run eagerly a column each, in turns', () => {
    const output = execFileSync(process.execPath, [PROFILE, '--fresh', '--threads', '1,2', '--step-modes', 'replayed,eager', '--runs', '1', '--window', '63', '--data', FIXTURE], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rows = output.split('\n').filter((line) => line.startsWith('| ')).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
    expect(rows[0].slice(0, 5)).toEqual([
      'steps', '1 thread: µs/step', '1 thread, steps run eagerly: µs/step', '2 threads: µs/step', '2 threads, steps run eagerly: µs/step',
    ]);
    const epoch = rows.find((row) => row[0] === '**epoch (s)**')!;
    for (const column of [1, 2, 3, 4]) expect(Number(epoch[column])).toBeGreaterThan(0);
    let message = '';
    try {
      execFileSync(process.execPath, [PROFILE, '--step-modes', 'lazily', '--data', FIXTURE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      message = String((error as { stderr: string }).stderr);
    }
    expect(message.trim()).toMatch(/--step-modes replayed, eager or both$/);
  });
});

describe('profile --products', () => {
  it('times each product on each thread count in turns and gives the speed-up over the first', () => {
    const output = execFileSync(process.execPath, [PROFILE, '--products', '96x64x64,5×7×3', '--threads', '1,2', '--rounds', '2'], {
      encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rows = output.split('\n').filter((line) => line.startsWith('| ')).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
    expect(rows[0]).toEqual(['product (M×K×N)', '1 thread: ms', '2 threads: ms', '2 threads: speed-up']);
    expect(rows.slice(2).map((row) => row[0])).toEqual(['96×64×64', '5×7×3']);
    for (const [, oneThread, twoThreads, speedUp] of rows.slice(2)) {
      expect(Number(oneThread)).toBeGreaterThan(0);
      expect(Number(twoThreads)).toBeGreaterThan(0);
      expect(speedUp).toMatch(/^\d+\.\d\d×$/);
      expect(Number(speedUp.slice(0, -1))).toBeGreaterThan(0);
    }
    expect(output).toMatch(/medians of 2 round\(s\), thread counts in turns; a speed-up is the median of the rounds' ratios to 1 thread/);
  });

  it('refuses a shape that is not MxKxN, or too large, in one line naming --products', () => {
    for (const [shape, expected] of [
      ['3x3', "profile: --products takes shapes MxKxN of positive whole numbers (e.g. 256x784x128,1024x1024x1024), got '3x3'"],
      ['0x4x4', "profile: --products takes shapes MxKxN of positive whole numbers (e.g. 256x784x128,1024x1024x1024), got '0x4x4'"],
      ['99999x99999x1', 'profile: --products: 99999x99999x1 needs more than 67,108,864 floats'],
    ]) {
      let message = '';
      try {
        execFileSync(process.execPath, [PROFILE, '--products', shape], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (error) {
        message = String((error as { stderr: string }).stderr);
      }
      expect(message.trim()).toBe(expected);
    }
  });
});
