/**
 * A model folder on disk: model.json + weights.bin (TensorFlow.js Layers format), and descent's
 * training metadata: descent-training.json, with the optimizer's state (Adam's moments, SGD's
 * velocity) as raw float32 in descent-optimizer.bin beside it.
 *
 * Saving never leaves a broken folder, whenever the process dies:
 *   1. every file is written under a temporary name `.<file>.<saveId>.tmp` and fsynced;
 *   2. then renamed into place: weights.bin, descent-optimizer.bin, descent-training.json, model.json last;
 *   3. then the folder is fsynced and leftovers of earlier interrupted saves are removed.
 * model.json records the save's id and the SHA-256 of weights.bin, and descent-training.json the
 * same pair. A reader that finds weights.bin newer than model.json (a save died between two
 * renames) finds the new model.json still waiting under its temporary name and uses it: a crash
 * leaves the old model or the new one, and a pair from two different saves is never loaded silently.
 *
 * Reading trusts nothing in the folder: JSON is size- and depth-checked and then checked against
 * its schema (schema.ts); weight files must be plain files named plainly in the manifest, inside
 * the folder, each once; their sizes are compared with the manifest before a byte is read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writeFileSynced } from '../data/atomic.js';
import { closeFile, formatBytes, openRegularFile, readExactly, readRegularFile, type OpenedFile } from '../data/read.js';
import { DescentError, ModelFormatError, excerpt } from '../errors.js';
import type { Sequential } from '../nn/model.js';
import type { OptimizerState } from '../optimizers/optimizer.js';
import {
  GENERATED_BY, artifactsFromModelJson, checkWeightDataSize, decodeFloat32, encodeFloat32, isPlainFileName, modelFromArtifacts, modelJsonFromArtifacts,
  modelToArtifacts, weightDataBytes, weightsManifestPaths, type ModelArtifacts,
} from './layers-format.js';
import {
  LIMITS, check, formatIssue, parseJsonText, saveStampSchema, trainingFileSchema, type BinaryStateJson, type TrainingFileChecked,
} from './schema.js';
import type { TrainingMetadata } from './training-state.js';

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
export const TRAINING_FILE = 'descent-training.json';
export const OPTIMIZER_FILE = 'descent-optimizer.bin';
const TRAINING_FORMAT = 'descent-training';
/** 1: optimizer state as base64 inside the JSON (still read); 2: in descent-optimizer.bin. */
const TRAINING_FORMAT_VERSION = 2;

/** Written into model.json's userDefinedMetadata and into descent-training.json. */
export interface SaveStamp {
  saveId: string;
  weightsSha256: string;
}

export interface SaveResult extends SaveStamp {
  dir: string;
  files: string[];
}

export interface LoadedArtifacts {
  dir: string;
  modelFile: string;
  /** The weight files named by the manifest (one, weights.bin, for models descent saves). */
  weightsFiles: string[];
  /** tfjs ModelArtifacts with all weights in one ArrayBuffer: `tf.io.fromMemory(artifacts)` loads them. */
  artifacts: ModelArtifacts & { weightData: ArrayBuffer };
  /** descent's training metadata, when descent-training.json belongs to this save. */
  metadata?: TrainingMetadata;
  /** Things that did not stop loading but the user should know (e.g. training state from another save). */
  warnings: string[];
  /** True when a save had been interrupted after writing weights.bin and its model.json was taken from its temporary file. */
  recovered: boolean;
}

export interface LoadedModel extends LoadedArtifacts {
  model: Sequential;
}

/** Saves a built model (and its training metadata) into `dir`, creating the folder if needed. */
export async function saveModel(dir: string, model: Sequential, metadata: TrainingMetadata = {}): Promise<SaveResult> {
  const folder = resolve(dir);
  try {
    mkdirSync(folder, { recursive: true });
  } catch (err) {
    throw new DescentError(`${folder}: cannot create the model folder: ${describe(err)}`);
  }
  const saveId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const probe = modelToArtifacts(model);
  const weights = new Uint8Array(probe.weightData);
  const stamp: SaveStamp = { saveId, weightsSha256: sha256(weights) };
  const artifacts = { ...probe, userDefinedMetadata: { descent: stamp } };
  const modelJson = modelJsonFromArtifacts(artifacts, WEIGHTS_FILE);
  const { training, optimizerBytes } = encodeTraining(metadata, stamp);

  // Renamed in this order; model.json last (see the header).
  const files: Array<[string, Uint8Array]> = [
    [WEIGHTS_FILE, weights],
    ...(optimizerBytes ? [[OPTIMIZER_FILE, optimizerBytes] as [string, Uint8Array]] : []),
    [TRAINING_FILE, utf8(JSON.stringify(training, null, 2) + '\n')],
    [MODEL_FILE, utf8(JSON.stringify(modelJson, null, 2) + '\n')],
  ];
  const temporary = files.map(([name]) => join(folder, pendingName(name, saveId)));
  try {
    files.forEach(([, bytes], i) => writeFileSynced(temporary[i], bytes));
    files.forEach(([name], i) => renameSync(temporary[i], join(folder, name)));
  } catch (err) {
    for (const file of temporary) rmSync(file, { force: true });
    throw new DescentError(`${folder}: cannot save the model: ${describe(err)}`);
  }
  // An optimizer file of an earlier save that this one does not replace would only mislead.
  if (!optimizerBytes) rmSync(join(folder, OPTIMIZER_FILE), { force: true });
  syncFolder(folder);
  removeLeftovers(folder);
  return { dir: folder, ...stamp, files: files.map(([name]) => join(folder, name)) };
}

/**
 * Reads a model folder written by descent or by tfjs (model.json + its weight files). The model's
 * tensors live in the current backend's memory: call setBackend first, not after.
 */
export async function loadModel(dir: string, options: { seed?: number } = {}): Promise<LoadedModel> {
  const loaded = await loadModelArtifacts(dir);
  const model = modelFromArtifacts(loaded.artifacts, {
    modelFile: loaded.modelFile,
    weightsFile: loaded.weightsFiles.length === 1 ? loaded.weightsFiles[0] : loaded.dir,
    seed: options.seed ?? loaded.metadata?.seed,
  });
  return { ...loaded, model };
}

/** model.json and weights as tfjs ModelArtifacts, plus descent's metadata; checks that the files belong together. */
export async function loadModelArtifacts(dir: string): Promise<LoadedArtifacts> {
  const folder = resolve(dir);
  checkFolder(folder);
  const modelFile = join(folder, MODEL_FILE);
  // A save running in another process may rename files between our reads: look again a few times.
  for (let attempt = 0; ; attempt++) {
    const json = readJsonFile(modelFile, LIMITS.modelJsonBytes, (problem) =>
      new ModelFormatError(modelFile, problem === 'file not found' ? 'is missing; the folder holds no saved model' : problem));
    const specs = artifactsFromModelJson(json, undefined, modelFile).weightSpecs ?? [];
    const paths = weightsManifestPaths(json, modelFile).map((path) => weightsPath(folder, path, modelFile));
    const weightsFile = paths.length === 1 ? paths[0] : folder;
    let stamp = stampOf(json);
    // Sizes before contents: a short or oversized file is reported at once, and nothing is read
    // beyond what the manifest describes (unless an interrupted save may explain the difference).
    const expected = weightDataBytes(specs);
    const weights = readWeightFiles(paths, modelFile, (total) => {
      if (total !== expected && !(stamp && findPendingNames(folder, MODEL_FILE).length > 0 && total <= LIMITS.parameters * 4)) {
        checkWeightDataSize(specs, total, modelFile, weightsFile);
      }
    });
    const hash = sha256(weights);
    let modelJson = json;
    let recovered = false;
    if (stamp && stamp.weightsSha256 !== hash) {
      const pending = findPendingModelJson(folder, hash);
      if (pending) {
        [modelJson, stamp, recovered] = [pending.json, pending.stamp, true];
      } else if (attempt < 3) {
        checkWeightDataSize(specs, weights.length, modelFile, weightsFile);
        await sleep(50 * (attempt + 1));
        continue;
      } else {
        throw new ModelFormatError(
          weightsFile,
          `does not belong to ${modelFile} (its SHA-256 differs from the one model.json records): the two files come from different saves`,
        );
      }
    }
    return finish(folder, modelFile, paths, modelJson, weights, stamp, hash, recovered);
  }
}

function finish(
  folder: string, modelFile: string, paths: string[], modelJson: unknown, weights: Uint8Array, stamp: SaveStamp | undefined, hash: string, recovered: boolean,
): LoadedArtifacts {
  const weightData = toArrayBuffer(weights);
  const artifacts = artifactsFromModelJson(modelJson, weightData, modelFile);
  const warnings: string[] = [];
  const metadata = readTraining(folder, stamp, hash, warnings);
  return { dir: folder, modelFile, weightsFiles: paths, artifacts: { ...artifacts, weightData }, metadata, warnings, recovered };
}

// ---- descent-training.json and descent-optimizer.bin ------------------------------------------

type TrainingFile = Omit<TrainingMetadata, 'optimizer'> & SaveStamp & {
  format: typeof TRAINING_FORMAT;
  formatVersion: number;
  generatedBy: string;
  savedAt: string;
  optimizer?: Omit<NonNullable<TrainingMetadata['optimizer']>, 'state'> & { state?: BinaryStateJson };
};

/** The JSON to write, and the optimizer's slots as little-endian float32 (slot after slot, parameter after parameter). */
function encodeTraining(metadata: TrainingMetadata, stamp: SaveStamp): { training: TrainingFile; optimizerBytes?: Uint8Array } {
  const { optimizer, ...rest } = metadata;
  let state: BinaryStateJson | undefined;
  let optimizerBytes: Uint8Array | undefined;
  if (optimizer?.state) {
    const slots: Record<string, number[]> = {};
    const arrays: Float32Array[] = [];
    for (const [slot, perParameter] of Object.entries(optimizer.state.slots)) {
      slots[slot] = perParameter.map((values) => values.length);
      for (const values of perParameter) arrays.push(Float32Array.from(values));
    }
    optimizerBytes = new Uint8Array(encodeFloat32(arrays));
    state = { iterations: optimizer.state.iterations, encoding: 'float32-le', file: OPTIMIZER_FILE, sha256: sha256(optimizerBytes), slots };
  }
  const training: TrainingFile = {
    format: TRAINING_FORMAT,
    formatVersion: TRAINING_FORMAT_VERSION,
    generatedBy: GENERATED_BY,
    savedAt: new Date().toISOString(),
    ...stamp,
    ...rest,
    ...(optimizer ? { optimizer: { name: optimizer.name, config: optimizer.config, ...(state ? { state } : {}) } } : {}),
  };
  return { training, optimizerBytes };
}

/** float32 values as base64 of their little-endian bytes. */
export function float32ToBase64(values: ArrayLike<number>): string {
  const buffer = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buffer.writeFloatLE(values[i], i * 4);
  return buffer.toString('base64');
}

/** The float32 values of `float32ToBase64`'s text; a ModelFormatError for anything else. */
export function base64ToFloat32(text: unknown): Float32Array {
  return decodeBase64Float32(text, 'saved values');
}

function decodeBase64Float32(text: unknown, what: string): Float32Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new ModelFormatError(what, `expected base64 text of float32 values, got ${excerpt(text)}`);
  }
  const buffer = Buffer.from(text, 'base64');
  if (buffer.length % 4 !== 0) throw new ModelFormatError(what, `holds ${buffer.length} bytes, not a whole number of float32 values`);
  const out = new Float32Array(buffer.length >> 2);
  for (let i = 0; i < out.length; i++) out[i] = buffer.readFloatLE(i * 4);
  return out;
}

/**
 * The training metadata that belongs to the weights with `hash`, from the file or a pending save.
 * A file that does not belong, or that fails its schema, is ignored with a warning: the model
 * itself still loads.
 */
function readTraining(folder: string, stamp: SaveStamp | undefined, hash: string, warnings: string[]): TrainingMetadata | undefined {
  const file = join(folder, TRAINING_FILE);
  const read = (path: string): TrainingFileChecked | string => {
    let json: unknown;
    try {
      json = readJsonFile(path, LIMITS.trainingJsonBytes, (problem) => new ModelFormatError(path, problem));
    } catch (err) {
      return (err as Error).message;
    }
    const result = trainingFileSchema.safeParse(json, { reportInput: true });
    return result.success ? result.data : `${path}: ${formatIssue(result.error)}`;
  };
  const belongs = (candidate: TrainingFileChecked | string): candidate is TrainingFileChecked =>
    typeof candidate !== 'string' && candidate.weightsSha256 === hash && (!stamp || candidate.saveId === stamp.saveId);
  if (!exists(file)) return undefined;
  let current = read(file);
  if (!belongs(current) && stamp) {
    const pending = read(join(folder, pendingName(TRAINING_FILE, stamp.saveId)));
    if (belongs(pending)) current = pending;
  }
  if (typeof current === 'string') {
    warnings.push(`${current}; training state ignored`);
    return undefined;
  }
  if (!belongs(current)) {
    warnings.push(`${file}: belongs to another save than ${join(folder, MODEL_FILE)}; training state ignored`);
    return undefined;
  }
  return decodeTraining(current, folder, warnings);
}

function decodeTraining(file: TrainingFileChecked, folder: string, warnings: string[]): TrainingMetadata {
  const { format: _format, formatVersion: _version, generatedBy: _by, savedAt: _at, saveId, weightsSha256: _hash, optimizer, ...rest } = file;
  const metadata = rest as TrainingMetadata;
  if (!optimizer) return metadata;
  const { state, ...saved } = optimizer;
  let decoded: OptimizerState | undefined;
  try {
    decoded = state?.encoding === 'float32-base64'
      ? { iterations: state.iterations, slots: mapSlots(state.slots, (text) => Array.from(decodeBase64Float32(text, join(folder, TRAINING_FILE)))) }
      : state && readOptimizerFile(folder, saveId, state);
  } catch (err) {
    if (!(err instanceof DescentError)) throw err;
    warnings.push(`${err.message}; optimizer state ignored`);
  }
  return { ...metadata, optimizer: { ...(saved as Omit<NonNullable<TrainingMetadata['optimizer']>, 'state'>), ...(decoded ? { state: decoded } : {}) } };
}

/** Reads descent-optimizer.bin (or the one a save left pending) after checking its size and hash against the JSON. */
function readOptimizerFile(folder: string, saveId: string, state: BinaryStateJson): OptimizerState {
  const file = join(folder, OPTIMIZER_FILE);
  const fail = (problem: string) => new ModelFormatError(file, problem);
  if (state.file !== OPTIMIZER_FILE) throw fail(`descent-training.json names the optimizer file ${excerpt(state.file)}; expected ${OPTIMIZER_FILE}`);
  let values = 0;
  for (const lengths of Object.values(state.slots)) for (const n of lengths) values += n;
  if (values > 4 * LIMITS.parameters) throw fail(`descent-training.json describes ${values} optimizer values, more than descent reads`);
  const bytes = [file, join(folder, pendingName(OPTIMIZER_FILE, saveId))]
    .map((path) => (exists(path) ? readRegularFile(path, LIMITS.parameters * 16, (problem) => new ModelFormatError(path, problem), 'optimizer file') : undefined))
    .find((candidate) => candidate !== undefined && candidate.length === values * 4 && sha256(candidate) === state.sha256);
  if (!bytes) throw fail(`does not hold the ${formatBytes(values * 4)} of optimizer state that descent-training.json describes (missing, or from another save)`);
  const data = toArrayBuffer(bytes);
  let offset = 0;
  return {
    iterations: state.iterations,
    slots: mapSlots(state.slots, (length) => {
      const out = Array.from(decodeFloat32(data, offset, length));
      offset += length * 4;
      return out;
    }),
  };
}

function mapSlots<T>(slots: Record<string, T[]>, decode: (value: T) => number[]): Record<string, number[][]> {
  const out: Record<string, number[][]> = {};
  for (const [name, perParameter] of Object.entries(slots)) out[name] = perParameter.map(decode);
  return out;
}

// ---- helpers -------------------------------------------------------------------------------

function pendingName(file: string, saveId: string): string {
  return `.${file}.${saveId}.tmp`;
}

const PENDING = /^\.(model\.json|weights\.bin|descent-training\.json|descent-optimizer\.bin)\.(.+)\.tmp$/;

function findPendingNames(folder: string, file: string): string[] {
  return listFolder(folder).filter((name) => PENDING.exec(name)?.[1] === file);
}

/** A model.json left under its temporary name by an interrupted save whose weights.bin is the current one. */
function findPendingModelJson(folder: string, hash: string): { json: unknown; stamp: SaveStamp } | undefined {
  for (const name of findPendingNames(folder, MODEL_FILE)) {
    let json: unknown;
    try {
      json = readJsonFile(join(folder, name), LIMITS.modelJsonBytes, (problem) => new ModelFormatError(name, problem));
    } catch {
      continue;
    }
    const stamp = stampOf(json);
    if (stamp && stamp.weightsSha256 === hash) return { json, stamp };
  }
  return undefined;
}

/** Temporary files of earlier saves that died; only called once a complete save is in place. */
function removeLeftovers(folder: string): void {
  for (const name of listFolder(folder)) {
    if (PENDING.test(name)) rmSync(join(folder, name), { force: true });
  }
}

function stampOf(json: unknown): SaveStamp | undefined {
  const meta = (json as { userDefinedMetadata?: { descent?: unknown } } | undefined)?.userDefinedMetadata?.descent;
  const result = saveStampSchema.safeParse(meta);
  return result.success ? result.data : undefined;
}

function checkFolder(folder: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(folder).isDirectory();
  } catch {
    throw new ModelFormatError(folder, 'model folder does not exist');
  }
  if (!isDir) throw new ModelFormatError(folder, 'is not a folder; give the folder that holds model.json');
}

/** A JSON file from outside: a regular file of at most `maxBytes`, nested at most LIMITS.jsonDepth deep. */
function readJsonFile(file: string, maxBytes: number, fail: (problem: string) => Error): unknown {
  const bytes = readRegularFile(file, maxBytes, fail, 'JSON file');
  const parsed = parseJsonText(bytes.toString('utf8'));
  if ('problem' in parsed) throw fail(parsed.problem);
  return parsed.value;
}

/** A weights file named in the manifest: a plain name, and (following symbolic links) inside the model folder. */
function weightsPath(folder: string, name: string, modelFile: string): string {
  if (!isPlainFileName(name)) throw new ModelFormatError(modelFile, `weightsManifest path ${excerpt(name)} is not a plain file name inside the model folder`);
  const path = join(folder, name);
  let real: string;
  try {
    real = realpathSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ModelFormatError(path, `is missing (named in the weightsManifest of ${modelFile})`);
    throw new ModelFormatError(path, `cannot be read: ${describe(err)}`);
  }
  if (dirname(real) !== realpathSync(folder)) {
    throw new ModelFormatError(modelFile, `weightsManifest path ${excerpt(name)} leads outside the model folder (a symbolic link)`);
  }
  return path;
}

/**
 * The weight files, opened first (regular files only), their sizes shown to `checkTotal`, and
 * only then read, into one buffer.
 */
function readWeightFiles(paths: string[], modelFile: string, checkTotal: (total: number) => void): Uint8Array {
  const opened: OpenedFile[] = [];
  try {
    for (const path of paths) opened.push(openRegularFile(path, (problem) => new ModelFormatError(path, `${problem} (named in the weightsManifest of ${modelFile})`)));
    const total = opened.reduce((sum, file) => sum + file.size, 0);
    checkTotal(total);
    if (paths.length === 1) return readExactly(opened[0], total, 0, (problem) => new ModelFormatError(paths[0], problem));
    const out = new Uint8Array(total);
    let at = 0;
    opened.forEach((file, i) => {
      out.set(readExactly(file, file.size, 0, (problem) => new ModelFormatError(paths[i], problem)), at);
      at += file.size;
    });
    return out;
  } finally {
    for (const file of opened) closeFile(file);
  }
}

/** Makes the renames durable; some platforms cannot open a folder, which is harmless there. */
function syncFolder(folder: string): void {
  try {
    const fd = openSync(folder, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // not supported here
  }
}

function listFolder(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function utf8(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EACCES' || e.code === 'EPERM') return 'permission denied';
  if (e.code === 'ENOTDIR') return 'a part of the path is a file, not a folder';
  if (e.code === 'ENOSPC') return 'no space left on the device';
  if (e.code === 'EROFS') return 'read-only file system';
  return e.message ?? String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}
