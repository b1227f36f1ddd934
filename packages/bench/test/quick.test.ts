/**
 * Runs the built bench in --quick mode (fixture subset) as a user would, and checks that every
 * suite produced sensible numbers, that step parity holds, and that the summary has every table.
 * Needs the packages built first (npx tsc -p packages/engine && npx tsc -p packages/bench).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const ENGINES = ['descent-wasm', 'descent-ts', 'tfjs-wasm', 'tfjs-cpu', 'tfjs-node'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function bench(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 170_000, maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Every number anywhere inside `value`, with its path. */
function numbersIn(value: unknown, path = '$'): Array<[string, number]> {
  if (typeof value === 'number') return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((item, i) => numbersIn(item, `${path}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([key, item]) => numbersIn(item, `${path}.${key}`));
  return [];
}

function expectPositive(values: Array<[string, number]>): void {
  expect(values.length).toBeGreaterThan(0);
  for (const [path, value] of values) {
    expect(Number.isFinite(value) && value > 0, `${path} = ${value}`).toBe(true);
  }
}

describe('npm run bench -- --quick', () => {
  let out: string;
  let run: Run;
  let result: any;
  let markdown: string;

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build with npx tsc -p packages/engine && npx tsc -p packages/bench`);
    out = mkdtempSync(join(tmpdir(), 'descent-bench-'));
    run = await bench(['--quick', '--out', out]);
    const files = readdirSync(out);
    const json = files.find((name) => name.endsWith('-quick.json'));
    const md = files.find((name) => name.endsWith('-quick.md'));
    if (run.code !== 0 || !json || !md) throw new Error(`bench --quick failed (exit ${run.code}, files ${files.join(', ')}):\n${run.stderr}`);
    result = JSON.parse(readFileSync(join(out, json), 'utf8'));
    markdown = readFileSync(join(out, md), 'utf8');
  }, 170_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('ran every suite on the fixture and left latest.md alone', () => {
    expect(result.quick).toBe(true);
    expect(result.suites).toEqual(['kernels', 'epoch', 'parity', 'steps']);
    expect(result.dataset).toMatchObject({ trainSamples: 2000, testSamples: 500 });
    expect(existsSync(join(out, 'latest.md'))).toBe(false);
  });

  it('measured the GEMM kernels on every engine with finite positive figures', () => {
    const { rows, shapes, notes } = result.kernels;
    expect(shapes.length).toBeGreaterThan(0);
    for (const engine of ['descent-wasm', 'descent-ts', 'tfjs-wasm', 'tfjs-cpu']) {
      expect(rows.filter((row: { engine: string }) => row.engine === engine).length, engine).toBeGreaterThan(0);
    }
    if (!rows.some((row: { engine: string }) => row.engine === 'tfjs-node')) {
      expect(notes.some((note: string) => /^tfjs-node: not available: \S/.test(note))).toBe(true);
    }
    for (const row of rows) expectPositive([[`${row.engine} ${row.shape} GFLOP/s`, row.gflops], [`${row.engine} ${row.shape} ms`, row.medianMs]]);
  });

  it('has a row for every engine, measured or marked not available with a reason', () => {
    const rows = result.epoch.engines;
    expect(rows.map((row: { engine: string }) => row.engine)).toEqual(ENGINES);
    for (const row of rows) {
      if (row.engine === 'tfjs-node' && !row.available) {
        expect(row.reason).toMatch(/\S/);
        expect(run.stderr).toContain(`tfjs-node: not available: ${row.reason}`);
        continue;
      }
      expect(row.available, `${row.engine} should have been measured`).toBe(true);
      expect(row.seconds).toHaveLength(row.runs);
      expectPositive([
        ...numbersIn(row.seconds, `${row.engine}.seconds`),
        ...numbersIn(row.secondsPerEpoch, `${row.engine}.secondsPerEpoch`),
        [`${row.engine}.ratio`, row.ratioToDescentWasm],
        [`${row.engine}.peakRssMiB`, row.peakRssMiB],
        [`${row.engine}.inferenceMs`, row.inferenceMs],
        ...numbersIn(row.testAccuracy, `${row.engine}.testAccuracy`),
      ]);
      expect(row.secondsPerEpoch.min).toBeLessThanOrEqual(row.secondsPerEpoch.median);
      expect(row.secondsPerEpoch.median).toBeLessThanOrEqual(row.secondsPerEpoch.max);
    }
    expect(rows[0].ratioToDescentWasm).toBe(1);
  });

  it('trained both engines to a plausible accuracy in the parity suite', () => {
    const { engines, differencePoints } = result.parity;
    expect(engines.map((row: { engine: string }) => row.engine)).toEqual(['descent-wasm', 'tfjs-wasm']);
    for (const row of engines) {
      // Ten classes: chance is 10%; one epoch on 2,000 images reaches about 70%.
      for (const accuracy of row.accuracies) expect(accuracy).toBeGreaterThan(0.5);
      expect(row.mean).toBeCloseTo(row.accuracies.reduce((a: number, b: number) => a + b, 0) / row.accuracies.length, 12);
      expect(row.sd).toBeGreaterThanOrEqual(0);
    }
    expect(differencePoints).toBeCloseTo((engines[0].mean - engines[1].mean) * 100, 9);
  });

  it('keeps descent and tfjs within 1e-4 relative loss at every step', () => {
    const { steps, primary, runs } = result.steps;
    expect(steps).toBeGreaterThan(0);
    for (const stepsRun of runs) {
      expect(stepsRun.tfjsLosses).toHaveLength(steps);
      expectPositive(numbersIn(stepsRun.tfjsLosses, 'tfjsLosses'));
      const tfjsForm = stepsRun.variants.filter((variant: { adamForm: string }) => variant.adamForm === 'tfjs');
      expect(tfjsForm.length).toBeGreaterThan(0);
      for (const variant of tfjsForm) {
        expect(variant.losses).toHaveLength(steps);
        const worst = Math.max(...variant.losses.map((loss: number, i: number) => Math.abs(loss - stepsRun.tfjsLosses[i]) / stepsRun.tfjsLosses[i]));
        expect(worst).toBeCloseTo(variant.maxRelativeLossDifference, 12);
        expect(worst).toBeLessThanOrEqual(1e-4);
        expect(Number.isFinite(variant.maxAbsWeightDifference)).toBe(true);
      }
    }
    expect(primary.maxRelativeLossDifference).toBeLessThanOrEqual(1e-4);
    expect(result.steps.tfjsBackendsDifference).toBeGreaterThanOrEqual(0);
    expect(result.steps.tfjsBackendsDifference).toBeLessThanOrEqual(1e-4);
  });

  it('writes a markdown summary with every table', () => {
    for (const heading of ['## Targets', '## GEMM kernels', '## One training epoch', '## Accuracy parity', '## Step parity']) {
      expect(markdown).toContain(heading);
    }
    for (const label of ['descent (wasm)', 'descent (ts)', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs (cpu)', '@tensorflow/tfjs-node']) {
      expect(markdown).toMatch(new RegExp(`^\\| ${label.replace(/[()/.]/g, '\\$&')} \\|`, 'm'));
    }
    expect(markdown).toContain(result.machine.cpu);
    expect(markdown).toContain(result.machine.node);
  });
});

describe('bench flags', () => {
  it.each([
    [['--runs', '0'], /^bench: --runs: expected a positive whole number, got '0'$/],
    [['--suites', 'epoch,nope'], /^bench: --suites: unknown suite 'nope'; expected kernels, epoch, parity, steps$/],
    [['--frobnicate'], /^bench: Unknown option '--frobnicate'/],
  ])('rejects %j with one line, exit 2 and no files', async (args, message) => {
    const out = mkdtempSync(join(tmpdir(), 'descent-bench-bad-'));
    try {
      const { code, stderr } = await bench([...args, '--quick', '--out', out]);
      expect(code).toBe(2);
      expect(stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(stderr.trimEnd()).toMatch(message);
      expect(readdirSync(out)).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
