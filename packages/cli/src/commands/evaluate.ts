/** `descent evaluate MODEL_DIR`: test-set loss and accuracy, per-class precision and recall, confusion matrix. */
import type { Command } from 'commander';
import type { BackendName, DatasetName } from '@descent/engine';
import {
  backendOption, checkModelFits, dataOption, datasetFor, datasetOption, jsonOption, openModel, readDataset, useBackend,
} from '../common.js';
import { evaluateClassifier, type ClassifierEvaluation } from '../evaluation.js';
import type { CliModule } from '../module.js';
import { Output, count, metric, shortPath, table } from '../output.js';

interface EvaluateFlags {
  data?: string;
  dataset?: DatasetName;
  backend: BackendName;
  json?: boolean;
}

export const evaluateModule: CliModule = {
  register(program) {
    program
      .command('evaluate')
      .description('test a saved model: loss, accuracy, per-class precision and recall, confusion matrix')
      .argument('<model_dir>', 'folder holding model.json and weights.bin')
      .addOption(dataOption())
      .addOption(datasetOption('dataset to test on (default: the one the model was trained on)'))
      .addOption(backendOption().default('wasm'))
      .addOption(jsonOption())
      .action(async (modelDir: string, flags: EvaluateFlags, _cmd: Command) => evaluate(modelDir, flags));
  },
};

async function evaluate(modelDir: string, flags: EvaluateFlags): Promise<void> {
  const output = new Output({ json: flags.json === true });
  useBackend(flags.backend, output);
  const loaded = await openModel(modelDir, output);
  const dataset = datasetFor(loaded, flags.dataset);
  const data = await readDataset(dataset, flags.data, output);
  checkModelFits(loaded, data.classNames.length, data.test.rows * data.test.cols, `${data.name}`);
  const result = evaluateClassifier(loaded.model, data.test);
  if (output.json) {
    output.record({ ...result });
    return;
  }
  output.line(`Model ${shortPath(loaded.dir)} on the ${data.name} test set: ${count(data.test.count)} images from ${shortPath(data.dir)}`);
  output.line();
  output.line(`loss: ${metric(result.loss)} - accuracy: ${metric(result.accuracy)}`);
  output.line();
  for (const line of formatEvaluation(result)) output.line(line);
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
