/**
 * `descent predict MODEL_DIR (--index N... | --all | IMAGE... | FOLDER/)`: the most likely classes,
 * with probabilities, for test-set images, the whole test set, or image files (prepared as in
 * image.ts; a folder stands for the image files in it). `--csv FILE` writes every prediction to a
 * CSV file instead of printing it. Many inputs get a progress bar on a terminal.
 */
import { readdirSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DescentError, UsageError, fitLiveLine, type BackendName, type DatasetName, type LoadedModel, type ThreadCount } from '@descent/engine';
import {
  backendOption, threadsOption, checkModelFits, checkWritableFile, classNamesOf, createFolderFor, dataOption, datasetFor, datasetOption, jsonOption, openModel, readDataset, statOrUndefined,
  useBackend, warnIfOtherDataset,
} from '../common.js';
import { argMax } from '../evaluation.js';
import { INDEX_EXPECTED, indexList, positiveInteger, type IndexList } from '../flags.js';
import { IMAGE_SIZE, LOW_CONTRAST, prepareImage } from '../image.js';
import type { CliContext, CliModule } from '../module.js';
import { Output, count, metric, table } from '../output.js';
import { writeFileAtomic } from '../report/files.js';

export interface Prediction {
  /** "test[12]" for a test-set image, otherwise the file as given. */
  input: string;
  /** Predicted class index and name. */
  label: number;
  class: string;
  probabilities: number[];
  /** The true class index, for test-set images. */
  trueLabel?: number;
  /** The 28×28 image the model saw (0–255, light on dark). */
  pixels: Uint8Array;
  /** For image files: whether it was inverted because its background was light. */
  inverted?: boolean;
}

type Input = Pick<Prediction, 'input' | 'pixels' | 'trueLabel' | 'inverted'>;

interface PredictFlags {
  index?: IndexList;
  all?: boolean;
  top: number;
  csv?: string;
  batchSize: number;
  data?: string;
  dataset?: DatasetName;
  backend: BackendName;
  threads: ThreadCount;
  json?: boolean;
  [extension: string]: unknown;
}

/** File name endings taken from a folder (what sharp decodes). */
const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif']);

export const predictModule: CliModule = {
  register(program, context) {
    const command = program
      .command('predict')
      .description('classify test-set images (--index, --all) or image files and folders of them (PNG, JPEG, ...) with a saved model')
      .usage('MODEL_DIR (--index N... | --all | IMAGE... | FOLDER/) [options]')
      .argument('[model_dir]', 'folder holding model.json and weights.bin')
      .argument('[images...]', 'image files to classify, or folders of them')
      .option('--index <n...>', 'test-set image indices (0-based)', indexList)
      .option('--all', 'classify the whole test set')
      .option('--top <k>', 'how many classes to show', positiveInteger, 3)
      .option('--csv <file>', 'write every prediction to a CSV file (one row per input, a column per class) instead of printing them')
      .option('--batch-size <n>', 'images per forward pass', positiveInteger, 32)
      .addOption(dataOption())
      .addOption(datasetOption('dataset of the class names and of --index (default: the one the model was trained on)'))
      .addOption(backendOption().default('wasm'))
      .addOption(threadsOption())
      .addOption(jsonOption());
    for (const extension of context.predictExtensions) extension.options?.(command);
    command.action(async (modelDir: string | undefined, images: string[], flags: PredictFlags, _cmd: Command) => predict(modelDir, images, flags, context));
  },
};

async function predict(modelArgument: string | undefined, imageArguments: string[], flags: PredictFlags, context: CliContext): Promise<void> {
  const output = new Output({ json: flags.json === true });
  const { modelDir, images } = positionals(modelArgument, imageArguments, flags.index);
  const indices = flags.index?.indices ?? [];
  const ways = [indices.length > 0, flags.all === true, images.length > 0].filter(Boolean).length;
  if (ways === 0) throw new UsageError('nothing to predict: give test-set indices with --index N..., --all for the whole test set, or image files');
  if (ways > 1) throw new UsageError('give one of --index, --all or image files, not several');
  if (flags.csv !== undefined) checkWritableFile(flags.csv, `--csv ${flags.csv}`);
  for (const extension of context.predictExtensions) extension.validate?.(flags);
  const files = images.length > 0 ? imageFiles(images) : [];
  useBackend(flags.backend, output, flags.threads);
  const loaded = await openModel(modelDir, output);
  const dataset = datasetFor(loaded, flags.dataset);

  let inputs: Input[];
  let classNames: string[];
  if (files.length === 0) {
    warnIfOtherDataset(loaded, dataset, output);
    const data = await readDataset(dataset, flags.data, output);
    const test = data.test;
    checkModelFits(loaded, data.classNames.length, test.rows * test.cols, data.name);
    for (const i of indices) {
      if (i >= test.count) throw new UsageError(`--index ${i}: the ${data.name} test set has ${test.count} images (0 to ${test.count - 1})`);
    }
    const size = test.rows * test.cols;
    const chosen = flags.all ? Array.from({ length: test.count }, (_, i) => i) : indices;
    inputs = chosen.map((i) => ({ input: `test[${i}]`, pixels: test.images.subarray(i * size, (i + 1) * size), trueLabel: test.labels[i] }));
    classNames = data.classNames;
  } else {
    classNames = loaded.metadata?.classNames ?? classNamesOf(dataset);
    checkModelFits(loaded, classNames.length, IMAGE_SIZE * IMAGE_SIZE, `${dataset} (${IMAGE_SIZE}×${IMAGE_SIZE})`);
    inputs = await prepareImages(files, output);
  }
  if (flags.top > classNames.length) throw new UsageError(`--top ${flags.top}: the model has only ${classNames.length} classes`);

  const predictions = classify(loaded, inputs, classNames, flags.batchSize, output);
  if (flags.csv !== undefined) {
    await writePredictionsCsv(flags.csv, predictions, classNames);
    summarize(output, predictions, flags.csv);
  } else {
    for (const p of predictions) printPrediction(output, p, classNames, flags.top);
  }
  for (const extension of context.predictExtensions) {
    await extension.finish?.({ options: flags, model: loaded.model, modelDir: loaded.dir, classNames, predictions, output });
  }
}

/**
 * MODEL_DIR and the image files. `--index` takes any number of values, so in `predict --index 0 MODEL`
 * it has swallowed MODEL: a value of --index that is not a number is the model folder, when none came after.
 */
function positionals(modelDir: string | undefined, images: string[], index: IndexList | undefined): { modelDir: string; images: string[] } {
  const swallowed = index?.others ?? [];
  if (swallowed.length > 0) {
    if (modelDir !== undefined || swallowed.length > 1) throw new UsageError(`option '--index <n...>' argument '${swallowed[modelDir !== undefined ? 0 : 1]}' is invalid. ${INDEX_EXPECTED}`);
    return { modelDir: swallowed[0], images };
  }
  if (modelDir === undefined) throw new UsageError("missing required argument 'model_dir'");
  return { modelDir, images };
}

/** The image files named, a folder standing for the image files directly in it (by name order). */
function imageFiles(args: readonly string[]): string[] {
  const files: string[] = [];
  for (const arg of args) {
    if (!statOrUndefined(arg)?.isDirectory()) {
      files.push(arg);
      continue;
    }
    const inFolder = readdirSync(arg)
      .filter((name) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase()) && statOrUndefined(join(arg, name))?.isFile())
      .sort();
    if (inFolder.length === 0) throw new DescentError(`${arg}: the folder holds no image files (${[...IMAGE_EXTENSIONS].join(', ')})`);
    files.push(...inFolder.map((name) => join(arg, name)));
  }
  return files;
}

async function prepareImages(files: readonly string[], output: Output): Promise<Input[]> {
  const progress = progressBar(output, files.length);
  const inputs: Input[] = [];
  for (const file of files) {
    const prepared = await prepareImage(file);
    if (prepared.contrast < LOW_CONTRAST) {
      output.warn(`${file}: the image has almost no contrast (no pixel differs from its background by more than ${prepared.contrast} of 255 levels); the prediction means little`);
    }
    inputs.push({ input: file, pixels: prepared.pixels, inverted: prepared.inverted });
    progress(inputs.length);
  }
  return inputs;
}

/** Probabilities for every input, `batchSize` images per forward pass. */
function classify(loaded: LoadedModel, inputs: readonly Input[], classNames: string[], batchSize: number, output: Output): Prediction[] {
  const [rows, cols] = [IMAGE_SIZE, IMAGE_SIZE];
  const classes = classNames.length;
  const progress = progressBar(output, inputs.length);
  const predictions: Prediction[] = [];
  // A chunk at a time, so that a large set shows its progress; the result does not depend on the chunking.
  const chunk = Math.max(batchSize, 1024);
  for (let start = 0; start < inputs.length; start += chunk) {
    const part = inputs.slice(start, start + chunk);
    const images = new Uint8Array(part.length * rows * cols);
    part.forEach((input, i) => images.set(input.pixels, i * rows * cols));
    const out = loaded.model.predict({ images, count: part.length, rows, cols }, { batchSize });
    part.forEach((input, i) => {
      const probabilities = Array.from(out.data.subarray(i * classes, (i + 1) * classes));
      const label = argMax(probabilities);
      predictions.push({ ...input, label, class: classNames[label], probabilities });
    });
    out.dispose();
    progress(predictions.length);
  }
  return predictions;
}

/** A Keras-style progress line, on a terminal, for more than a handful of items. */
function progressBar(output: Output, total: number): (done: number) => void {
  if (!output.interactive || output.json || total < 50) return () => {};
  const started = performance.now();
  let drawn = -Infinity;
  return (done) => {
    const now = performance.now();
    if (now - drawn < 50 && done < total) return;
    drawn = now;
    const eta = done > 0 ? ((now - started) / 1000 / done) * (total - done) : 0;
    output.redraw(fitLiveLine(done, total, { eta, logs: {} }, output.columns));
    if (done === total) output.finishLine();
  };
}

function printPrediction(output: Output, p: Prediction, classNames: string[], top: number): void {
  output.record({
    input: p.input,
    label: p.label,
    class: p.class,
    probabilities: p.probabilities,
    ...(p.trueLabel !== undefined ? { true_label: p.trueLabel, true_class: classNames[p.trueLabel] } : {}),
  });
  const about = p.trueLabel !== undefined ? ` (true class: ${classNames[p.trueLabel]})` : p.inverted ? ' (light background, inverted)' : '';
  output.line(`${p.input}${about}`);
  const rows = topClasses(p.probabilities, top).map((c) => [`  ${classNames[c]}`, `${(p.probabilities[c] * 100).toFixed(1)}%`]);
  for (const line of table(rows, ['l', 'r'])) output.line(line);
}

/** `input,label,class,true_label,true_class,<one column per class: its probability>`. */
export function predictionsCsv(predictions: readonly Prediction[], classNames: readonly string[]): string {
  const header = ['input', 'label', 'class', 'true_label', 'true_class', ...classNames];
  const rows = predictions.map((p) => [
    p.input, String(p.label), p.class,
    p.trueLabel === undefined ? '' : String(p.trueLabel), p.trueLabel === undefined ? '' : classNames[p.trueLabel],
    ...p.probabilities.map(String),
  ]);
  return [header, ...rows].map((row) => row.map(csvField).join(',')).join('\n') + '\n';
}

async function writePredictionsCsv(file: string, predictions: readonly Prediction[], classNames: readonly string[]): Promise<void> {
  createFolderFor(file, `--csv ${file}`);
  try {
    await writeFileAtomic(resolve(file), predictionsCsv(predictions, classNames));
  } catch (err) {
    throw new DescentError(`--csv ${file}: cannot write it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function summarize(output: Output, predictions: readonly Prediction[], file: string): void {
  const labelled = predictions.filter((p) => p.trueLabel !== undefined);
  const right = labelled.filter((p) => p.label === p.trueLabel).length;
  const accuracy = labelled.length > 0 ? right / labelled.length : undefined;
  output.line(`Wrote ${count(predictions.length)} prediction${predictions.length === 1 ? '' : 's'} to ${file}`);
  if (accuracy !== undefined) output.line(`accuracy: ${metric(accuracy)} (${count(right)} of ${count(labelled.length)} right)`);
  output.record({ csv: resolve(file), predictions: predictions.length, ...(accuracy !== undefined ? { accuracy } : {}) });
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Indices of the k largest probabilities, largest first. */
export function topClasses(probabilities: readonly number[], k: number): number[] {
  return probabilities
    .map((p, i) => [p, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}
