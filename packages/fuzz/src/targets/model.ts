/**
 * The model loader and the optimizer-state reader, on model folders made from a real saved model
 * (descent's, with its save stamp, and the same as tfjs writes it, without one): model.json and
 * descent-training.json edited as JSON (wrong types, huge sizes, deep nesting, repeated entries)
 * or as text, weights.bin and descent-optimizer.bin edited as bytes, and folders where a weight
 * file is a FIFO, a device, a folder or a link out of the folder.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  Random, adam, captureTrainingState, parseJsonText, dense, dropout, flatten, loadModel, loadModelArtifacts, restoreRun, saveModel, sequential,
} from '@descent/engine';
import { applyByteEdits, applyJsonEdits, applyTextEdit, byteEdit, jsonEdit, textEdit, type ByteEdit, type JsonEdit, type TextEdit } from '../mutate.js';
import type { FuzzTarget } from './target.js';

const SPECIALS = ['fifo', 'device', 'folder', 'link-out', 'missing'] as const;
type Special = (typeof SPECIALS)[number];

export interface ModelCase {
  /** 0: as descent saves it (with its save stamp); 1: as tfjs writes it (no stamp, no training file). */
  variant: 0 | 1;
  modelEdits: JsonEdit[];
  modelText: TextEdit;
  weightEdits: ByteEdit[];
  trainingEdits: JsonEdit[];
  trainingText: TextEdit;
  optimizerEdits: ByteEdit[];
  /**
   * Make descent-optimizer.bin agree with the (edited) slot lengths in descent-training.json, with
   * the right size and SHA-256, so the state reaches the model and is refused (or taken) there.
   */
  consistent: boolean;
  /** Which file is replaced by something that is not a regular file in the folder. */
  special?: { file: 'weights.bin' | 'model.json' | 'descent-optimizer.bin' | 'descent-training.json'; kind: Special };
}

export interface SavedFolder {
  model: Record<string, unknown>;
  weights: Uint8Array;
  training: Record<string, unknown>;
  optimizer: Uint8Array;
}

/** A small trained model saved by descent, read back as the four files' contents. */
export async function savedFolder(workDir: string): Promise<SavedFolder> {
  const model = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 8, activation: 'relu' }), dropout({ rate: 0.2 }), dense({ units: 10, activation: 'softmax' })], { seed: 3 });
  model.compile({ optimizer: adam(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const random = new Random(9);
  const images = Uint8Array.from({ length: 4 * 784 }, () => random.nextInt(256));
  model.trainOnBatch({ images, count: 4, rows: 28, cols: 28 }, [1, 2, 3, 4]);
  const dir = join(workDir, 'seed');
  await saveModel(dir, model, { dataset: 'fashion-mnist', seed: 3, epochs: 2, epochsCompleted: 1, status: 'checkpoint', ...captureTrainingState(model),
    history: { epoch: [0], loss: [1.5], accuracy: [0.5], val_loss: [], val_accuracy: [], seconds: [0.1] } });
  model.dispose();
  const read = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
  const saved = {
    model: JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')),
    weights: read('weights.bin'),
    training: JSON.parse(readFileSync(join(dir, 'descent-training.json'), 'utf8')),
    optimizer: read('descent-optimizer.bin'),
  };
  rmSync(dir, { recursive: true, force: true });
  return saved;
}

/** One case in thirty replaces a file with something that is not a regular file. */
const special = fc.oneof(
  { weight: 29, arbitrary: fc.constant(undefined) },
  {
    weight: 1,
    arbitrary: fc.record({
      file: fc.constantFrom('weights.bin' as const, 'model.json' as const, 'descent-optimizer.bin' as const, 'descent-training.json' as const),
      kind: fc.constantFrom(...SPECIALS),
    }),
  },
);

/** Model files edited, training state mostly left alone. */
export function modelTarget(saved: SavedFolder, workDir: string): FuzzTarget<ModelCase, void> {
  return folderTarget('model', 'model folders: model.json edited as JSON and as text, weights.bin as bytes, odd files', saved, workDir, fc.record({
    variant: fc.constantFrom(0 as const, 1 as const),
    modelEdits: fc.array(jsonEdit, { minLength: 1, maxLength: 3 }),
    modelText: textEdit,
    weightEdits: fc.array(byteEdit, { maxLength: 2 }),
    trainingEdits: fc.constant([]),
    trainingText: fc.constant(undefined),
    optimizerEdits: fc.constant([]),
    consistent: fc.constant(false),
    special,
  }), false);
}

/** descent-training.json and descent-optimizer.bin edited; the state, when it loads, is restored into the model. */
export function optimizerStateTarget(saved: SavedFolder, workDir: string): FuzzTarget<ModelCase, void> {
  return folderTarget('optimizer', 'training state: descent-training.json edited, descent-optimizer.bin as bytes, then restored into the model', saved, workDir, fc.record({
    variant: fc.constant(0 as const),
    modelEdits: fc.constant([]),
    modelText: fc.constant(undefined),
    weightEdits: fc.constant([]),
    trainingEdits: fc.array(jsonEdit, { maxLength: 3 }),
    trainingText: textEdit,
    optimizerEdits: fc.array(byteEdit, { maxLength: 2 }),
    consistent: fc.boolean(),
    special,
  }), true);
}

function folderTarget(name: string, description: string, saved: SavedFolder, workDir: string, arbitrary: fc.Arbitrary<ModelCase>, restore: boolean): FuzzTarget<ModelCase, void> {
  const dir = join(workDir, name);
  const outside = join(workDir, `${name}-outside.bin`);
  writeFileSync(outside, saved.weights);
  const tfjsModel = { ...saved.model };
  delete tfjsModel.userDefinedMetadata;
  return {
    name,
    description,
    arbitrary,
    prepare(input) {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const files: Record<string, string | Uint8Array> = {
        'model.json': applyTextEdit(applyJsonEdits(input.variant === 0 ? saved.model : tfjsModel, input.modelEdits), input.modelText),
        // The stamped variant checks weights.bin's hash (and waits for a save in progress), so its weights stay whole.
        'weights.bin': input.variant === 0 ? saved.weights : applyByteEdits(saved.weights, input.weightEdits),
      };
      if (input.variant === 0) {
        files['descent-training.json'] = applyTextEdit(applyJsonEdits(saved.training, input.trainingEdits), input.trainingText);
        files['descent-optimizer.bin'] = applyByteEdits(saved.optimizer, input.optimizerEdits);
        if (input.consistent) Object.assign(files, consistentState(files['descent-training.json'] as string));
      }
      for (const [file, contents] of Object.entries(files)) {
        if (input.special?.file !== file) writeFileSync(join(dir, file), contents);
      }
      if (input.special) makeSpecial(join(dir, input.special.file), input.special.kind, outside);
    },
    async run() {
      if (!restore) {
        const loaded = await loadModel(dir);
        loaded.model.dispose();
        return;
      }
      const run = restoreRun(await loadModelArtifacts(dir));
      run.optimizer.dispose?.();
      run.model.dispose();
    },
    describe: (input) => JSON.stringify(input, (_key, value: unknown) => (typeof value === 'string' && value.length > 60 ? `${value.slice(0, 60)}…(${value.length})` : value instanceof Uint8Array ? `bytes(${value.length})` : value)).slice(0, 2000),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** descent-training.json text with descent-optimizer.bin made to match its slot lengths (when they are lengths at all). */
function consistentState(text: string): Record<string, string | Uint8Array> {
  const parsed = parseJsonText(text); // the harness itself must not recurse into hostile nesting
  if ('problem' in parsed) return {};
  const json = parsed.value as { optimizer?: { state?: { slots?: unknown; sha256?: unknown } } };
  const slots = json?.optimizer?.state?.slots;
  if (typeof slots !== 'object' || slots === null) return {};
  let total = 0;
  for (const lengths of Object.values(slots)) {
    if (!Array.isArray(lengths) || !lengths.every((n) => Number.isInteger(n) && n >= 0)) return {};
    total += lengths.reduce((a: number, b: number) => a + b, 0);
  }
  if (total > 4_000_000) return {};
  const bytes = new Uint8Array(total * 4);
  json.optimizer!.state!.sha256 = createHash('sha256').update(bytes).digest('hex');
  return { 'descent-training.json': JSON.stringify(json), 'descent-optimizer.bin': bytes };
}

function makeSpecial(path: string, kind: Special, outside: string): void {
  switch (kind) {
    case 'fifo':
      spawnSync('mkfifo', [path]);
      break;
    case 'device':
      symlinkSync('/dev/zero', path);
      break;
    case 'folder':
      mkdirSync(path);
      break;
    case 'link-out':
      symlinkSync(outside, path);
      break;
    case 'missing':
      break;
  }
}
