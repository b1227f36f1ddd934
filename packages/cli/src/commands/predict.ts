/**
 * `descent predict MODEL_DIR (--index N... | IMAGE...)`: the most likely classes, with probabilities,
 * for test-set images or for image files (prepared as in image.ts).
 */
import type { Command } from 'commander';
import { UsageError, type BackendName, type ThreadCount, type DatasetName, type LoadedModel } from '@descent/engine';
import {
  backendOption, threadsOption, checkModelFits, classNamesOf, dataOption, datasetFor, datasetOption, jsonOption, openModel, readDataset, useBackend,
} from '../common.js';
import { argMax } from '../evaluation.js';
import { indexList, positiveInteger } from '../flags.js';
import { IMAGE_SIZE, prepareImage } from '../image.js';
import type { CliContext, CliModule } from '../module.js';
import { Output, table } from '../output.js';

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

interface PredictFlags {
  index?: number[];
  top: number;
  data?: string;
  dataset?: DatasetName;
  backend: BackendName;
  threads: ThreadCount;
  json?: boolean;
  [extension: string]: unknown;
}

export const predictModule: CliModule = {
  register(program, context) {
    const command = program
      .command('predict')
      .description('classify test-set images (--index) or image files (PNG, JPEG, ...) with a saved model')
      .argument('<model_dir>', 'folder holding model.json and weights.bin')
      .argument('[images...]', 'image files to classify')
      .option('--index <n...>', 'test-set image indices (0-based)', indexList)
      .option('--top <k>', 'how many classes to show', positiveInteger, 3)
      .addOption(dataOption())
      .addOption(datasetOption('dataset of the class names and of --index (default: the one the model was trained on)'))
      .addOption(backendOption().default('wasm'))
      .addOption(threadsOption())
      .addOption(jsonOption());
    for (const extension of context.predictExtensions) extension.options?.(command);
    command.action(async (modelDir: string, images: string[], flags: PredictFlags, _cmd: Command) => predict(modelDir, images, flags, context));
  },
};

async function predict(modelDir: string, images: string[], flags: PredictFlags, context: CliContext): Promise<void> {
  const output = new Output({ json: flags.json === true });
  const indices = flags.index ?? [];
  if (indices.length === 0 && images.length === 0) throw new UsageError('nothing to predict: give test-set indices with --index N..., or image files');
  if (indices.length > 0 && images.length > 0) throw new UsageError('give either --index or image files, not both');
  for (const extension of context.predictExtensions) extension.validate?.(flags);
  useBackend(flags.backend, output, flags.threads);
  const loaded = await openModel(modelDir, output);
  const dataset = datasetFor(loaded, flags.dataset);

  let inputs: Array<Pick<Prediction, 'input' | 'pixels' | 'trueLabel' | 'inverted'>>;
  let classNames: string[];
  if (indices.length > 0) {
    const data = await readDataset(dataset, flags.data, output);
    const test = data.test;
    checkModelFits(loaded, data.classNames.length, test.rows * test.cols, data.name);
    for (const i of indices) {
      if (i >= test.count) throw new UsageError(`--index ${i}: the ${data.name} test set has ${test.count} images (0 to ${test.count - 1})`);
    }
    const size = test.rows * test.cols;
    inputs = indices.map((i) => ({ input: `test[${i}]`, pixels: test.images.slice(i * size, (i + 1) * size), trueLabel: test.labels[i] }));
    classNames = data.classNames;
  } else {
    classNames = loaded.metadata?.classNames ?? classNamesOf(dataset);
    checkModelFits(loaded, classNames.length, IMAGE_SIZE * IMAGE_SIZE, `${dataset} (${IMAGE_SIZE}×${IMAGE_SIZE})`);
    inputs = [];
    for (const file of images) {
      const prepared = await prepareImage(file);
      inputs.push({ input: file, pixels: prepared.pixels, inverted: prepared.inverted });
    }
  }
  if (flags.top > classNames.length) throw new UsageError(`--top ${flags.top}: the model has only ${classNames.length} classes`);

  const predictions = classify(loaded, inputs, classNames);
  for (const p of predictions) {
    output.record({
      input: p.input,
      label: p.label,
      class: p.class,
      probabilities: p.probabilities,
      ...(p.trueLabel !== undefined ? { true_label: p.trueLabel, true_class: classNames[p.trueLabel] } : {}),
    });
    const about = p.trueLabel !== undefined ? ` (true class: ${classNames[p.trueLabel]})` : p.inverted ? ' (light background, inverted)' : '';
    output.line(`${p.input}${about}`);
    const top = topClasses(p.probabilities, flags.top).map((c) => [`  ${classNames[c]}`, `${(p.probabilities[c] * 100).toFixed(1)}%`]);
    for (const line of table(top, ['l', 'r'])) output.line(line);
  }
  for (const extension of context.predictExtensions) {
    await extension.finish?.({ options: flags, model: loaded.model, modelDir: loaded.dir, classNames, predictions, output });
  }
}

function classify(loaded: LoadedModel, inputs: Array<Pick<Prediction, 'input' | 'pixels' | 'trueLabel' | 'inverted'>>, classNames: string[]): Prediction[] {
  const [rows, cols] = [IMAGE_SIZE, IMAGE_SIZE];
  const images = new Uint8Array(inputs.length * rows * cols);
  inputs.forEach((input, i) => images.set(input.pixels, i * rows * cols));
  const out = loaded.model.predict({ images, count: inputs.length, rows, cols });
  const classes = classNames.length;
  const predictions = inputs.map((input, i) => {
    const probabilities = Array.from(out.data.subarray(i * classes, (i + 1) * classes));
    const label = argMax(probabilities);
    return { ...input, label, class: classNames[label], probabilities };
  });
  out.dispose();
  return predictions;
}

/** Indices of the k largest probabilities, largest first. */
export function topClasses(probabilities: readonly number[], k: number): number[] {
  return probabilities
    .map((p, i) => [p, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i);
}
