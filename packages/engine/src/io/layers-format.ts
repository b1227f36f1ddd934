/**
 * The TensorFlow.js Layers format, as plain data: a model becomes `{modelTopology, weightSpecs,
 * weightData}` (what tfjs calls ModelArtifacts, so `tf.io.fromMemory(artifacts)` loads it) and back.
 *
 *   model.json    {format: "layers-model", generatedBy, convertedBy: null,
 *                  modelTopology: {class_name: "Sequential", config: {name, layers: [...]}, keras_version, backend},
 *                  weightsManifest: [{paths: ["weights.bin"], weights: [{name: "dense/kernel", shape: [784, 128], dtype: "float32"}, ...]}]}
 *   weights.bin   every weight in manifest order, raw little-endian float32, nothing else
 *
 * Reading accepts what tfjs and Keras write: a layer list or {layers}, snake_case or camelCase
 * input shapes, an InputLayer entry, weights prefixed with a scope. Anything descent cannot run
 * (another layer, activation or dtype) is a ModelFormatError naming it.
 */
import { z } from 'zod';
import { ConfigError, ModelFormatError, ShapeError, excerpt, formatShape } from '../errors.js';
import type { Layer, WeightShape } from '../nn/layers.js';
import { Sequential, planModel } from '../nn/model.js';
import { isObject, layersFromTopology } from './layer-formats.js';
import { LIMITS, check, modelJsonSchema, weightSpecSchema, type ModelJsonChecked } from './schema.js';
import { DESCENT_VERSION } from './version.js';

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  /** Set by the tfjs converter for quantized weights, which descent does not read. */
  quantization?: unknown;
}

/** tfjs's ModelArtifacts, the parts descent reads and writes. */
export interface ModelArtifacts {
  modelTopology: unknown;
  weightSpecs?: WeightSpec[];
  /** tfjs ≥ 4.10 may hand over the weights as several buffers; they are read as one. */
  weightData?: ArrayBuffer | ArrayBuffer[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  userDefinedMetadata?: Record<string, unknown>;
}

/** What descent produces: always one buffer. */
export interface SavedArtifacts extends ModelArtifacts {
  modelTopology: LayersModelTopology;
  weightSpecs: WeightSpec[];
  weightData: ArrayBuffer;
  format: 'layers-model';
  generatedBy: string;
  convertedBy: null;
}

export interface LayerJson {
  class_name: string;
  config: Record<string, unknown>;
}

export interface LayersModelTopology {
  class_name: 'Sequential';
  config: { name: string; layers: LayerJson[] };
  keras_version: string;
  backend: string;
}

export interface WeightsManifestGroup {
  paths: string[];
  weights: WeightSpec[];
}

/** The contents of model.json. */
export interface ModelJson {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: string | null;
  modelTopology: LayersModelTopology;
  weightsManifest: WeightsManifestGroup[];
  userDefinedMetadata?: Record<string, unknown>;
}

/** Names used in error messages (the files the artifacts came from). */
export interface ArtifactSource {
  modelFile?: string;
  weightsFile?: string;
}

export const GENERATED_BY = `descent ${DESCENT_VERSION}`;
const BYTES_PER_FLOAT32 = 4;

// ---- model → artifacts ------------------------------------------------------------------

/** The Keras/tfjs topology of a built model; the first layer carries batch_input_shape [null, ...]. */
export function modelTopology(model: Sequential): LayersModelTopology {
  const inputShape = model.perSampleInputShape;
  const layers = model.layers.map((layer, i): LayerJson => {
    const config = layer.config();
    if (i === 0) config.batch_input_shape = [null, ...inputShape];
    return { class_name: layer.className, config };
  });
  return { class_name: 'Sequential', config: { name: model.name, layers }, keras_version: GENERATED_BY, backend: 'descent' };
}

/** A built model as tfjs ModelArtifacts: topology, one weight spec per weight, weights as little-endian float32. */
export function modelToArtifacts(model: Sequential, userDefinedMetadata?: Record<string, unknown>): SavedArtifacts {
  const weights = model.getWeights();
  return {
    modelTopology: modelTopology(model),
    weightSpecs: weights.map(({ name, shape }) => ({ name, shape: [...shape], dtype: 'float32' })),
    weightData: encodeFloat32(weights.map((w) => w.values)),
    format: 'layers-model',
    generatedBy: GENERATED_BY,
    convertedBy: null,
    ...(userDefinedMetadata ? { userDefinedMetadata } : {}),
  };
}

/** model.json for artifacts whose weights are stored in `weightsPath` (relative to model.json). */
export function modelJsonFromArtifacts(artifacts: SavedArtifacts, weightsPath = 'weights.bin'): ModelJson {
  return {
    format: 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [weightsPath], weights: artifacts.weightSpecs }],
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
  };
}

// ---- artifacts → model ------------------------------------------------------------------

export interface ModelFromArtifactsOptions extends ArtifactSource {
  /** Seed of the new model's generator (its initial weights are replaced by the saved ones). */
  seed?: number;
}

/**
 * A Sequential model with the topology and weights of `artifacts` (from descent, tfjs or Keras).
 * Everything is checked before the model is built: the topology against its schema, the layers'
 * weight shapes against the manifest, and the manifest against the bytes of weight data, so a
 * file that claims a billion units fails at once, having allocated nothing. A failure after the
 * model is built frees its memory.
 */
export function modelFromArtifacts(artifacts: ModelArtifacts, options: ModelFromArtifactsOptions = {}): Sequential {
  const modelFile = options.modelFile ?? 'model.json';
  const weightsFile = options.weightsFile ?? 'weights.bin';
  const fail = (problem: string) => new ModelFormatError(modelFile, problem);
  if (artifacts.format !== undefined && artifacts.format !== 'layers-model') {
    throw fail(`format ${excerpt(artifacts.format)} is not supported; descent reads "layers-model" (TensorFlow.js Layers format)`);
  }
  const { name, layers, inputShape } = layersFromTopology(artifacts.modelTopology, { file: modelFile });
  if (!inputShape) throw fail('the first layer declares no input shape (batch_input_shape)');
  const specs = checkWeightSpecs(artifacts.weightSpecs ?? [], modelFile);
  const planned = planWithinLimits(layers, inputShape, modelFile);
  const offsets = placeWeights(planned, specs, modelFile);
  checkWeightDataSize(specs, byteLength(artifacts.weightData), modelFile, weightsFile);
  const data = concatBuffers(artifacts.weightData);

  let model: Sequential;
  try {
    model = new Sequential(layers, { name, inputShape, seed: options.seed });
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ShapeError) throw fail(`cannot build the model: ${err.message}`);
    throw err;
  }
  try {
    model.setWeights(planned.map((weight, i) => decodeFloat32(data, offsets[i], elements(weight.shape))));
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** Checks model.json's contents against its schema and returns its artifacts with `weightData`. */
export function artifactsFromModelJson(json: unknown, weightData: ArrayBuffer | undefined, modelFile = 'model.json'): ModelArtifacts {
  const checked = checkModelJson(json, modelFile);
  return {
    modelTopology: checked.modelTopology,
    weightSpecs: checkWeightSpecs(checked.weightsManifest.flatMap((group) => group.weights), modelFile),
    weightData,
    format: checked.format,
    generatedBy: checked.generatedBy,
    convertedBy: checked.convertedBy ?? null,
    userDefinedMetadata: checked.userDefinedMetadata,
  };
}

/** model.json's contents, checked against its schema (format, topology object, weightsManifest). */
export function checkModelJson(json: unknown, modelFile = 'model.json'): ModelJsonChecked {
  const fail = (problem: string) => new ModelFormatError(modelFile, problem);
  if (!isObject(json)) throw fail('is not a JSON object');
  if (json.format !== undefined && json.format !== 'layers-model') {
    throw fail(`format ${excerpt(json.format)} is not supported; descent reads "layers-model" (TensorFlow.js Layers format)`);
  }
  return check(modelJsonSchema, json, fail);
}

/**
 * The weight files named by a weightsManifest, in order. Each must be a plain file name in the
 * model's folder (no folders, no "..", no absolute paths) and named once.
 */
export function weightsManifestPaths(json: unknown, modelFile = 'model.json'): string[] {
  const fail = (problem: string) => new ModelFormatError(modelFile, problem);
  const paths = checkModelJson(json, modelFile).weightsManifest.flatMap((group) => group.paths);
  if (paths.length === 0) throw fail('weightsManifest names no weight files');
  if (paths.length > LIMITS.paths) throw fail(`weightsManifest names ${paths.length} weight files, more than descent reads (${LIMITS.paths})`);
  const seen = new Set<string>();
  for (const path of paths) {
    if (!isPlainFileName(path)) throw fail(`weightsManifest path ${excerpt(path)} is not a plain file name inside the model folder`);
    if (seen.has(path)) throw fail(`weightsManifest names ${excerpt(path)} more than once`);
    seen.add(path);
  }
  return paths;
}

/** A file name with no folder part: not empty, not "." or "..", no slashes or control characters. */
export function isPlainFileName(path: string): boolean {
  // eslint-disable-next-line no-control-regex
  return path.length > 0 && path.length <= 255 && path !== '.' && path !== '..' && !/[/\\\u0000-\u001f\u007f]/.test(path);
}

/** Throws a ModelFormatError naming `weightsFile` unless it holds exactly the bytes `specs` describe. */
export function checkWeightDataSize(specs: readonly WeightSpec[], bytes: number, modelFile: string, weightsFile: string): void {
  const expected = weightDataBytes(specs);
  if (bytes !== expected) {
    throw new ModelFormatError(weightsFile, `has ${bytes} bytes but the weightsManifest in ${modelFile} describes ${expected} (${specs.length} float32 weights); the file is truncated or belongs to another model`);
  }
}

/** Bytes the weights described by `specs` take. */
export function weightDataBytes(specs: readonly WeightSpec[]): number {
  return specs.reduce((total, spec) => total + elements(spec.shape) * BYTES_PER_FLOAT32, 0);
}

/** Weight specs from a manifest or from tfjs artifacts, checked: names, shapes within limits, float32, not quantized. */
function checkWeightSpecs(specs: unknown, modelFile: string): WeightSpec[] {
  const fail = (problem: string) => new ModelFormatError(modelFile, problem);
  const list = check(z.array(z.unknown()).max(LIMITS.weights), specs, fail, ['weightsManifest', 'weights']);
  const checked = list.map((spec, i) => {
    const name = isObject(spec) && typeof spec.name === 'string' ? excerpt(spec.name) : `${i}`;
    return check(weightSpecSchema, spec, (problem) => fail(`weight ${name} in the weightsManifest: ${problem}`));
  });
  let total = 0;
  for (const spec of checked) {
    const size = elements(spec.shape);
    if (size > LIMITS.weightElements) throw fail(`weight ${excerpt(spec.name)} has shape ${formatShape(spec.shape)}, more than ${LIMITS.weightElements} values`);
    total += size;
  }
  if (total > LIMITS.parameters) throw fail(`the weightsManifest describes ${total} values, more than descent loads (${LIMITS.parameters})`);
  return checked.map((spec) => ({ name: spec.name, shape: spec.shape, dtype: 'float32' }));
}

/** The model's weights, planned without allocating, with every size within LIMITS. */
function planWithinLimits(layers: Layer[], inputShape: number[], modelFile: string): WeightShape[] {
  const fail = (problem: string) => new ModelFormatError(modelFile, problem);
  let plan: ReturnType<typeof planModel>;
  try {
    plan = planModel(layers, inputShape);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ShapeError) throw fail(`the layers do not fit together: ${err.message}`);
    throw err;
  }
  for (const [i, shape] of [inputShape, ...plan.outputShapes].entries()) {
    if (elements(shape) > LIMITS.sampleElements) {
      throw fail(`${i === 0 ? 'the input' : `layer '${layers[i - 1].name}'`} has shape ${formatShape(shape)} per sample, more than ${LIMITS.sampleElements} values`);
    }
  }
  let total = 0;
  for (const weight of plan.weights) total += elements(weight.shape);
  if (total > LIMITS.parameters) throw fail(`the layers need ${total} weights, more than descent loads (${LIMITS.parameters})`);
  return plan.weights;
}

/** For each planned weight, the byte offset of its values; every spec must belong to a weight, with its shape. */
function placeWeights(planned: readonly WeightShape[], specs: readonly WeightSpec[], modelFile: string): number[] {
  const fail = (problem: string) => new ModelFormatError(modelFile, problem);
  const offsets = new Map<WeightSpec, number>();
  let offset = 0;
  for (const spec of specs) {
    offsets.set(spec, offset);
    offset += elements(spec.shape) * BYTES_PER_FLOAT32;
  }
  const used = new Set<WeightSpec>();
  const placed = planned.map(({ name, shape }) => {
    const spec = findSpec(specs, name, modelFile);
    if (spec.shape.length !== shape.length || spec.shape.some((d, i) => d !== shape[i])) {
      throw fail(`weight ${excerpt(spec.name)} has shape ${formatShape(spec.shape)} but the layer needs ${formatShape(shape)}`);
    }
    used.add(spec);
    return offsets.get(spec)!;
  });
  const unused = specs.filter((spec) => !used.has(spec));
  if (unused.length > 0) {
    const names = unused.slice(0, 3).map((s) => excerpt(s.name)).join(', ');
    throw fail(`weight${unused.length === 1 ? '' : 's'} ${names}${unused.length > 3 ? ` and ${unused.length - 3} more` : ''} in the weightsManifest belong${unused.length === 1 ? 's' : ''} to no layer of the model`);
  }
  return placed;
}

/** The spec named exactly `name`, or the one whose name ends in `/name` (weights saved under a scope). */
function findSpec(specs: readonly WeightSpec[], name: string, file: string): WeightSpec {
  const exact = specs.find((spec) => spec.name === name);
  if (exact) return exact;
  const scoped = specs.filter((spec) => spec.name.endsWith(`/${name}`));
  if (scoped.length === 1) return scoped[0];
  throw new ModelFormatError(file, `the weightsManifest has no weight ${excerpt(name)}${scoped.length > 1 ? ' (several weights end with that name)' : ''}`);
}

function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function byteLength(data: ArrayBuffer | ArrayBuffer[] | undefined): number {
  if (data === undefined) return 0;
  return Array.isArray(data) ? data.reduce((sum, b) => sum + b.byteLength, 0) : data.byteLength;
}

// ---- little-endian float32 ---------------------------------------------------------------

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Arrays of float32 concatenated as little-endian bytes. */
export function encodeFloat32(arrays: readonly Float32Array[]): ArrayBuffer {
  const total = arrays.reduce((sum, a) => sum + a.length, 0);
  const out = new Float32Array(total);
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  if (!LITTLE_ENDIAN_HOST) {
    const view = new DataView(out.buffer);
    for (let i = 0; i < total; i++) view.setFloat32(i * 4, out[i], true);
  }
  return out.buffer;
}

/** `count` little-endian float32 values starting at `byteOffset`, copied into a new array. */
export function decodeFloat32(buffer: ArrayBuffer, byteOffset: number, count: number): Float32Array {
  if (LITTLE_ENDIAN_HOST) return new Float32Array(buffer.slice(byteOffset, byteOffset + count * 4));
  const view = new DataView(buffer, byteOffset, count * 4);
  return Float32Array.from({ length: count }, (_, i) => view.getFloat32(i * 4, true));
}

function concatBuffers(data: ArrayBuffer | ArrayBuffer[] | undefined): ArrayBuffer {
  if (data === undefined) return new ArrayBuffer(0);
  if (!Array.isArray(data)) return data;
  const total = data.reduce((sum, b) => sum + b.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const b of data) {
    out.set(new Uint8Array(b), at);
    at += b.byteLength;
  }
  return out.buffer;
}
