// The report's charts from in-memory inputs: what each one draws, and that the PNGs hold a picture.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { FASHION_MNIST_CLASS_NAMES, loadDataset } from '@descent/engine';
import { benchmarkChart, predictionPlot, renderVegaLite } from '../packages/cli/src/report/index.js';
import { confusionSpec, curveSpec, sampleGridSpec, type PredictedImage } from '../packages/cli/src/report/charts.js';
import { expectPicture, svgTexts } from './report-checks.js';

const FIXTURE = new URL('./fixtures/fashion-mnist/', import.meta.url).pathname;
const names = [...FASHION_MNIST_CLASS_NAMES];
const RED = '#d62728';
const BLUE = '#2f6db5';

describe('report charts', () => {
  it('draws text into the PNG (fontconfig finds a font)', async () => {
    const chart = await renderVegaLite({ width: 300, height: 40, data: { values: [{ t: 'Ankle boot' }] }, mark: { type: 'text', fontSize: 24, color: 'black' }, encoding: { text: { field: 't' } } });
    const { data, info } = await sharp(chart.png).flatten({ background: 'white' }).greyscale().raw().toBuffer({ resolveWithObject: true });
    let dark = 0, left = info.width, right = 0;
    for (let i = 0; i < data.length; i++) {
      if (data[i] < 128) {
        dark++;
        left = Math.min(left, i % info.width);
        right = Math.max(right, i % info.width);
      }
    }
    expect(dark).toBeGreaterThan(500);
    expect(right - left).toBeGreaterThan(150); // ten characters at 24 px, drawn at 2x
  });

  it('draws the sample grid from the real pixels, with each image\'s class name', async () => {
    const { train } = await loadDataset('fashion-mnist', { dir: FIXTURE });
    const chart = await renderVegaLite(await sampleGridSpec(train, names, { count: 25 }));
    expect(chart.warnings).toEqual([]);
    const texts = svgTexts(chart.svg);
    for (let i = 0; i < 25; i++) expect(texts).toContain(names[train.labels[i]]);
    // Every image is embedded as a PNG whose pixels are the data set's (inverted: dark on white).
    const urls = [...chart.svg.matchAll(/href="data:image\/png;base64,([^"]+)"/g)].map((m) => m[1]);
    expect(urls).toHaveLength(25);
    const first = await sharp(Buffer.from(urls[7], 'base64')).extractChannel(0).resize(28, 28, { kernel: 'nearest' }).raw().toBuffer();
    const expected = train.images.subarray(7 * 784, 8 * 784).map((v) => 255 - v);
    expect(Buffer.from(first)).toEqual(Buffer.from(expected));
    await expectPicture(chart.png);
  });

  it('puts every count of the confusion matrix in its cell', async () => {
    const confusion = names.map((_, t) => names.map((__, p) => (t === p ? 40 + t : (t * 7 + p * 3) % 5)));
    const chart = await renderVegaLite(confusionSpec(confusion, names));
    expect(chart.warnings).toEqual([]);
    const texts = svgTexts(chart.svg);
    const counts = texts.filter((t) => /^\d+$/.test(t)).map(Number);
    // The 100 cell labels (the colour legend adds a few numbers of its own).
    for (const row of confusion) for (const count of row) expect(counts).toContain(count);
    expect(counts.filter((c) => c >= 40)).toEqual(expect.arrayContaining([40, 41, 42, 43, 44, 45, 46, 47, 48, 49]));
    for (const name of names) expect(texts.filter((t) => t === name).length).toBeGreaterThanOrEqual(2); // row and column
    await expectPicture(chart.png);
  });

  it('draws training and validation curves with one point per epoch', async () => {
    const history = { epoch: [0, 1, 2], loss: [0.9, 0.6, 0.5], accuracy: [0.7, 0.8, 0.83], val_loss: [0.7, 0.62, 0.58], val_accuracy: [0.75, 0.79, 0.81] };
    const chart = await renderVegaLite(curveSpec(history, 'loss'));
    expect(chart.warnings).toEqual([]);
    expect(svgTexts(chart.svg)).toEqual(expect.arrayContaining(['Training', 'Validation', 'Epoch', 'Loss']));
    expect(chart.svg.match(/aria-roledescription="line mark"/g)).toHaveLength(2);
    const points = [...chart.svg.matchAll(/aria-label="Epoch: (\d+); Loss: ([\d.]+); set: (\w+)" role="graphics-symbol" aria-roledescription="point"/g)];
    expect(points.map((m) => [Number(m[1]), Number(m[2]), m[3]])).toEqual([
      [1, 0.9, 'Training'], [2, 0.6, 'Training'], [3, 0.5, 'Training'], [1, 0.7, 'Validation'], [2, 0.62, 'Validation'], [3, 0.58, 'Validation'],
    ]);
    await expectPicture(chart.png);
  });

  it('colours a wrong prediction red and the true class blue', async () => {
    const { test } = await loadDataset('fashion-mnist', { dir: FIXTURE });
    const one = (c: number): number[] => names.map((_, k) => (k === c ? 0.7 : 0.3 / 9));
    const items: PredictedImage[] = [
      { pixels: test.images.subarray(0, 784), rows: 28, cols: 28, probabilities: one(test.labels[0]), label: test.labels[0], caption: 'right' },
      { pixels: test.images.subarray(784, 1568), rows: 28, cols: 28, probabilities: one((test.labels[1] + 1) % 10), label: test.labels[1], caption: 'wrong' },
    ];
    const chart = await predictionPlot(items, names);
    expect(chart.warnings).toEqual([]);
    const bars = [...chart.svg.matchAll(/aria-label="p: [^;"]*; name: ([^;"]+); kind: [^"]*" role="graphics-symbol" aria-roledescription="bar"[^>]*fill="(#[0-9a-f]+)"/g)]
      .map((m) => ({ name: m[1], fill: m[2] }));
    expect(bars).toHaveLength(20);
    const first = bars.slice(0, 10), second = bars.slice(10);
    expect(first.filter((b) => b.fill === RED)).toHaveLength(0);
    expect(first.filter((b) => b.fill === BLUE).map((b) => b.name)).toEqual([names[test.labels[0]]]);
    expect(second.filter((b) => b.fill === RED).map((b) => b.name)).toEqual([names[(test.labels[1] + 1) % 10]]);
    expect(second.filter((b) => b.fill === BLUE).map((b) => b.name)).toEqual([names[test.labels[1]]]);
    expect(svgTexts(chart.svg)).toEqual(expect.arrayContaining(['1 of 2 predicted right; a red caption marks a wrong prediction']));
    await expectPicture(chart.png);
  });

  it('draws seconds per epoch per engine, each bar labelled', async () => {
    const rows = [{ engine: 'descent (wasm)', secondsPerEpoch: 2.5 }, { engine: 'tfjs (cpu)', secondsPerEpoch: 31.7 }];
    const chart = await benchmarkChart(rows);
    expect(chart.warnings).toEqual([]);
    expect(svgTexts(chart.svg)).toEqual(expect.arrayContaining(['descent (wasm)', 'tfjs (cpu)', '2.5', '31.7']));
    const widths = [...chart.svg.matchAll(/aria-roledescription="bar" d="M0,[\d.]+h([\d.]+)/g)].map((m) => Number(m[1]));
    expect(widths).toHaveLength(2);
    expect(widths[1] / widths[0]).toBeCloseTo(31.7 / 2.5, 1);
    await expectPicture(chart.png);
    await expect(benchmarkChart([{ engine: 'x', secondsPerEpoch: Number.NaN }])).rejects.toThrow(/x has NaN seconds per epoch/);
  });
});
