/** Helpers several commands share: backend, data, model folders, and checks on where output goes. */
import { mkdirSync, mkdtempSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Option } from 'commander';
import {
  DATASET_NAMES, DescentError, FASHION_MNIST_CLASS_NAMES, MNIST_CLASS_NAMES, loadDataset, loadModel, onBackendWarning, setBackend,
  setThreads, turnOffJsInlining, type BackendName, type DatasetName, type LoadedDataset, type LoadedModel, type ThreadCount,
} from '@descent/engine';
import { threadCount } from './flags.js';
import type { Output } from './output.js';

export const BACKENDS: readonly BackendName[] = ['wasm', 'ts'];

export const datasetOption = (description = 'dataset') =>
  new Option('--dataset <name>', description).choices(DATASET_NAMES as string[]);
export const dataOption = () => new Option('--data <dir>', 'folder holding the four IDX files (default: search the usual places)');
export const backendOption = () => new Option('--backend <name>', 'kernels to compute with: wasm (SIMD) or ts (reference TypeScript)').choices(BACKENDS as string[]);
/** --json, described as what the command prints: `one` JSON object, or one per line. */
export const jsonOption = (what: 'one' | 'lines' = 'lines') =>
  new Option('--json', what === 'one' ? 'print the result as one JSON object instead of text' : 'print JSON objects, one per line, instead of text');
export const threadsOption = () =>
  new Option('--threads <n>', "threads the wasm kernels may use: a number, or 'auto' for one per core (results are the same for any number)")
    .argParser(threadCount)
    .default('auto');

/** Selects the kernels and their threads; a fallback notice from the engine goes to stderr. */
export function useBackend(name: BackendName, output: Output, threads: ThreadCount = 'auto'): void {
  onBackendWarning((message) => output.error(message));
  setThreads(threads);
  setBackend(name);
}

/**
 * For commands that train (train, tune, worker), on the wasm kernels: V8 stops inlining
 * JavaScript, so that it compiles less while the first epoch runs (see the engine's
 * compiler-node.ts). Commands that do not train leave V8 as it is.
 */
export function prepareForTraining(backend: BackendName): void {
  if (backend === 'wasm') turnOffJsInlining();
}

/** Finds and reads a dataset; a download (Fashion-MNIST, found nowhere else) shows its progress. */
export async function readDataset(name: DatasetName, dir: string | undefined, output: Output): Promise<LoadedDataset> {
  let shown = '';
  const data = await loadDataset(name, {
    dir,
    onProgress: (file, received, total) => {
      const line = `Downloading ${file}: ${Math.floor((100 * received) / Math.max(1, total))}%`;
      if (output.interactive && !output.json) output.redraw(line);
      else if (line !== shown && received === total) output.error(line);
      shown = line;
    },
  });
  output.finishLine();
  return data;
}

export function classNamesOf(dataset: DatasetName): string[] {
  return [...(dataset === 'mnist' ? MNIST_CLASS_NAMES : FASHION_MNIST_CLASS_NAMES)];
}

/** Loads a model folder and shows on stderr whatever the loader had to say. */
export async function openModel(dir: string, output: Output, { quiet = false } = {}): Promise<LoadedModel> {
  const loaded = await loadModel(dir);
  if (!quiet) for (const warning of loaded.warnings) output.warn(warning);
  if (loaded.recovered) output.warn(`${loaded.modelFile}: the last save was interrupted after writing the weights; using the model.json it left under a temporary name`);
  return loaded;
}

/** The dataset a saved model was trained on, unless a flag says otherwise. */
export function datasetFor(loaded: LoadedModel, flag: string | undefined): DatasetName {
  const saved = loaded.metadata?.dataset;
  if (flag) return flag as DatasetName;
  return (DATASET_NAMES as readonly string[]).includes(saved ?? '') ? (saved as DatasetName) : 'fashion-mnist';
}

/** A model used on another dataset than it was trained on gives meaningless numbers: say so, on one line. */
export function warnIfOtherDataset(loaded: LoadedModel, dataset: string, output: Output): void {
  const trainedOn = loaded.metadata?.dataset;
  if (trainedOn && trainedOn !== dataset) output.warn(`the model was trained on ${trainedOn}, not ${dataset}: its classes mean other things there`);
}

/** Checks that a model outputs one probability per class and takes 28×28 images (or 784 values). */
export function checkModelFits(loaded: LoadedModel, classes: number, imageSize: number, what: string): void {
  const inputs = loaded.model.perSampleInputShape.reduce((a, b) => a * b, 1);
  const outputs = loaded.model.perSampleOutputShape;
  if (inputs !== imageSize) {
    throw new DescentError(`${loaded.modelFile}: the model takes inputs of shape [${loaded.model.perSampleInputShape.join(', ')}], but ${what} has ${imageSize}-pixel images`);
  }
  if (outputs.length !== 1 || outputs[0] !== classes) {
    throw new DescentError(`${loaded.modelFile}: the model has ${outputs.join('×')} outputs, but ${what} has ${classes} classes`);
  }
}

/**
 * Fails early, before anything is computed, if files cannot be created in `dir` (or in the folder
 * that would hold it). Creates nothing that stays behind. `label` starts the message, e.g. "--out models/x".
 */
export function checkWritableFolder(dir: string, label: string, { forFile = false } = {}): void {
  const target = resolve(dir);
  let existing = target;
  for (;;) {
    const info = statOrUndefined(existing);
    if (info) {
      if (!info.isDirectory()) {
        throw new DescentError(existing === target && !forFile ? `${label}: exists and is not a folder` : `${label}: cannot create it, ${existing} is a file`);
      }
      break;
    }
    const parent = dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  try {
    rmdirSync(mkdtempSync(join(existing, '.descent-write-check-')));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reasons: Record<string, string> = { EACCES: 'permission denied', EPERM: 'permission denied', EROFS: 'read-only file system', ENOSPC: 'no space left on the device' };
    const reason = reasons[code ?? ''] ?? `${existing} does not accept new files${code ? ` (${code})` : ''}`;
    throw new DescentError(`${label}: cannot write there (${reason})`);
  }
}

/** Like checkWritableFolder, for a file that will be (re)written; its folder may be created. */
export function checkWritableFile(file: string, label: string): void {
  const info = statOrUndefined(resolve(file));
  if (info?.isDirectory()) throw new DescentError(`${label}: is a folder, not a file`);
  checkWritableFolder(dirname(resolve(file)), label, { forFile: true });
}

/** Creates the folder that will hold `file` (checked beforehand with checkWritableFile). */
export function createFolderFor(file: string, label: string): void {
  try {
    mkdirSync(dirname(resolve(file)), { recursive: true });
  } catch (err) {
    throw new DescentError(`${label}: cannot create its folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

export function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
