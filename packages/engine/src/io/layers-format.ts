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
import { ConfigError, ModelFormatError } from '../errors.js';
import { Conv2D, MaxPooling2D, Reshape } from '../nn/conv-layers.js';
import { initializerFromConfig } from '../nn/initializers.js';
import { Dense, Dropout, Flatten, type Activation, type Layer } from '../nn/layers.js';
import type { Padding } from '../ops/window.js';
import { Sequential } from '../nn/model.js';
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
const SUPPORTED_LAYERS = ['Conv2D', 'MaxPooling2D', 'Reshape', 'Flatten', 'Dense', 'Dropout', 'InputLayer'];
const SUPPORTED_ACTIVATIONS: readonly Activation[] = ['relu', 'softmax', 'linear'];
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

/** A Sequential model with the topology and weights of `artifacts` (from descent, tfjs or Keras). */
export function modelFromArtifacts(artifacts: ModelArtifacts, options: ModelFromArtifactsOptions = {}): Sequential {
  const modelFile = options.modelFile ?? 'model.json';
  const weightsFile = options.weightsFile ?? 'weights.bin';
  if (artifacts.format !== undefined && artifacts.format !== 'layers-model') {
    throw new ModelFormatError(modelFile, `format "${String(artifacts.format)}" is not supported; descent reads "layers-model" (TensorFlow.js Layers format)`);
  }
  const { name, layers, inputShape } = parseTopology(artifacts.modelTopology, modelFile);
  let model: Sequential;
  try {
    model = new Sequential(layers, { name, inputShape, seed: options.seed });
  } catch (err) {
    throw new ModelFormatError(modelFile, `cannot build the model: ${(err as Error).message}`);
  }
  const specs = artifacts.weightSpecs ?? [];
  const data = concatBuffers(artifacts.weightData);
  model.setWeights(readWeights(model, specs, data, modelFile, weightsFile));
  return model;
}

/** Checks the parts of model.json descent relies on and returns its artifacts with `weightData`. */
export function artifactsFromModelJson(json: unknown, weightData: ArrayBuffer | undefined, modelFile = 'model.json'): ModelArtifacts {
  checkModelJson(json, modelFile);
  return {
    modelTopology: json.modelTopology,
    weightSpecs: weightsManifestSpecs(json.weightsManifest, modelFile),
    weightData,
    format: json.format as string | undefined,
    generatedBy: typeof json.generatedBy === 'string' ? json.generatedBy : undefined,
    convertedBy: typeof json.convertedBy === 'string' ? json.convertedBy : null,
    userDefinedMetadata: isObject(json.userDefinedMetadata) ? json.userDefinedMetadata : undefined,
  };
}

/** Checks that parsed model.json text is a Layers model description: an object, format "layers-model" (or none), a modelTopology. */
export function checkModelJson(json: unknown, modelFile = 'model.json'): asserts json is Record<string, unknown> {
  if (!isObject(json)) throw new ModelFormatError(modelFile, 'is not a JSON object');
  if (json.format !== undefined && json.format !== 'layers-model') {
    throw new ModelFormatError(modelFile, `format "${String(json.format)}" is not supported; descent reads "layers-model" (TensorFlow.js Layers format)`);
  }
  if (!isObject(json.modelTopology)) throw new ModelFormatError(modelFile, 'has no modelTopology object');
}

/** The weight files named by a weightsManifest, in order (paths relative to model.json). */
export function weightsManifestPaths(json: unknown, modelFile = 'model.json'): string[] {
  checkModelJson(json, modelFile);
  if (!Array.isArray(json.weightsManifest)) throw new ModelFormatError(modelFile, 'has no weightsManifest list');
  return json.weightsManifest.flatMap((group: unknown, i: number) => {
    if (!isObject(group) || !Array.isArray(group.paths) || !group.paths.every((p) => typeof p === 'string')) {
      throw new ModelFormatError(modelFile, `weightsManifest[${i}] has no list of paths`);
    }
    return group.paths as string[];
  });
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
  return specs.reduce((total, spec) => total + spec.shape.reduce((a, b) => a * b, 1) * BYTES_PER_FLOAT32, 0);
}

function weightsManifestSpecs(manifest: unknown, modelFile: string): WeightSpec[] {
  if (!Array.isArray(manifest)) throw new ModelFormatError(modelFile, 'has no weightsManifest list');
  const specs: WeightSpec[] = [];
  manifest.forEach((group: unknown, g) => {
    if (!isObject(group) || !Array.isArray(group.weights)) throw new ModelFormatError(modelFile, `weightsManifest[${g}] has no weights list`);
    group.weights.forEach((spec: unknown, w) => {
      const where = `weightsManifest[${g}].weights[${w}]`;
      if (!isObject(spec) || typeof spec.name !== 'string') throw new ModelFormatError(modelFile, `${where} has no name`);
      if (!Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new ModelFormatError(modelFile, `${where} ('${spec.name}') has no valid shape`);
      }
      specs.push({ name: spec.name, shape: spec.shape as number[], dtype: String(spec.dtype ?? 'float32'), quantization: spec.quantization });
    });
  });
  return specs;
}

export interface ParsedTopology {
  name: string;
  layers: Layer[];
  /** The per-sample input shape the first layer (or an InputLayer) declares, if any. */
  inputShape?: number[];
}

export interface TopologyOptions {
  /** Named in error messages. Default 'model.json'. */
  file?: string;
  /**
   * The layers are a definition to train (`descent train --model spec.json`), not a trained
   * model: options that would change training (regularizers, constraints, other initializers)
   * are refused rather than ignored.
   */
  forTraining?: boolean;
}

function parseTopology(topology: unknown, file: string): ParsedTopology & { inputShape: number[] } {
  const parsed = layersFromTopology(topology, { file });
  if (!parsed.inputShape) throw new ModelFormatError(file, 'the first layer declares no input shape (batch_input_shape)');
  return { ...parsed, inputShape: parsed.inputShape };
}

/**
 * The layers of a Sequential model description: what Keras's `model.to_json()` and tfjs's
 * `model.toJSON()` write (also as model.json's modelTopology). Throws a ModelFormatError naming
 * the first layer or option descent cannot run.
 */
export function layersFromTopology(topology: unknown, { file = 'model.json', forTraining = false }: TopologyOptions = {}): ParsedTopology {
  if (!isObject(topology)) throw new ModelFormatError(file, 'has no modelTopology object');
  // Keras's model.to_json() inside an HDF5-style wrapper: {model_config: {...}, training_config: ...}.
  const root = isObject(topology.model_config) ? topology.model_config : topology;
  const className = root.class_name ?? root.className;
  if (className !== 'Sequential') {
    throw new ModelFormatError(file, `model class "${String(className)}" is not supported; descent loads Sequential models`);
  }
  const config = root.config;
  // Old Keras wrote the layer list as the config itself; newer versions write {name, layers}.
  const layerList = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  if (!Array.isArray(layerList)) throw new ModelFormatError(file, 'modelTopology.config has no list of layers');
  const name = isObject(config) && typeof config.name === 'string' ? config.name : 'sequential';

  let inputShape: number[] | undefined;
  const layers: Layer[] = [];
  layerList.forEach((entry: unknown, i) => {
    if (!isObject(entry)) throw new ModelFormatError(file, `layer ${i} is not an object`);
    const layerClass = String(entry.class_name ?? entry.className);
    const layerConfig = isObject(entry.config) ? entry.config : {};
    const layerName = typeof layerConfig.name === 'string' ? layerConfig.name : `layer ${i}`;
    const described = `layer '${layerName}' (${layerClass})`;
    checkDtype(layerConfig.dtype, described, file);
    inputShape ??= declaredInputShape(layerConfig, described, file);
    const named = typeof layerConfig.name === 'string' ? { name: layerConfig.name } : {};
    const option = (key: string): unknown => layerConfig[key] ?? layerConfig[camelCase(key)];
    const refuse = (problem: string): never => {
      throw new ModelFormatError(file, `${described}: ${problem}`);
    };
    if (forTraining && (layerClass === 'Dense' || layerClass === 'Conv2D')) checkTrainingOptions(option, refuse);
    // The initializer matters only for a definition to train (a loaded model has its weights).
    const kernelInitializer = forTraining ? initializerFromConfig(option('kernel_initializer')) : undefined;
    const initializer = kernelInitializer ? { kernelInitializer } : {};
    try {
      switch (layerClass) {
        case 'InputLayer':
          return; // only declares the input shape
        case 'Flatten':
          checkChannelsLast(option('data_format'), refuse);
          layers.push(new Flatten(named));
          return;
        case 'Dense': {
          const units = layerConfig.units;
          if (!Number.isInteger(units) || (units as number) < 1) throw new ModelFormatError(file, `${described} has no valid units`);
          if (layerConfig.use_bias === false || layerConfig.useBias === false) {
            throw new ModelFormatError(file, `${described} has no bias (use_bias: false), which descent does not support`);
          }
          layers.push(new Dense({ units: units as number, activation: activationOf(layerConfig.activation, described, file), ...initializer, ...named }));
          return;
        }
        case 'Dropout': {
          const rate = layerConfig.rate;
          if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) throw new ModelFormatError(file, `${described} has rate ${String(rate)}; expected a number in [0, 1)`);
          if (forTraining && option('noise_shape') != null) refuse('noise_shape is not supported');
          layers.push(new Dropout({ rate, ...named }));
          return;
        }
        case 'Conv2D': {
          const filters = option('filters');
          if (!Number.isInteger(filters) || (filters as number) < 1) refuse(`has no valid filters (${describeValue(filters)})`);
          if (option('use_bias') === false) refuse('has no bias (use_bias: false), which descent does not support');
          checkChannelsLast(option('data_format'), refuse);
          const dilation = option('dilation_rate');
          if (dilation != null && !sizePair(dilation)?.every((d) => d === 1)) refuse(`dilation_rate ${describeValue(dilation)} is not supported (descent supports 1)`);
          const groups = option('groups');
          if (groups != null && groups !== 1) refuse(`groups ${describeValue(groups)} is not supported (descent supports 1)`);
          const activation = activationOf(option('activation'), described, file);
          if (activation === 'softmax') return refuse('activation "softmax" is not supported on Conv2D; supported: relu, linear');
          layers.push(new Conv2D({
            filters: filters as number,
            kernelSize: sizeOption(option('kernel_size'), 'kernel_size', refuse),
            strides: option('strides') == null ? 1 : sizeOption(option('strides'), 'strides', refuse),
            padding: paddingOption(option('padding'), refuse),
            activation,
            ...initializer,
            ...named,
          }));
          return;
        }
        case 'MaxPooling2D':
        case 'MaxPool2D': {
          checkChannelsLast(option('data_format'), refuse);
          const poolSize = option('pool_size') == null ? 2 : sizeOption(option('pool_size'), 'pool_size', refuse);
          layers.push(new MaxPooling2D({
            poolSize,
            strides: option('strides') == null ? poolSize : sizeOption(option('strides'), 'strides', refuse),
            padding: paddingOption(option('padding'), refuse),
            ...named,
          }));
          return;
        }
        case 'Reshape': {
          const target = option('target_shape');
          if (!Array.isArray(target) || target.length === 0 || target.length > 8 || !target.every((d) => d === -1 || (Number.isInteger(d) && d > 0))) {
            refuse(`target_shape ${describeValue(target)} is not a list of positive sizes`);
          }
          layers.push(new Reshape({ targetShape: target as number[], ...named }));
          return;
        }
        default:
          throw new ModelFormatError(file, `${described}: layer class "${layerClass}" is not supported; descent supports ${SUPPORTED_LAYERS.join(', ')}`);
      }
    } catch (err) {
      if (err instanceof ConfigError) refuse(err.message);
      throw err;
    }
  });
  if (layers.length === 0) throw new ModelFormatError(file, 'the model has no layers');
  return { name, layers, inputShape };
}

/** Options that only matter while training: descent trains with Glorot-uniform kernels, zero biases, no penalties. */
function checkTrainingOptions(option: (key: string) => unknown, refuse: (problem: string) => never): void {
  for (const key of ['kernel_regularizer', 'bias_regularizer', 'activity_regularizer', 'kernel_constraint', 'bias_constraint']) {
    const value = option(key);
    if (value != null) refuse(`${key} ${describeValue(isObject(value) ? value.class_name ?? value : value)} is not supported`);
  }
  const kernel = option('kernel_initializer');
  if (kernel != null && initializerFromConfig(kernel) === undefined) {
    refuse(`kernel_initializer ${describeValue(isObject(kernel) ? kernel.class_name : kernel)} is not supported (descent supports the VarianceScaling family: GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform)`);
  }
  const bias = option('bias_initializer');
  const biasName = isObject(bias) ? bias.class_name : bias;
  if (bias != null && (typeof biasName !== 'string' || biasName.toLowerCase() !== 'zeros')) {
    refuse(`bias_initializer ${describeValue(biasName)} is not supported (descent starts biases at zero)`);
  }
}

function checkChannelsLast(value: unknown, refuse: (problem: string) => never): void {
  if (value != null && value !== 'channels_last') refuse(`data_format ${describeValue(value)} is not supported (descent supports channels_last)`);
}

/** 3 or [3, 3] (Keras writes pairs; a single number means both). */
function sizePair(value: unknown): [number, number] | undefined {
  if (Number.isInteger(value) && (value as number) > 0) return [value as number, value as number];
  if (Array.isArray(value) && value.length === 2 && value.every((d) => Number.isInteger(d) && d > 0)) return [value[0], value[1]];
  return undefined;
}

function sizeOption(value: unknown, key: string, refuse: (problem: string) => never): [number, number] {
  return sizePair(value) ?? refuse(`${key} ${describeValue(value)} is not a positive size or a pair of them`);
}

function paddingOption(value: unknown, refuse: (problem: string) => never): Padding {
  if (value == null) return 'valid';
  if (value === 'valid' || value === 'same') return value;
  return refuse(`padding ${describeValue(value)} is not supported (descent supports valid and same)`);
}

/** A short rendering of a JSON value for an error message. */
function describeValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function camelCase(key: string): string {
  return key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** The per-sample input shape a layer config declares, if any (batch dimension dropped). */
function declaredInputShape(config: Record<string, unknown>, described: string, file: string): number[] | undefined {
  const batchShape = config.batch_input_shape ?? config.batchInputShape ?? config.batch_shape ?? config.batchShape;
  const shape = batchShape !== undefined && batchShape !== null ? batchShape : undefined;
  const perSample = config.input_shape ?? config.inputShape;
  let dims: unknown[] | undefined;
  if (Array.isArray(shape)) dims = shape.slice(1);
  else if (Array.isArray(perSample)) dims = perSample;
  else return undefined;
  if (dims.length === 0 || !dims.every((d) => Number.isInteger(d) && (d as number) > 0)) {
    throw new ModelFormatError(file, `${described} declares input shape ${JSON.stringify(shape ?? perSample)}; expected fixed positive sizes`);
  }
  return dims as number[];
}

function activationOf(value: unknown, described: string, file: string): Activation {
  if (value === undefined || value === null) return 'linear';
  // Keras 3 may write {class_name, config: {name}} or a module-qualified name.
  const name = isObject(value) ? String(isObject(value.config) ? value.config.name ?? value.class_name : value.class_name) : String(value);
  const normalized = name.toLowerCase();
  if ((SUPPORTED_ACTIVATIONS as readonly string[]).includes(normalized)) return normalized as Activation;
  throw new ModelFormatError(file, `${described} uses activation "${name}", which descent does not support; supported: ${SUPPORTED_ACTIVATIONS.join(', ')}`);
}

function checkDtype(value: unknown, described: string, file: string): void {
  if (value === undefined || value === null) return;
  // Keras 3 writes a dtype policy object: {class_name: 'DTypePolicy', config: {name: 'float32'}}.
  const dtype = isObject(value) ? (isObject(value.config) ? value.config.name : value.name) : value;
  if (dtype !== 'float32') throw new ModelFormatError(file, `${described} has dtype "${String(dtype)}"; descent supports float32 only`);
}

/** One Float32Array per model parameter, matched to the manifest by name. */
function readWeights(model: Sequential, specs: readonly WeightSpec[], data: ArrayBuffer, modelFile: string, weightsFile: string): Float32Array[] {
  for (const spec of specs) {
    if (spec.dtype !== 'float32') throw new ModelFormatError(modelFile, `weight '${spec.name}' has dtype "${spec.dtype}"; descent supports float32 only`);
    if (spec.quantization !== undefined && spec.quantization !== null) {
      throw new ModelFormatError(modelFile, `weight '${spec.name}' is quantized, which descent does not support`);
    }
  }
  checkWeightDataSize(specs, data.byteLength, modelFile, weightsFile);
  const offsets = new Map<WeightSpec, number>();
  let offset = 0;
  for (const spec of specs) {
    offsets.set(spec, offset);
    offset += weightDataBytes([spec]);
  }
  const used = new Set<WeightSpec>();
  const values = model.parameters().map(({ name, tensor }) => {
    const spec = findSpec(specs, name, modelFile);
    if (spec.shape.length !== tensor.shape.length || spec.shape.some((d, i) => d !== tensor.shape[i])) {
      throw new ModelFormatError(modelFile, `weight '${spec.name}' has shape [${spec.shape.join(', ')}] but the layer needs [${tensor.shape.join(', ')}]`);
    }
    used.add(spec);
    return decodeFloat32(data, offsets.get(spec)!, tensor.size);
  });
  const unused = specs.filter((spec) => !used.has(spec));
  if (unused.length > 0) {
    throw new ModelFormatError(modelFile, `weights ${unused.map((s) => `'${s.name}'`).join(', ')} in the weightsManifest belong to no layer of the model`);
  }
  return values;
}

/** The spec named exactly `name`, or the one whose name ends in `/name` (weights saved under a scope). */
function findSpec(specs: readonly WeightSpec[], name: string, file: string): WeightSpec {
  const exact = specs.find((spec) => spec.name === name);
  if (exact) return exact;
  const scoped = specs.filter((spec) => spec.name.endsWith(`/${name}`));
  if (scoped.length === 1) return scoped[0];
  throw new ModelFormatError(file, `the weightsManifest has no weight '${name}'${scoped.length > 1 ? ' (several weights end with that name)' : ''}`);
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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
