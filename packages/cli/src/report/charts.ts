/**
 * The report's charts as vega-lite specs, each with a function that renders it (render.ts).
 * Specs only describe data and encodings; layout, fonts and colours of the data come from
 * vega-lite, pixels of the data set from the images themselves (images.ts).
 */
import { grayImagePng, imageAt, pngDataUri, type GrayImage } from './images.js';
import { renderVegaLite, type RenderedChart, type TopLevelSpec } from './render.js';

/** The per-epoch numbers the curves need (the engine's History has them). */
export interface CurveHistory {
  epoch: number[];
  loss: number[];
  accuracy: number[];
  val_loss: number[];
  val_accuracy: number[];
}

export interface ClassScores {
  precision: number;
  recall: number;
}

export interface PredictedImage extends GrayImage {
  /** Probability of each class, in class order. */
  probabilities: ArrayLike<number>;
  /** The true class, when known (test-set images); external images have none. */
  label?: number;
  /** What to call the image in its caption, e.g. "test #3" or a file name. */
  caption: string;
}

export interface BenchmarkRow {
  engine: string;
  secondsPerEpoch: number;
}

const BLUE = '#2f6db5';
const ORANGE = '#e8832a';
const RED = '#d62728';
const GRAY = '#b8b8b8';
const IMAGE_SIZE = 84;

// ---- sample grid ---------------------------------------------------------------------------

/** The first `count` images of a data set in a grid, each with its class name under it. */
export async function sampleGridSpec(
  dataset: { images: Uint8Array; labels: Uint8Array; count: number; rows: number; cols: number },
  classNames: readonly string[],
  { count = 25, columns = 5, title = 'Training images' }: { count?: number; columns?: number; title?: string } = {},
): Promise<TopLevelSpec> {
  const shown = Math.min(count, dataset.count);
  const values = [];
  for (let i = 0; i < shown; i++) {
    const png = await grayImagePng(imageAt(dataset, i), { size: IMAGE_SIZE * 2 });
    values.push({ column: i % columns, row: Math.floor(i / columns), url: pngDataUri(png), name: classNames[dataset.labels[i]] ?? String(dataset.labels[i]) });
  }
  const cell = { x: { field: 'column', type: 'ordinal', axis: null }, y: { field: 'row', type: 'ordinal', axis: null } };
  return {
    title: { text: title, subtitle: `the first ${shown}, with their class names` },
    data: { values },
    width: { step: IMAGE_SIZE + 30 },
    height: { step: IMAGE_SIZE + 28 },
    layer: [
      { mark: { type: 'image', width: IMAGE_SIZE, height: IMAGE_SIZE, yOffset: -8, aria: false }, encoding: { ...cell, url: { field: 'url', type: 'nominal' } } },
      { mark: { type: 'text', baseline: 'top', yOffset: IMAGE_SIZE / 2 - 4, fontSize: 12 }, encoding: { ...cell, text: { field: 'name', type: 'nominal' } } },
    ],
  } as TopLevelSpec;
}

// ---- training curves -----------------------------------------------------------------------

/** Training and validation curves of one metric per epoch ('loss' or 'accuracy'). */
export function curveSpec(history: CurveHistory, metric: 'loss' | 'accuracy'): TopLevelSpec {
  const validation = metric === 'loss' ? history.val_loss : history.val_accuracy;
  const values: Array<{ epoch: number; value: number; set: string }> = [];
  history[metric].forEach((value, i) => values.push({ epoch: history.epoch[i] + 1, value, set: 'Training' }));
  validation.forEach((value, i) => values.push({ epoch: history.epoch[i] + 1, value, set: 'Validation' }));
  const sets = validation.length > 0 ? ['Training', 'Validation'] : ['Training'];
  const isLoss = metric === 'loss';
  return {
    title: {
      text: isLoss ? 'Loss per epoch' : 'Accuracy per epoch',
      subtitle: isLoss ? 'cross-entropy; lower is better' : 'share classified correctly; higher is better',
    },
    data: { values },
    // Both curves get the same outer size, so they sit side by side at the same scale.
    width: 440,
    height: 300,
    autosize: { type: 'fit', contains: 'padding' },
    mark: { type: 'line', point: { size: 50, filled: true }, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'Epoch', scale: { nice: false, padding: 12 }, axis: { tickMinStep: 1, format: 'd' } },
      y: {
        field: 'value', type: 'quantitative', title: isLoss ? 'Loss' : 'Accuracy', scale: { zero: false, padding: 8 },
        axis: { format: isLoss ? '.3~r' : '.0%' },
      },
      color: { field: 'set', type: 'nominal', title: null, scale: { domain: sets, range: [BLUE, ORANGE] }, legend: { orient: 'top', direction: 'horizontal' } },
    },
  } as TopLevelSpec;
}

// ---- confusion matrix ----------------------------------------------------------------------

/** Heatmap of confusion[true][predicted] with the count in every cell. */
export function confusionSpec(confusion: number[][], classNames: readonly string[]): TopLevelSpec {
  const values = confusion.flatMap((row, t) => row.map((count, p) => ({ truth: classNames[t], predicted: classNames[p], count, diagonal: t === p })));
  const total = values.reduce((sum, v) => sum + v.count, 0);
  const max = Math.max(1, ...values.map((v) => v.count));
  const order = [...classNames];
  return {
    title: { text: 'Confusion matrix', subtitle: `${total} test images: row = true class, column = predicted class` },
    data: { values },
    width: { step: 46 },
    height: { step: 34 },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: order, title: 'Predicted class', axis: { orient: 'top', labelAngle: -40, labelAlign: 'left', domain: false, ticks: false } },
      y: { field: 'truth', type: 'nominal', sort: order, title: 'True class', axis: { domain: false, ticks: false, labelPadding: 6 } },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: { color: { field: 'count', type: 'quantitative', title: 'Images', scale: { domain: [0, max], range: ['#f5f8fc', '#0b4f9c'], interpolate: 'rgb' }, legend: { gradientLength: 200 } } },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: `datum.count > ${max / 2}`, value: 'white' }, value: '#222' },
          opacity: { condition: { test: 'datum.count === 0', value: 0.35 }, value: 1 },
        },
      },
    ],
  } as TopLevelSpec;
}

// ---- precision and recall ------------------------------------------------------------------

/** Grouped horizontal bars: precision and recall of every class. */
export function precisionRecallSpec(perClass: readonly ClassScores[], classNames: readonly string[]): TopLevelSpec {
  const values = perClass.flatMap((scores, i) => [
    { name: classNames[i], metric: 'Precision', value: scores.precision },
    { name: classNames[i], metric: 'Recall', value: scores.recall },
  ]);
  const y = { field: 'name', type: 'nominal', scale: { domain: [...classNames] }, title: null };
  return {
    title: {
      text: 'Precision and recall per class',
      subtitle: ['precision: of the images predicted as this class, the share that are it', 'recall: of the images of this class, the share found'],
    },
    data: { values },
    width: 360,
    height: 36 * classNames.length,
    encoding: {
      y,
      yOffset: { field: 'metric', type: 'nominal', sort: ['Precision', 'Recall'] },
      x: { field: 'value', type: 'quantitative', title: null, scale: { domain: [0, 1.08] }, axis: { format: '.0%', values: [0, 0.25, 0.5, 0.75, 1] } },
    },
    layer: [
      {
        mark: { type: 'bar', height: { band: 0.9 } },
        encoding: { color: { field: 'metric', type: 'nominal', title: null, scale: { domain: ['Precision', 'Recall'], range: [BLUE, ORANGE] }, legend: { orient: 'top', direction: 'horizontal' } } },
      },
      { mark: { type: 'text', align: 'left', dx: 3, fontSize: 9, color: '#333' }, encoding: { text: { field: 'value', type: 'quantitative', format: '.0%' } } },
    ],
  } as TopLevelSpec;
}

// ---- predictions ---------------------------------------------------------------------------

/**
 * Each image beside the bars of its class probabilities, in the tutorials' colours: the true
 * class's bar is blue (its name bold), a wrong prediction's bar red, and the caption blue when the
 * prediction is right, red when it is wrong. Images without a known class only mark the prediction.
 */
export async function predictionsSpec(
  items: readonly PredictedImage[],
  classNames: readonly string[],
  { columns = 3, title = 'Predictions' }: { columns?: number; title?: string } = {},
): Promise<TopLevelSpec> {
  const labelled = items.some((item) => item.label !== undefined);
  // Tutorial colours: the true class is blue, a wrong prediction red, everything else gray.
  const kinds = labelled ? ['True class', 'Wrong prediction', 'Other classes'] : ['Predicted class', 'Other classes'];
  const colours = labelled ? [BLUE, RED, GRAY] : [BLUE, GRAY];
  const panels = [];
  let right = 0;
  for (const item of items) {
    const probabilities = Array.from(item.probabilities);
    const predicted = argmax(probabilities);
    const correct = item.label === undefined ? undefined : predicted === item.label;
    if (correct) right++;
    const kindOf = (c: number): string => {
      if (!labelled) return c === predicted ? 'Predicted class' : 'Other classes';
      if (c === item.label) return 'True class';
      return c === predicted ? 'Wrong prediction' : 'Other classes';
    };
    const bars = probabilities.map((p, c) => ({ name: classNames[c] ?? String(c), p, kind: kindOf(c), marked: c === predicted || c === item.label }));
    const png = await grayImagePng(item, { size: IMAGE_SIZE * 2 });
    const trueName = item.label === undefined ? undefined : (classNames[item.label] ?? String(item.label));
    const captionColour = correct === undefined ? '#222' : correct ? BLUE : RED;
    const trueTest = trueName === undefined ? 'false' : `datum.value === ${JSON.stringify(trueName)}`;
    panels.push({
      title: {
        text: `${classNames[predicted] ?? predicted} ${formatPercent(probabilities[predicted])}`,
        subtitle: trueName === undefined ? item.caption : `${item.caption} · true: ${trueName}`,
        color: captionColour,
        subtitleColor: captionColour,
        fontSize: 13,
        anchor: 'start',
      },
      spacing: 6,
      hconcat: [
        {
          data: { values: [{ url: pngDataUri(png) }] },
          width: IMAGE_SIZE,
          height: IMAGE_SIZE,
          mark: { type: 'image', width: IMAGE_SIZE, height: IMAGE_SIZE, align: 'left', baseline: 'top', aria: false },
          encoding: { url: { field: 'url', type: 'nominal' }, x: { value: 0 }, y: { value: 0 } },
        },
        {
          data: { values: bars },
          width: 110,
          height: { step: 12 },
          encoding: {
            y: {
              field: 'name', type: 'nominal', scale: { domain: classNames.map((name, c) => name ?? String(c)) }, title: null,
              axis: {
                labelFontSize: 10, ticks: false, domain: false, labelPadding: 4,
                labelFontWeight: { condition: { test: trueTest, value: 'bold' }, value: 'normal' },
                labelColor: { condition: { test: trueTest, value: BLUE }, value: '#444' },
              },
            },
            x: { field: 'p', type: 'quantitative', title: null, scale: { domain: [0, 1] }, axis: { format: '.0%', values: [0, 0.5, 1], labelFontSize: 9, grid: true } },
          },
          layer: [
            { mark: { type: 'bar', height: { band: 0.8 } }, encoding: { color: { field: 'kind', type: 'nominal', title: null, scale: { domain: kinds, range: colours }, legend: { orient: 'top', direction: 'horizontal', symbolType: 'square' } } } },
            {
              transform: [{ filter: 'datum.marked && datum.p < 0.8' }],
              mark: { type: 'text', align: 'left', dx: 3, fontSize: 9, color: '#333' },
              encoding: { text: { field: 'p', type: 'quantitative', format: '.0%' } },
            },
            {
              transform: [{ filter: 'datum.marked && datum.p >= 0.8' }],
              mark: { type: 'text', align: 'right', dx: -3, fontSize: 9, color: 'white' },
              encoding: { text: { field: 'p', type: 'quantitative', format: '.0%' } },
            },
          ],
        },
      ],
    });
  }
  const subtitle = labelled
    ? `${right} of ${items.length} predicted right; a red caption marks a wrong prediction`
    : 'probability the model gives each class';
  return {
    title: { text: title, subtitle },
    concat: panels,
    columns,
    spacing: { row: 22, column: 34 },
    resolve: { scale: { color: 'shared' }, legend: { color: 'shared' } },
  } as TopLevelSpec;
}

// ---- benchmark -----------------------------------------------------------------------------

/**
 * Seconds per training epoch of each engine, fastest first. A linear axis keeps the ratios honest;
 * every bar carries its number, so short bars stay readable.
 */
export function benchmarkSpec(rows: readonly BenchmarkRow[], { title = 'Seconds per epoch' }: { title?: string } = {}): TopLevelSpec {
  const sorted = [...rows].sort((a, b) => a.secondsPerEpoch - b.secondsPerEpoch);
  const slowest = sorted[sorted.length - 1].secondsPerEpoch;
  return {
    title: { text: title, subtitle: 'one training epoch, lower is better' },
    data: { values: sorted.map((row) => ({ engine: row.engine, seconds: row.secondsPerEpoch })) },
    width: 420,
    height: { step: 28 },
    encoding: {
      y: { field: 'engine', type: 'nominal', title: null, scale: { domain: sorted.map((row) => row.engine) } },
      x: { field: 'seconds', type: 'quantitative', title: 'Seconds per epoch', scale: { domain: [0, slowest * 1.15], nice: true } },
    },
    layer: [
      { mark: { type: 'bar', color: BLUE, height: { band: 0.7 } } },
      { mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 }, encoding: { text: { field: 'seconds', type: 'quantitative', format: '.3~r' } } },
    ],
  } as TopLevelSpec;
}

/** The benchmark chart as SVG and PNG. */
export async function benchmarkChart(rows: readonly BenchmarkRow[], options?: { title?: string }): Promise<RenderedChart> {
  if (rows.length === 0) throw new RangeError('benchmarkChart needs at least one row');
  for (const row of rows) {
    if (!(row.secondsPerEpoch > 0) || !Number.isFinite(row.secondsPerEpoch)) {
      throw new RangeError(`benchmarkChart: ${row.engine} has ${row.secondsPerEpoch} seconds per epoch; expected a positive number`);
    }
  }
  return renderVegaLite(benchmarkSpec(rows, options));
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function formatPercent(p: number): string {
  return `${Math.round(100 * p)}%`;
}
