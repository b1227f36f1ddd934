/** `descent evaluate MODEL_DIR`: test-set loss and accuracy, per-class precision and recall, confusion matrix. */
import { Option, type Command } from 'commander';
import type { BackendName, DatasetName, ThreadCount } from '@descent/engine';
import {
  backendOption, threadsOption, checkModelFits, dataOption, datasetFor, datasetOption, jsonOption, openModel, readDataset, useBackend, warnIfOtherDataset,
} from '../common.js';
import { evaluateClassifier, predictProbabilities, type ClassifierEvaluation } from '../evaluation.js';
import { positiveInteger } from '../flags.js';
import type { CliContext, CliModule, EvaluateRun } from '../module.js';
import { Output, count, metric, shortPath, table } from '../output.js';

interface EvaluateFlags {
  batchSize: number;
  topKAccuracy?: number;
  data?: string;
  dataset?: DatasetName;
  backend: BackendName;
  threads: ThreadCount;
  json?: boolean;
  [extension: string]: unknown;
}

export const evaluateModule: CliModule = {
  register(program, context) {
    const command = program
      .command('evaluate')
      .description('test a saved model: loss, accuracy, per-class precision and recall, confusion matrix')
      .argument('<model_dir>', 'folder holding model.json and weights.bin')
      .option('--batch-size <n>', 'images per forward pass (the numbers do not depend on it)', positiveInteger, 32)
      .addOption(new Option('--top-k-accuracy [k]', 'also report sparse_top_k_categorical_accuracy: the true class among the k most likely (default k: 5)').argParser(positiveInteger).preset(5))
      .addOption(dataOption())
      .addOption(datasetOption('dataset to test on (default: the one the model was trained on)'))
      .addOption(backendOption().default('wasm'))
      .addOption(threadsOption())
      .addOption(jsonOption('one'));
    for (const extension of context.evaluateExtensions) extension.options?.(command);
    command.action(async (modelDir: string, flags: EvaluateFlags, _cmd: Command) => evaluate(modelDir, flags, context));
  },
};

async function evaluate(modelDir: string, flags: EvaluateFlags, context: CliContext): Promise<void> {
  const output = new Output({ json: flags.json === true });
  for (const extension of context.evaluateExtensions) extension.validate?.(flags);
  useBackend(flags.backend, output, flags.threads);
  const loaded = await openModel(modelDir, output);
  const dataset = datasetFor(loaded, flags.dataset);
  let data: EvaluateRun['data'] | undefined;
  for (const extension of context.evaluateExtensions) data ??= await extension.loadData?.(flags, flags.dataset ?? loaded.metadata?.dataset ?? dataset, output);
  data ??= await readDataset(dataset, flags.data, output);
  warnIfOtherDataset(loaded, data.name, output);
  checkModelFits(loaded, data.classNames.length, data.test.rows * data.test.cols, `${data.name}`);
  const probabilities = predictProbabilities(loaded.model, data.test, flags.batchSize);
  const result = evaluateClassifier(loaded.model, data.test, probabilities, undefined, flags.batchSize, flags.topKAccuracy);
  if (output.json) {
    output.record({ ...result });
  } else {
    output.line(`Model ${shortPath(loaded.dir)} on the ${data.name} test set: ${count(data.test.count)} images from ${shortPath(data.dir)}`);
    output.line();
    const topK = result.sparse_top_k_categorical_accuracy;
    output.line(`loss: ${metric(result.loss)} - accuracy: ${metric(result.accuracy)}${topK !== undefined ? ` - sparse_top_k_categorical_accuracy: ${metric(topK)}` : ''}`);
    output.line();
    for (const line of formatEvaluation(result)) output.line(line);
  }
  for (const extension of context.evaluateExtensions) {
    await extension.finish?.({ options: flags, model: loaded.model, modelDir: loaded.dir, data, probabilities, result, output });
  }
}

/** The per-class table and the confusion matrix, as text lines. */
export function formatEvaluation(result: ClassifierEvaluation): string[] {
  const names = result.per_class.map((c, i) => `${i} ${c.class}`);
  const perClass = table(
    [['Class', 'Precision', 'Recall', 'Support'], ...result.per_class.map((c, i) => [names[i], c.precision.toFixed(4), c.recall.toFixed(4), String(c.support)])],
    ['l', 'r', 'r', 'r'],
  );
  const confusion = table(
    [['true \\ predicted', ...names.map((_, i) => String(i))], ...result.confusion.map((row, i) => [names[i], ...row.map(String)])],
    ['l', ...names.map((): 'r' => 'r')],
  );
  return [...perClass, '', 'Confusion matrix (rows: true class, columns: predicted class)', ...confusion];
}
