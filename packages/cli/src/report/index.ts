/**
 * `descent report`: pictures of a trained model. buildReport takes everything in memory (model,
 * history, data) and returns the page and the charts; writeReport puts them in a folder.
 *
 *   report.html            the page, self-contained (open it anywhere, offline)
 *   samples.png            25 training images with their class names
 *   loss.png accuracy.png  training and validation curves per epoch
 *   confusion.png          which classes get mistaken for which, on the test set
 *   predictions.png        the first 15 test images beside their class probabilities
 *   precision-recall.png   precision and recall of every class
 *   filters.png            (convolutional models) the first convolution's filters
 *   feature-maps.png       (convolutional models) what those filters make of a test image
 */
import type { ImageDataset, Sequential } from '@descent/engine';
import {
  confusionSpec,
  curveSpec,
  precisionRecallSpec,
  predictionsSpec,
  sampleGridSpec,
  type CurveHistory,
  type PredictedImage,
} from './charts.js';
import { evaluateClassifier, predictProbabilities, type ClassifierEvaluation } from '../evaluation.js';
import { featureMapsSpec, filtersSpec, firstConvLayer } from './conv-charts.js';
import { REPORT_FILE, writeFilesAtomic } from './files.js';
import { reportPage, type PageChart } from './html.js';
import { imageAt } from './images.js';
import { renderVegaLite, type RenderedChart, type TopLevelSpec } from './render.js';

export { benchmarkChart, benchmarkSpec, type BenchmarkRow } from './charts.js';
export { renderVegaLite, type RenderedChart } from './render.js';
export { OutputError, REPORT_FILE, writeFileAtomic, writeFilesAtomic } from './files.js';

export interface ReportInput {
  model: Sequential;
  /** Per-epoch history; without it (e.g. a model imported from TensorFlow.js) the curves are left out. */
  history?: CurveHistory | null;
  train: ImageDataset;
  test: ImageDataset;
  /** Default: the test set's class names. */
  classNames?: readonly string[];
  title?: string;
  /** Extra facts for the top of the page, e.g. the layers and the optimizer. */
  details?: readonly string[];
  /** Fraction of `train` held out for validation while training (the last images, as Keras takes them). */
  validationSplit?: number;
  /** Images in the sample grid (default 25) and in the predictions chart (default 15). */
  samples?: number;
  predictions?: number;
  /** Charts to put first (e.g. a search's trials). */
  charts?: readonly ChartPlan[];
  /** The model's test-set probabilities when already known (e.g. stored), instead of predicting again. */
  probabilities?: Float32Array;
}

export interface ReportChart extends RenderedChart {
  name: string;
  title: string;
  /** File name of the PNG. */
  file: string;
}

/** The numbers behind the charts, as embedded in report.html (#report-data). */
export interface ReportData {
  title: string;
  classNames: string[];
  trainImages: number;
  testImages: number;
  /** Test-set results, in the shape `descent evaluate --json` prints. */
  evaluation: ClassifierEvaluation;
  history: CurveHistory | null;
  charts: Array<{ name: string; file: string; width: number; height: number }>;
}

export interface Report {
  html: string;
  charts: ReportChart[];
  data: ReportData;
}


export interface ChartPlan {
  name: string;
  title: string;
  explanation: string;
  spec: TopLevelSpec;
}

export async function buildReport(input: ReportInput): Promise<Report> {
  const { model, train, test } = input;
  const classNames = [...(input.classNames ?? test.classNames)];
  const title = input.title ?? 'descent report';
  const history = input.history && input.history.loss.length > 0 ? input.history : null;

  const probabilities = input.probabilities ?? predictProbabilities(model, test);
  const evaluation = evaluateClassifier(model, test, probabilities, classNames.length);
  const shown = Math.min(input.predictions ?? 15, test.count);
  const predicted: PredictedImage[] = [];
  for (let i = 0; i < shown; i++) {
    const width = classNames.length;
    predicted.push({ ...imageAt(test, i), probabilities: probabilities.subarray(i * width, (i + 1) * width), label: test.labels[i], caption: `test[${i}]` });
  }

  const plans: ChartPlan[] = [
    ...(input.charts ?? []),
    {
      name: 'samples',
      title: 'Training images',
      explanation: 'What the model learns from: real images of the training set (28×28 pixels each) and the class each one is labelled with.',
      spec: await sampleGridSpec(train, classNames, { count: input.samples ?? 25 }),
    },
  ];
  if (history) {
    plans.push(
      {
        name: 'loss',
        title: 'Loss per epoch',
        explanation: 'The loss falls as the model learns. If validation loss turns upward while training loss keeps falling, the model has started to memorise the training images (overfitting).',
        spec: curveSpec(history, 'loss'),
      },
      {
        name: 'accuracy',
        title: 'Accuracy per epoch',
        explanation: 'The share of images classified correctly after each epoch; validation accuracy is measured on images held out from training.',
        spec: curveSpec(history, 'accuracy'),
      },
    );
  }
  const first = firstConvLayer(model);
  if (first) {
    plans.push(
      {
        name: 'filters',
        title: 'First-layer filters',
        explanation: 'Each filter of the first convolution is a small pattern of weights slid over the image; where the image looks like it, the filter responds strongly. Edges and strokes in light and dark are typical.',
        spec: await filtersSpec(first),
      },
      {
        name: 'feature-maps',
        title: 'Feature maps',
        explanation: 'What the first convolution makes of one test image: one map per filter, bright where that filter found its pattern. The layers after it work on these maps, not on the pixels.',
        spec: await featureMapsSpec(model, first, test),
      },
    );
  }
  plans.push(
    {
      name: 'confusion',
      title: 'Confusion matrix',
      explanation: 'Each row is a true class, each column the class the model chose. The diagonal counts the right answers; a dark cell off the diagonal shows two classes the model mixes up.',
      spec: confusionSpec(evaluation.confusion, classNames),
    },
    {
      name: 'predictions',
      title: 'Predictions on test images',
      explanation: 'The first test images beside the probability the model gives each class. A blue caption is a right prediction, a red one a wrong prediction; the true class has a blue bar and a bold name.',
      spec: await predictionsSpec(predicted, classNames, { title: `The first ${shown} test images` }),
    },
    {
      name: 'precision-recall',
      title: 'Precision and recall per class',
      explanation: 'Precision: how often the model is right when it names this class. Recall: how many images of this class it finds. Low values point to the classes that need work.',
      spec: precisionRecallSpec(evaluation.per_class, classNames),
    },
  );

  const charts: ReportChart[] = [];
  for (const plan of plans) {
    const rendered = await renderVegaLite(plan.spec);
    charts.push({ ...rendered, name: plan.name, title: plan.title, file: `${plan.name}.png` });
  }

  const data: ReportData = {
    title,
    classNames,
    trainImages: train.count,
    testImages: test.count,
    evaluation,
    history: history ? plainHistory(history) : null,
    charts: charts.map(({ name, file, width, height }) => ({ name, file, width, height })),
  };
  const right = Math.round(evaluation.accuracy * test.count);
  const facts = [
    `Test accuracy ${(100 * evaluation.accuracy).toFixed(1)}% (${right} of ${test.count} images)`,
    `Test loss ${evaluation.loss.toFixed(4)}`,
    `${model.countParameters().toLocaleString('en-US')} parameters`,
    trainingImagesFact(train.count, input.validationSplit ?? 0),
  ];
  if (history) facts.push(`${history.loss.length} epoch${history.loss.length === 1 ? '' : 's'} trained`);
  facts.push(...(input.details ?? []));
  const notes = history ? [] : ['No training history was saved with this model, so the loss and accuracy curves are left out.'];
  const pageCharts: PageChart[] = charts.map((chart, i) => ({ ...chart, explanation: plans[i].explanation }));
  const html = reportPage({ title, facts, notes, charts: pageCharts, modelSummary: model.summary(), data });
  return { html, charts, data };
}

/** "54,000 training images (6,000 held out for validation)": what the model was trained on, as fit split it. */
export function trainingImagesFact(total: number, validationSplit: number): string {
  const trained = validationSplit > 0 ? Math.floor(total * (1 - validationSplit)) : total;
  const held = total - trained;
  return `${trained.toLocaleString('en-US')} training images${held > 0 ? ` (${held.toLocaleString('en-US')} held out for validation)` : ''}`;
}

/** Builds the report and writes report.html and one PNG per chart into `outDir`. */
export async function writeReport(outDir: string, input: ReportInput, { what = outDir }: { what?: string } = {}): Promise<{ report: Report; files: string[] }> {
  const report = await buildReport(input);
  const files = await writeFilesAtomic(
    outDir,
    [...report.charts.map((chart) => ({ name: chart.file, bytes: chart.png })), { name: REPORT_FILE, bytes: report.html }],
    what,
  );
  return { report, files };
}

/**
 * Images beside their probability bars, as one chart (`descent predict --plot`). Items with a
 * label get the right/wrong colouring; items without one (files from outside the data set) do not.
 */
export async function predictionPlot(items: readonly PredictedImage[], classNames: readonly string[], { title = 'Predictions', columns }: { title?: string; columns?: number } = {}): Promise<RenderedChart> {
  const spec = await predictionsSpec(items, classNames, { title, columns: columns ?? Math.min(3, Math.max(1, items.length)) });
  return renderVegaLite(spec);
}

export type { PredictedImage, CurveHistory } from './charts.js';

function plainHistory(history: CurveHistory): CurveHistory {
  const { epoch, loss, accuracy, val_loss, val_accuracy } = history;
  return { epoch: [...epoch], loss: [...loss], accuracy: [...accuracy], val_loss: [...val_loss], val_accuracy: [...val_accuracy] };
}
