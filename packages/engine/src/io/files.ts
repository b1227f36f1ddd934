/**
 * A model folder on disk: model.json + weights.bin (TensorFlow.js Layers format) and
 * descent-training.json (descent's training metadata).
 *
 * Saving never leaves a broken folder, whenever the process dies:
 *   1. every file is written under a temporary name `.<file>.<saveId>.tmp` and fsynced;
 *   2. then renamed into place: weights.bin, descent-training.json, model.json last;
 *   3. then the folder is fsynced and leftovers of earlier interrupted saves are removed.
 * model.json records the save's id and the SHA-256 of weights.bin, and descent-training.json the
 * same pair. A reader that finds weights.bin newer than model.json (a save died between two
 * renames) finds the new model.json still waiting under its temporary name and uses it: a crash
 * leaves the old model or the new one, and a pair from two different saves is never loaded silently.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { writeFileSynced } from '../data/atomic.js';
import { DescentError, ModelFormatError } from '../errors.js';
import type { Sequential } from '../nn/model.js';
import type { OptimizerState } from '../optimizers/optimizer.js';
import {
  GENERATED_BY, artifactsFromModelJson, modelFromArtifacts, modelJsonFromArtifacts, modelToArtifacts, checkWeightDataSize, weightsManifestPaths, type ModelArtifacts,
} from './layers-format.js';
import type { TrainingMetadata } from './training-state.js';

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
export const TRAINING_FILE = 'descent-training.json';
const TRAINING_FORMAT = 'descent-training';
const TRAINING_FORMAT_VERSION = 1;

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
  const training = encodeTraining(metadata, stamp);

  // Renamed in this order; model.json last (see the header).
  const files: Array<[string, Uint8Array]> = [
    [WEIGHTS_FILE, weights],
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
    const json = readJson(modelFile);
    const paths = weightsManifestPaths(json, modelFile).map((path) => weightsPath(folder, path, modelFile));
    const weights = concat(paths.map((path) => readWeightsFile(path, modelFile)));
    const weightsFile = paths.length === 1 ? paths[0] : folder;
    const hash = sha256(weights);
    let stamp = stampOf(json);
    let modelJson = json;
    let recovered = false;
    if (stamp && stamp.weightsSha256 !== hash) {
      const pending = findPendingModelJson(folder, hash);
      if (pending) {
        [modelJson, stamp, recovered] = [pending.json, pending.stamp, true];
      } else if (attempt < 3) {
        // The sizes say more than a checksum: a short file is reported as such, at once.
        checkWeightDataSize(artifactsFromModelJson(json, undefined, modelFile).weightSpecs ?? [], weights.length, modelFile, weightsFile);
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
  const artifacts = artifactsFromModelJson(modelJson, toArrayBuffer(weights), modelFile);
  const warnings: string[] = [];
  const metadata = readTraining(folder, stamp, hash, warnings);
  return { dir: folder, modelFile, weightsFiles: paths, artifacts: { ...artifacts, weightData: toArrayBuffer(weights) }, metadata, warnings, recovered };
}

// ---- descent-training.json -----------------------------------------------------------------

interface TrainingFile extends SaveStamp, Omit<TrainingMetadata, 'optimizer'> {
  format: typeof TRAINING_FORMAT;
  formatVersion: number;
  generatedBy: string;
  savedAt: string;
  optimizer?: Omit<NonNullable<TrainingMetadata['optimizer']>, 'state'> & { state?: EncodedOptimizerState };
}

/** Optimizer slots as base64 little-endian float32, one string per parameter: exact and compact. */
interface EncodedOptimizerState {
  iterations: number;
  encoding: 'float32-base64';
  slots: Record<string, string[]>;
}

function encodeTraining(metadata: TrainingMetadata, stamp: SaveStamp): TrainingFile {
  const { optimizer, ...rest } = metadata;
  return {
    format: TRAINING_FORMAT,
    formatVersion: TRAINING_FORMAT_VERSION,
    generatedBy: GENERATED_BY,
    savedAt: new Date().toISOString(),
    ...stamp,
    ...rest,
    ...(optimizer
      ? { optimizer: { name: optimizer.name, config: optimizer.config, ...(optimizer.state ? { state: encodeOptimizerState(optimizer.state) } : {}) } }
      : {}),
  };
}

function decodeTraining(file: TrainingFile): TrainingMetadata {
  const { format: _format, formatVersion: _version, generatedBy: _by, savedAt: _at, saveId: _id, weightsSha256: _hash, optimizer, ...rest } = file;
  return {
    ...rest,
    ...(optimizer
      ? { optimizer: { name: optimizer.name, config: optimizer.config, ...(optimizer.state ? { state: decodeOptimizerState(optimizer.state) } : {}) } }
      : {}),
  };
}

function encodeOptimizerState(state: OptimizerState): EncodedOptimizerState {
  const slots: Record<string, string[]> = {};
  for (const [name, perParameter] of Object.entries(state.slots)) slots[name] = perParameter.map((values) => float32ToBase64(values));
  return { iterations: state.iterations, encoding: 'float32-base64', slots };
}

function decodeOptimizerState(state: EncodedOptimizerState): OptimizerState {
  const slots: Record<string, number[][]> = {};
  for (const [name, perParameter] of Object.entries(state.slots)) slots[name] = perParameter.map((text) => Array.from(base64ToFloat32(text)));
  return { iterations: state.iterations, slots };
}

/** float32 values as base64 of their little-endian bytes. */
export function float32ToBase64(values: ArrayLike<number>): string {
  const buffer = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) buffer.writeFloatLE(values[i], i * 4);
  return buffer.toString('base64');
}

export function base64ToFloat32(text: string): Float32Array {
  const buffer = Buffer.from(text, 'base64');
  const out = new Float32Array(buffer.length >> 2);
  for (let i = 0; i < out.length; i++) out[i] = buffer.readFloatLE(i * 4);
  return out;
}

/** The training metadata that belongs to the weights with `hash`, from the file or a pending save. */
function readTraining(folder: string, stamp: SaveStamp | undefined, hash: string, warnings: string[]): TrainingMetadata | undefined {
  const file = join(folder, TRAINING_FILE);
  const belongs = (candidate: unknown): candidate is TrainingFile =>
    isTrainingFile(candidate) && candidate.weightsSha256 === hash && (!stamp || candidate.saveId === stamp.saveId);
  let current: unknown;
  try {
    current = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    warnings.push(`${file}: cannot be read (${describe(err)}); training state ignored`);
    return undefined;
  }
  if (belongs(current)) return decodeTraining(current);
  if (stamp) {
    const pending = readJsonQuietly(join(folder, pendingName(TRAINING_FILE, stamp.saveId)));
    if (belongs(pending)) return decodeTraining(pending);
  }
  warnings.push(
    isTrainingFile(current)
      ? `${file}: belongs to another save than ${join(folder, MODEL_FILE)}; training state ignored`
      : `${file}: is not a descent training file; ignored`,
  );
  return undefined;
}

function isTrainingFile(value: unknown): value is TrainingFile {
  return typeof value === 'object' && value !== null && (value as TrainingFile).format === TRAINING_FORMAT && typeof (value as TrainingFile).weightsSha256 === 'string';
}

// ---- helpers -------------------------------------------------------------------------------

function pendingName(file: string, saveId: string): string {
  return `.${file}.${saveId}.tmp`;
}

const PENDING = /^\.(model\.json|weights\.bin|descent-training\.json)\.(.+)\.tmp$/;

/** A model.json left under its temporary name by an interrupted save whose weights.bin is the current one. */
function findPendingModelJson(folder: string, hash: string): { json: unknown; stamp: SaveStamp } | undefined {
  for (const name of listFolder(folder)) {
    const match = PENDING.exec(name);
    if (!match || match[1] !== MODEL_FILE) continue;
    const json = readJsonQuietly(join(folder, name));
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
  const meta = (json as { userDefinedMetadata?: { descent?: Partial<SaveStamp> } } | undefined)?.userDefinedMetadata?.descent;
  return meta && typeof meta.saveId === 'string' && typeof meta.weightsSha256 === 'string'
    ? { saveId: meta.saveId, weightsSha256: meta.weightsSha256 }
    : undefined;
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

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ModelFormatError(file, 'is missing; the folder holds no saved model');
    throw new ModelFormatError(file, `cannot be read: ${describe(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelFormatError(file, `is not valid JSON: ${(err as Error).message}`);
  }
}

function readJsonQuietly(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** A weights path from the manifest, which must stay inside the model folder. */
function weightsPath(folder: string, path: string, modelFile: string): string {
  const normal = normalize(path);
  if (isAbsolute(path) || normal === '..' || normal.startsWith(`..${sep}`)) {
    throw new ModelFormatError(modelFile, `weightsManifest path "${path}" points outside the model folder`);
  }
  return join(folder, normal);
}

function readWeightsFile(path: string, modelFile: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ModelFormatError(path, `is missing (named in the weightsManifest of ${modelFile})`);
    throw new ModelFormatError(path, `cannot be read: ${describe(err)}`);
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

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
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
