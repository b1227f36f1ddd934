/** `descent summary MODEL_DIR`: Keras's layer table, and how the model was trained when descent trained it. */
import { setBackend, type TrainingMetadata } from '@descent/engine';
import { openModel } from '../common.js';
import { commandLine, shellWord } from '../invocation.js';
import type { CliModule } from '../module.js';
import { Output, count, metric } from '../output.js';

export const summaryModule: CliModule = {
  register(program) {
    program
      .command('summary')
      .description('show a saved model\'s layers, output shapes and parameter counts')
      .argument('<model_dir>', 'folder holding model.json and weights.bin')
      .action(async (modelDir: string) => summary(modelDir));
  },
};

async function summary(modelDir: string): Promise<void> {
  const output = new Output();
  // Nothing is computed here: the reference kernels hold the weights without any notice about WASM.
  setBackend('ts');
  const loaded = await openModel(modelDir, output);
  for (const line of loaded.model.summary().split('\n')) output.line(line);
  const generatedBy = loaded.artifacts.generatedBy ?? 'an unknown program';
  output.line(`Saved by ${generatedBy}${loaded.artifacts.convertedBy ? `, converted by ${loaded.artifacts.convertedBy}` : ''}`);
  if (loaded.metadata) for (const line of trainingLines(loaded.metadata, modelDir)) output.line(line);
}

/**
 * How a model was trained, from its descent-training.json. Step counts: the Training line has the
 * steps trained in all; the Weights line, when the weights kept are an earlier epoch's, the steps
 * behind those weights.
 */
export function trainingLines(meta: TrainingMetadata, dir = 'MODEL_DIR'): string[] {
  const resume = `continue with ${commandLine(`train --resume ${shellWord(dir)}`)}`;
  const lines: string[] = [];
  const settings = (meta.hyperparameters ?? {}) as Record<string, unknown>;
  const where = meta.position ? ` in epoch ${meta.position.epoch + 1} after batch ${meta.position.batch}` : '';
  const statuses: Record<string, string> = {
    complete: 'complete',
    checkpoint: `checkpoint at the end of an epoch; ${resume}`,
    'stopped-early': 'stopped early',
    'terminated-nan': `stopped: the loss became NaN${where}`,
    interrupted: `interrupted${where}; ${resume}`,
  };
  const status = statuses[meta.status ?? ''] ?? 'unknown';
  if (meta.dataset) lines.push(`Trained on ${meta.dataset}: ${meta.epochsCompleted ?? 0} of ${meta.epochs ?? '?'} epochs (${status})`);
  const optimizer = meta.optimizer ? `${meta.optimizer.name} (${settingsText(meta.optimizer.config)})` : undefined;
  // Files saved before stepsCompleted existed: the optimizer's count is the total only when the last epoch's weights were kept.
  const steps = meta.stepsCompleted ?? (meta.weightsFromEpoch === undefined ? meta.optimizer?.state?.iterations : undefined);
  const parts = [
    optimizer && `optimizer ${optimizer}`,
    settings.batchSize !== undefined && `batch size ${String(settings.batchSize)}`,
    meta.seed !== undefined && `seed ${meta.seed}`,
    meta.backend && `backend ${meta.backend}`,
    steps !== undefined && `${count(steps)} step${steps === 1 ? '' : 's'}`,
  ].filter(Boolean);
  if (parts.length) lines.push(`Training: ${parts.join(', ')}`);
  const h = meta.history;
  if (h && h.loss.length > 0) {
    const last = h.loss.length - 1;
    const val = h.val_loss.length > 0 ? ` - val_loss: ${metric(h.val_loss[h.val_loss.length - 1])} - val_accuracy: ${metric(h.val_accuracy[h.val_accuracy.length - 1])}` : '';
    lines.push(`Last epoch: loss: ${metric(h.loss[last])} - accuracy: ${metric(h.accuracy[last])}${val}`);
  }
  if (meta.weightsFromEpoch !== undefined) {
    const epoch = meta.weightsFromEpoch + 1;
    const after = meta.stepsPerEpoch ? ` (after ${count(epoch * meta.stepsPerEpoch)} steps)` : '';
    const why = meta.status === 'terminated-nan' ? 'the last that ended with finite metrics' : `the best on ${meta.history?.val_loss.length ? 'val_loss' : 'loss'}`;
    lines.push(`Weights: from epoch ${epoch}${after}, ${why}`);
  }
  if (meta.test) lines.push(`Test: loss: ${metric(meta.test.loss)} - accuracy: ${metric(meta.test.accuracy)}`);
  return lines;
}

/** "learning_rate 0.001, beta_1 0.9", a schedule as "learning_rate ExponentialDecay(initial_learning_rate 0.01, ...)". */
function settingsText(config: Record<string, unknown>): string {
  return Object.entries(config)
    .filter(([key]) => key !== 'name')
    .map(([key, value]) => {
      if (value === null || typeof value !== 'object') return `${key} ${String(value)}`;
      const { class_name: name, config: inner } = value as { class_name?: unknown; config?: Record<string, unknown> };
      return `${key} ${String(name)}(${inner && typeof inner === 'object' ? settingsText(inner) : ''})`;
    })
    .join(', ');
}
