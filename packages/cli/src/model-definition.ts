/**
 * Which model `descent train` builds:
 *   --model mlp         Flatten → Dense(h, relu) [→ Dropout(p)] … → Dense(classes, softmax), from --hidden and --dropout (the default)
 *   --model cnn         the tutorial CNN: conv2d 32 3×3 relu → maxpool 2 → conv2d 64 3×3 relu → maxpool 2 → flatten → dense 128 relu → dense softmax
 *   --layers SPEC       a one-line definition (grammar in @descent/engine's nn/spec.ts and docs/cli.md)
 *   --model FILE.json   the Sequential JSON Keras's model.to_json() or TensorFlow.js writes (or a model.json)
 * Every problem with a definition is a one-line usage error (exit 2) naming the flag and the
 * layer, raised before any data is read.
 */
import { resolve } from 'node:path';
import {
  CNN_LAYERS, DescentError, UsageError, checkDefinition, defineModel, dense, dropout, flatten, modelFromDefinitionText, parseLayers, readRegularFile, sequential,
  type Layer, type Sequential,
} from '@descent/engine';
import { shortPath } from './output.js';

export const MODEL_PRESETS = ['mlp', 'cnn'] as const;
export type ModelKind = 'mlp' | 'cnn' | 'layers' | 'json';

/** How the model was chosen, as saved with the run's settings. */
export interface ModelChoice {
  model: ModelKind;
  /** The --layers text, or the absolute path of the --model JSON file; null for the presets. */
  definition: string | null;
}

/** Largest model definition file read (a Keras or tfjs CNN's JSON is a few kilobytes). */
const MAX_DEFINITION_BYTES = 4 * 1024 * 1024;

/** Reads --model, --layers, --hidden and --dropout together; `given` tells which were on the command line. */
export function modelChoice(flags: { model?: string; layers?: string }, given: (key: string) => boolean): ModelChoice {
  if (flags.layers !== undefined && flags.model !== undefined) throw new UsageError('give either --model or --layers, not both');
  const choice: ModelChoice = flags.layers !== undefined
    ? { model: 'layers', definition: flags.layers }
    : flags.model === undefined || flags.model === 'mlp' ? { model: 'mlp', definition: null }
      : flags.model === 'cnn' ? { model: 'cnn', definition: null }
        : { model: 'json', definition: resolve(flags.model) };
  if (choice.model !== 'mlp') {
    const flag = choice.model === 'layers' ? '--layers' : `--model ${flags.model}`;
    for (const [key, option] of [['hidden', '--hidden'], ['dropout', '--dropout']]) {
      if (given(key)) throw new UsageError(`${option} applies to --model mlp only; with ${flag}, put the layers in the definition`);
    }
  }
  return choice;
}

/**
 * The model to train, built for per-sample inputs `inputShape` and `classes` outputs. `hidden`
 * and `dropout` shape the mlp.
 */
export function buildTrainingModel(
  choice: ModelChoice, settings: { hidden: number[]; dropout: number; seed: number }, inputShape: number[], classes: number,
): Sequential {
  switch (choice.model) {
    case 'mlp': {
      const layers: Layer[] = [flatten({ inputShape })];
      for (const units of settings.hidden) {
        layers.push(dense({ units, activation: 'relu' }));
        if (settings.dropout > 0) layers.push(dropout({ rate: settings.dropout }));
      }
      layers.push(dense({ units: classes, activation: 'softmax' }));
      // The same size caps as --layers, before any weight is made.
      const label = `--hidden ${settings.hidden.join(',')}`;
      asUsageError(label, () => checkDefinition(layers, { inputShape, classes, source: label, addOutput: false }));
      return sequential(layers, { seed: settings.seed });
    }
    case 'cnn':
      return asUsageError('--model cnn', () => defineModel(parseLayers(CNN_LAYERS), { inputShape, classes, seed: settings.seed, source: '--model cnn' }));
    case 'layers': {
      const text = choice.definition ?? '';
      const label = `--layers "${text.length > 60 ? `${text.slice(0, 57)}...` : text}"`;
      return asUsageError(label, () => defineModel(parseLayers(text), { inputShape, classes, seed: settings.seed, source: label }));
    }
    case 'json':
      return modelFromDefinitionFile(choice.definition!, settings.seed, inputShape, classes);
  }
}

function modelFromDefinitionFile(file: string, seed: number, dataShape: number[], classes: number): Sequential {
  const label = `--model ${shortPath(file)}`;
  const text = readRegularFile(file, MAX_DEFINITION_BYTES, (problem) => new UsageError(problem === 'file not found'
    ? `--model: '${file}' is neither mlp nor cnn, and there is no such file`
    : `${label}: ${problem === 'is a folder, not a file' ? 'is not a file (expected mlp, cnn, or a Keras/TensorFlow.js model JSON file)' : problem}`), 'model definition').toString('utf8');
  return asUsageError(label, () => modelFromDefinitionText(text, { source: label, inputShape: dataShape, classes, seed }));
}

/** Runs `build`; a DescentError it throws becomes a usage error (exit 2) that starts with `label`. */
function asUsageError<T>(label: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (!(err instanceof DescentError) || err instanceof UsageError) throw err;
    throw new UsageError(err.message.startsWith(label) ? err.message : `${label}: ${err.message}`);
  }
}
