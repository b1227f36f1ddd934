/**
 * `descent report`, `descent train --report`, `descent predict --plot` and `descent report --bench`
 * end to end, on the fixture: the files written, the page in a real browser (headless Chromium),
 * and the report's numbers against `descent evaluate --json`.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { expectPicture, svgTexts } from './report-checks.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = resolve(ROOT, 'packages/cli/dist/main.js');
const FIXTURE = resolve(ROOT, 'test/fixtures/fashion-mnist');
const CHROMIUM = '/usr/bin/chromium';
/** Where the browser screenshot is kept for people to look at (overwritten by every run). */
const SCREENSHOT_DIR = process.env.DESCENT_TEST_OUTPUT ?? join(tmpdir(), 'descent-report-test');
const CHARTS = ['samples', 'loss', 'accuracy', 'confusion', 'predictions', 'precision-recall'];

function descent(...args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

function reportData(html: string): any {
  const match = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  expect(match).not.toBeNull();
  return JSON.parse(match![1]);
}

let work: string;
let modelDir: string;
let evaluation: any;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'descent-report-'));
  modelDir = join(work, 'model');
  const trained = descent('train', '--data', FIXTURE, '--epochs', '2', '--hidden', '32', '--validation-split', '0.1', '--seed', '3', '--out', modelDir, '--report', '--json');
  expect(trained.stderr).not.toMatch(/error/i);
  expect(trained.code).toBe(0);
  const evaluated = descent('evaluate', modelDir, '--data', FIXTURE, '--json');
  expect(evaluated.code).toBe(0);
  evaluation = JSON.parse(evaluated.stdout.trim().split('\n').pop()!);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('descent report', () => {
  it('writes report.html and one PNG per chart, each a real picture', async () => {
    const out = join(work, 'report');
    const { code, stdout, stderr } = descent('report', modelDir, '--data', FIXTURE, '--out', out);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('report.html');
    expect(readdirSync(out).sort()).toEqual(['report.html', ...CHARTS.map((name) => `${name}.png`)].sort());
    const data = reportData(readFileSync(join(out, 'report.html'), 'utf8'));
    expect(data.charts.map((chart: { name: string }) => chart.name)).toEqual(CHARTS);
    for (const name of CHARTS) {
      const png = readFileSync(join(out, `${name}.png`));
      const { width, colours } = await expectPicture(png, { minColours: 8 });
      // PNGs are drawn at twice the size of the page's SVGs.
      expect(width).toBe(2 * Math.round(data.charts.find((c: { name: string }) => c.name === name).width));
      expect(colours).toBeGreaterThan(8);
    }
  });

  it('shows the same test numbers as descent evaluate --json', () => {
    const html = readFileSync(join(work, 'report', 'report.html'), 'utf8');
    const data = reportData(html);
    expect(data.evaluation.confusion).toEqual(evaluation.confusion);
    expect(data.evaluation.per_class).toEqual(evaluation.per_class);
    expect(data.evaluation.accuracy).toBe(evaluation.accuracy);
    expect(data.evaluation.loss).toBe(evaluation.loss);
    expect(data.testImages).toBe(evaluation.confusion.flat().reduce((a: number, b: number) => a + b, 0));
    expect(html).toContain(`Test accuracy ${(100 * evaluation.accuracy).toFixed(1)}%`);
    // The curves are the saved history: two epochs, training and validation.
    const training = JSON.parse(readFileSync(join(modelDir, 'descent-training.json'), 'utf8'));
    expect(data.history.loss).toEqual(training.history.loss);
    expect(data.history.val_accuracy).toEqual(training.history.val_accuracy);
    expect(data.history.loss).toHaveLength(2);
  });

  it('train --report writes the same report into the model folder', () => {
    const dir = join(modelDir, 'report');
    expect(readdirSync(dir).sort()).toEqual(['report.html', ...CHARTS.map((name) => `${name}.png`)].sort());
    const data = reportData(readFileSync(join(dir, 'report.html'), 'utf8'));
    expect(data.evaluation).toEqual(evaluation);
  });

  it('opens in Chromium with every chart drawn, no console errors and no network requests', async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium package`).toBe(true);
    const page = join(work, 'report', 'report.html');
    const url = pathToFileURL(page).href;
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const tab = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const problems: string[] = [];
      const requests: string[] = [];
      tab.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
      });
      tab.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      tab.on('request', (request) => {
        if (request.url() !== url && !request.url().startsWith('data:')) requests.push(request.url());
      });
      await tab.goto(url, { waitUntil: 'load' });
      const charts = await tab.$$eval('figure[data-chart]', (figures) =>
        figures.map((figure) => {
          const img = figure.querySelector('img')!;
          const box = img.getBoundingClientRect();
          return { name: figure.getAttribute('data-chart'), complete: img.complete, natural: [img.naturalWidth, img.naturalHeight], shown: [box.width, box.height] };
        }),
      );
      expect(charts.map((chart) => chart.name)).toEqual(CHARTS);
      for (const chart of charts) {
        expect(chart.complete, chart.name!).toBe(true);
        expect(Math.min(...chart.natural), chart.name!).toBeGreaterThan(50);
        expect(Math.min(...chart.shown), chart.name!).toBeGreaterThan(50);
      }
      const heading = await tab.textContent('h1');
      expect(heading).toContain('Fashion-MNIST');
      mkdirSync(SCREENSHOT_DIR, { recursive: true });
      const shot = join(SCREENSHOT_DIR, 'report.png');
      await tab.screenshot({ path: shot, fullPage: true });
      const { height } = await expectPicture(readFileSync(shot), { minColours: 20 });
      expect(height).toBeGreaterThan(2000); // all six charts, one under the other
      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('leaves out the curves for a model saved without training history', () => {
    // model.json + weights.bin alone, as TensorFlow.js saves a model.
    const bare = join(work, 'bare-model');
    mkdirSync(bare);
    for (const file of ['model.json', 'weights.bin']) copyFileSync(join(modelDir, file), join(bare, file));
    const { code, stderr } = descent('report', bare, '--data', FIXTURE);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const html = readFileSync(join(bare, 'report', 'report.html'), 'utf8');
    const data = reportData(html);
    expect(data.history).toBeNull();
    expect(data.charts.map((chart: { name: string }) => chart.name)).toEqual(CHARTS.filter((name) => name !== 'loss' && name !== 'accuracy'));
    expect(readdirSync(join(bare, 'report'))).not.toContain('loss.png');
    expect(html).toContain('No training history was saved with this model');
    expect(data.evaluation).toEqual(evaluation);
  });

  it('refuses a missing model folder with one line on stderr, writing nothing', () => {
    const missing = join(work, 'no-such-model');
    const { code, stdout, stderr } = descent('report', missing, '--data', FIXTURE);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toContain(missing);
    expect(existsSync(missing)).toBe(false);
  });

  it('refuses an output folder that cannot be written, leaving no files', () => {
    const blocker = join(work, 'a-file');
    writeFileSync(blocker, 'not a folder');
    for (const out of [blocker, join(blocker, 'report')]) {
      const { code, stderr } = descent('report', modelDir, '--data', FIXTURE, '--out', out);
      expect(code).toBe(1);
      expect(stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(stderr).toContain(`--out ${out}`);
    }
    expect(readFileSync(blocker, 'utf8')).toBe('not a folder');
    expect(readdirSync(work).filter((name) => name.includes('.tmp'))).toEqual([]);
  });

  it('asks for MODEL_DIR (usage error) when none is given', () => {
    const { code, stderr } = descent('report');
    expect(code).toBe(2);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toContain('MODEL_DIR');
  });
});

describe('descent predict --plot', () => {
  it('draws test images beside their probabilities', async () => {
    const file = join(work, 'plot.png');
    const { code, stderr } = descent('predict', modelDir, '--data', FIXTURE, '--index', '0', '1', '2', '--plot', file);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const { width, height } = await expectPicture(readFileSync(file), { minColours: 20 });
    expect(width).toBeGreaterThan(height); // three panels side by side
  });

  it('draws an image file from outside the data set', async () => {
    const image = join(work, 'shirt.png');
    // A dark T shape on white: predict inverts light backgrounds, as Fashion-MNIST is light on dark.
    const pixels = Buffer.alloc(56 * 56, 255);
    for (let y = 8; y < 50; y++) for (let x = 8; x < 48; x++) if (y < 20 || (x > 18 && x < 38)) pixels[y * 56 + x] = 30;
    await sharp(pixels, { raw: { width: 56, height: 56, channels: 1 } }).png().toFile(image);
    const file = join(work, 'plot-file.png');
    const { code, stderr } = descent('predict', modelDir, image, '--plot', file);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    await expectPicture(readFileSync(file), { minColours: 10 });
  });

  it('refuses a plot file name that is not .png, before predicting', () => {
    const file = join(work, 'plot.jpg');
    const { code, stdout, stderr } = descent('predict', modelDir, '--data', FIXTURE, '--index', '0', '--plot', file);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toContain('--plot');
    expect(existsSync(file)).toBe(false);
  });
});

describe('descent report --bench', () => {
  it('draws seconds per epoch of every engine that ran, from the bench result file', () => {
    const dir = join(work, 'bench');
    mkdirSync(dir);
    const result = {
      version: 1,
      epoch: {
        engines: [
          { engine: 'descent-wasm', label: 'descent (wasm)', available: true, secondsPerEpoch: { median: 2.4, min: 2.3, max: 2.6 } },
          { engine: 'tfjs-wasm', label: '@tensorflow/tfjs-backend-wasm', available: true, secondsPerEpoch: { median: 14.1, min: 13.8, max: 14.6 } },
          { engine: 'tfjs-node', label: '@tensorflow/tfjs-node', available: false, reason: 'not installed' },
        ],
      },
    };
    writeFileSync(join(dir, 'latest.json'), JSON.stringify(result));
    const { code, stderr } = descent('report', '--bench', join(dir, 'latest.json'));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const texts = svgTexts(readFileSync(join(dir, 'latest-epoch.svg'), 'utf8'));
    expect(texts).toEqual(expect.arrayContaining(['descent (wasm)', '@tensorflow/tfjs-backend-wasm', '2.4', '14.1']));
    expect(texts).not.toContain('@tensorflow/tfjs-node');
    return expectPicture(readFileSync(join(dir, 'latest-epoch.png')));
  });

  it('refuses a result file without epoch timings', () => {
    const file = join(work, 'empty-bench.json');
    writeFileSync(file, JSON.stringify({ version: 1, suites: ['kernels'] }));
    const { code, stderr } = descent('report', '--bench', file);
    expect(code).toBe(1);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr).toContain(file);
    expect(existsSync(join(work, 'empty-bench-epoch.png'))).toBe(false);
  });
});
