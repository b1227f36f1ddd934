/**
 * The README's benchmark block: the headline table puts TensorFlow itself next to descent, and a
 * full run replaces only what lies between the markers (or leaves a README without them alone).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { headlineTable, renderReadmeBlock } from '../src/report.js';
import { README_MARKERS, updateReadme, writeResults } from '../src/runner.js';
import { ENGINE_LABELS, MODEL, type BenchResult, type EngineId, type EpochEngineResult } from '../src/types.js';

const scratch = mkdtempSync(join(tmpdir(), 'descent-readme-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function timing(engine: EngineId, seconds: number, inferenceMs: number): EpochEngineResult {
  return {
    engine, label: ENGINE_LABELS[engine], available: true, backend: 'x', runs: 1, seconds: [seconds], secondsPerEpoch: { median: seconds, min: seconds, max: seconds },
    ratioToDescentWasm: seconds / 0.5, peakRssMiB: 100, peakRssMiBPerRun: [100], peakRssAfterInferenceMiBPerRun: [100], inferenceMs, inferenceMsPerRun: [inferenceMs],
    trainLoss: [0.5], testAccuracy: [0.85],
  };
}

const result: BenchResult = {
  version: 2, quick: false, command: 'node packages/bench/dist/main.js', wallSeconds: 1200,
  machine: { cpu: 'AMD EPYC', cores: 2, node: 'v20.20.2', platform: 'linux x64', hostname: 'h', date: '2026-11-30T10:00:00.000Z' },
  dataset: { dir: '/data', trainSamples: 60000, testSamples: 10000 }, model: MODEL, suites: ['epoch', 'steps'],
  epoch: {
    trainSamples: 60000, testSamples: 10000, batchSize: 32, inferenceBatch: 10000, note: '',
    engines: [timing('descent-wasm', 0.5, 30), timing('keras-1t', 1.5, 10), { ...timing('tfjs-node', 1, 1), available: false, reason: 'not built', secondsPerEpoch: undefined }],
  },
  steps: {
    steps: 200, batchSize: 32, note: '', runs: [], unavailable: [], oracleDifferences: [],
    headlines: [{ oracle: 'keras', oracleBackend: 'TF', descentBackend: 'wasm', adamForm: 'keras', maxRelativeLossDifference: 4.95e-7, worstStep: 129, maxAbsWeightDifference: 3e-7, goal: 1e-5 }],
  },
  targets: [{ name: 'step parity with Keras', goal: '<= 1e-5', measured: '4.95e-7', met: true }],
};

describe('the README block', () => {
  it('lists descent, then Keras and tfjs-node, then TensorFlow.js, with what each measured', () => {
    const rows = headlineTable(result)!.split('\n').slice(2);
    expect(rows.map((row) => row.split(' | ')[0].slice(2))).toEqual([
      ENGINE_LABELS['descent-wasm'], ENGINE_LABELS['descent-wasm-2t'], ENGINE_LABELS['keras-1t'], ENGINE_LABELS['keras-2t'], ENGINE_LABELS['tfjs-node-1t'], ENGINE_LABELS['tfjs-node'], ENGINE_LABELS['tfjs-wasm'], ENGINE_LABELS['tfjs-cpu'],
    ]);
    expect(rows[2]).toBe(`| ${ENGINE_LABELS['keras-1t']} | 1.50 | 3.00x | 10.0 | – | 4.95e-7 (Adam 'keras') |`);
    expect(rows[5]).toMatch(/^\| @tensorflow\/tfjs-node, default threads \| not available \|/);
  });

  it('replaces only the marked block, and leaves a README without markers alone', () => {
    const readme = join(scratch, 'README.md');
    const before = `# x\n\nintro\n\n${README_MARKERS[0]}\n\nold table\n\n${README_MARKERS[1]}\n\n## After\n`;
    writeFileSync(readme, before);
    expect(updateReadme(readme, renderReadmeBlock(result, 'packages/bench/results/latest.md'))).toBe(true);
    const after = readFileSync(readme, 'utf8');
    expect(after.startsWith(`# x\n\nintro\n\n${README_MARKERS[0]}\n\n- Machine: AMD EPYC, 2 cores`)).toBe(true);
    expect(after).not.toContain('old table');
    expect(after).toContain('### Targets');
    expect(after.endsWith(`[packages/bench/results/latest.md](packages/bench/results/latest.md).\n\n${README_MARKERS[1]}\n\n## After\n`)).toBe(true);
    writeFileSync(readme, '# no markers\n');
    expect(updateReadme(readme, 'block')).toBe(false);
    expect(readFileSync(readme, 'utf8')).toBe('# no markers\n');
  });
});

describe('the results files', () => {
  it('a second run of the same suites on the same day is written beside the first, and only a full run replaces latest.md', () => {
    const out = join(scratch, 'results');
    const epochOnly: BenchResult = { ...result, suites: ['epoch'], steps: undefined };
    const first = writeResults(epochOnly, out);
    const second = writeResults({ ...epochOnly, wallSeconds: 1300 }, out);
    expect(first.json).toBe(join(out, '2026-11-30-amd-epyc-2c-epoch.json'));
    expect(second.json).toBe(join(out, '2026-11-30-amd-epyc-2c-epoch-run2.json'));
    expect(second.markdown).toBe(join(out, '2026-11-30-amd-epyc-2c-epoch-run2.md'));
    expect((JSON.parse(readFileSync(first.json, 'utf8')) as BenchResult).wallSeconds).toBe(1200);
    expect((JSON.parse(readFileSync(second.json, 'utf8')) as BenchResult).wallSeconds).toBe(1300);
    expect(writeResults(epochOnly, out).json).toBe(join(out, '2026-11-30-amd-epyc-2c-epoch-run3.json'));
    expect(first.latest).toBeUndefined(); // one suite: not a full run
  });
});
