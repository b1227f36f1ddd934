/**
 * How each Keras layer class is read from a Layers-format topology: the schema of the config
 * fields descent reads, and how the layer is made from them. To support a new layer, add an entry
 * to LAYER_FORMATS (or call registerLayerFormat): its schema is the only place its fields are
 * checked, so `create` receives typed, bounded values and never sees raw JSON.
 *
 * Every layer config first passes COMMON_CONFIG (name, dtype, input shape), with camelCase keys
 * (tfjs's JavaScript configs) turned into Keras's snake_case. Fields a schema does not name are
 * allowed and ignored: Keras writes many (initializers, regularizers) that do not change a
 * trained model; `forTraining` refuses those that would change training.
 */
import { z } from 'zod';
import { ConfigError, ModelFormatError, ShapeError, excerpt } from '../errors.js';
import { Conv2D, MaxPooling2D, Reshape } from '../nn/conv-layers.js';
import { initializerFromConfig, type VarianceScaling } from '../nn/initializers.js';
import { Dense, Dropout, Flatten, type Activation, type Layer } from '../nn/layers.js';
import type { Sequential } from '../nn/model.js';
import { defineModel, type DefineModelOptions } from '../nn/spec.js';
import { LIMITS, check, jsonRecord, name, parseJsonText, positiveDimension } from './schema.js';

export interface LayerFormat<Config = Record<string, unknown>> {
  /** The config fields this layer reads (snake_case), e.g. z.looseObject({ units: positiveDimension }). */
  config: z.ZodType<Config>;
  /**
   * The layer, or undefined for one that only declares the input (InputLayer). `kernelInitializer`
   * is given for a definition to train whose layer names one (a loaded model has its weights).
   */
  create(config: Config, name: string | undefined, training: { kernelInitializer?: VarianceScaling }): Layer | undefined;
  /** Has a kernel and a bias: initializers, regularizers and constraints matter when training it. */
  hasKernel?: boolean;
  /** Fields refused in a definition to train (forTraining), beyond those of layers with a kernel. */
  training?: z.ZodType;
}

/** An activation as Keras writes it: 'relu', or {class_name: 'ReLU'} / {config: {name: 'relu'}} in Keras 3; absent or null is linear. */
export const activation = z.unknown().transform((value, ctx): Activation => {
  if (value === undefined || value === null) return 'linear';
  const named = isObject(value) ? (isObject(value.config) && value.config.name !== undefined ? value.config.name : value.class_name) : value;
  const normalized = typeof named === 'string' ? named.toLowerCase() : undefined;
  if (normalized === 'relu' || normalized === 'softmax' || normalized === 'linear') return normalized;
  ctx.addIssue({ code: 'custom', message: 'activation is not supported (descent has relu, softmax and linear)', input: named });
  return z.NEVER;
}).optional();

/** Keras's use_bias: descent's Dense and Conv2D always have one. */
export const useBias = z.literal(true, { error: 'use_bias: false is not supported (descent layers always have a bias)' }).optional();

/** Fields every layer may have. */
const COMMON_CONFIG = z.looseObject({
  name: name.optional(),
  trainable: z.boolean().optional(),
  dtype: z
    .unknown()
    .refine((value) => {
      if (value === undefined || value === null) return true;
      // Keras 3 writes a dtype policy: {class_name: 'DTypePolicy', config: {name: 'float32'}}.
      const dtype = isObject(value) ? (isObject(value.config) ? value.config.name : value.name) : value;
      return dtype === 'float32';
    }, 'dtype must be float32 (descent computes in float32 only)')
    .optional(),
  batch_input_shape: batchShape().nullable().optional(),
  batch_shape: batchShape().nullable().optional(),
  input_shape: z.array(positiveDimension).min(1).max(LIMITS.rank).nullable().optional(),
});

const TRAINING_OPTIONS = z.looseObject({
  kernel_regularizer: z.null({ error: 'kernel_regularizer is not supported' }).optional(),
  bias_regularizer: z.null({ error: 'bias_regularizer is not supported' }).optional(),
  activity_regularizer: z.null({ error: 'activity_regularizer is not supported' }).optional(),
  kernel_constraint: z.null({ error: 'kernel_constraint is not supported' }).optional(),
  bias_constraint: z.null({ error: 'bias_constraint is not supported' }).optional(),
  kernel_initializer: z
    .unknown()
    .refine(
      (value) => value === undefined || value === null || initializerFromConfig(value) !== undefined,
      'kernel_initializer is not supported (descent supports the VarianceScaling family: GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform)',
    )
    .optional(),
  bias_initializer: initializer('zeros', 'bias_initializer is not supported (descent starts biases at zero)'),
});

/** 3 or [3, 3]: Keras writes pairs, a single number means both. */
const sizePair = z.union([positiveDimension, z.tuple([positiveDimension, positiveDimension])], { error: 'must be a positive size or a pair of them' })
  .transform((v): [number, number] => (typeof v === 'number' ? [v, v] : v));
const padding = z.enum(['valid', 'same'], { error: 'padding must be valid or same' }).nullable().optional();
const channelsLast = z.literal('channels_last', { error: 'data_format must be channels_last' }).nullable().optional();

const maxPooling: LayerFormat<{ pool_size?: [number, number] | null; strides?: [number, number] | null; padding?: 'valid' | 'same' | null }> = {
  config: z.looseObject({ pool_size: sizePair.nullable().optional(), strides: sizePair.nullable().optional(), padding, data_format: channelsLast }),
  create: (config, name) => {
    const poolSize = config.pool_size ?? [2, 2];
    return new MaxPooling2D({ poolSize, strides: config.strides ?? poolSize, padding: config.padding ?? 'valid', name });
  },
};

export const LAYER_FORMATS: Record<string, LayerFormat<any>> = {
  InputLayer: {
    config: z.looseObject({}),
    create: () => undefined,
  },
  Flatten: {
    config: z.looseObject({ data_format: channelsLast }),
    create: (_config, name) => new Flatten({ name }),
  },
  Dense: {
    config: z.looseObject({ units: positiveDimension, activation, use_bias: useBias }),
    create: (config: { units: number; activation?: Activation }, name, training) =>
      new Dense({ units: config.units, activation: config.activation ?? 'linear', ...training, name }),
    hasKernel: true,
  },
  Dropout: {
    config: z.looseObject({ rate: z.number().min(0).lt(1, 'rate must be in [0, 1)') }),
    create: (config: { rate: number }, name) => new Dropout({ rate: config.rate, name }),
    training: z.looseObject({ noise_shape: z.null({ error: 'noise_shape is not supported' }).optional() }),
  },
  Conv2D: {
    config: z.looseObject({
      filters: positiveDimension,
      kernel_size: sizePair,
      strides: sizePair.nullable().optional(),
      padding,
      data_format: channelsLast,
      dilation_rate: z.union([z.literal(1), z.tuple([z.literal(1), z.literal(1)])], { error: 'dilation_rate is not supported (descent supports 1)' }).nullable().optional(),
      groups: z.literal(1, { error: 'groups is not supported (descent supports 1)' }).nullable().optional(),
      activation: activation.refine((a) => a !== 'softmax', 'activation "softmax" is not supported on Conv2D; supported: relu, linear'),
      use_bias: useBias,
    }),
    create: (config: { filters: number; kernel_size: [number, number]; strides?: [number, number] | null; padding?: 'valid' | 'same' | null; activation?: Activation }, name, training) =>
      new Conv2D({
        filters: config.filters,
        kernelSize: config.kernel_size,
        strides: config.strides ?? 1,
        padding: config.padding ?? 'valid',
        activation: config.activation === 'relu' ? 'relu' : 'linear',
        ...training,
        name,
      }),
    hasKernel: true,
  },
  MaxPooling2D: maxPooling,
  MaxPool2D: maxPooling,
  Reshape: {
    config: z.looseObject({ target_shape: z.array(z.union([z.literal(-1), positiveDimension]), { error: 'target_shape is not a list of positive sizes' }).min(1).max(LIMITS.rank) }),
    create: (config: { target_shape: number[] }, name) => new Reshape({ targetShape: config.target_shape, name }),
  },
} satisfies Record<string, LayerFormat<any>>;

/** Adds (or replaces) how a layer class is read. */
export function registerLayerFormat<Config>(className: string, format: LayerFormat<Config>): void {
  LAYER_FORMATS[className] = format as LayerFormat<any>;
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
  /** The layers are a definition to train, not a trained model: options that would change training are refused rather than ignored. */
  forTraining?: boolean;
}

const LAYER_ENTRY = z.looseObject({
  class_name: z.string().max(100).optional(),
  className: z.string().max(100).optional(),
  config: jsonRecord.optional(),
});

/**
 * The layers of a Sequential model description: what Keras's `model.to_json()` and tfjs's
 * `model.toJSON()` write (also model.json's modelTopology). Throws a ModelFormatError naming the
 * first layer or field descent cannot use. Creating the layers allocates nothing: weights are
 * made when the model is built.
 */
export function layersFromTopology(topology: unknown, { file = 'model.json', forTraining = false }: TopologyOptions = {}): ParsedTopology {
  const fail = (problem: string) => new ModelFormatError(file, problem);
  if (!isObject(topology)) throw fail('has no modelTopology object');
  // Keras's model.to_json() inside an HDF5-style wrapper: {model_config: {...}, training_config: ...}.
  const root = isObject(topology.model_config) ? topology.model_config : topology;
  const className = root.class_name ?? root.className;
  if (className !== 'Sequential') throw fail(`model class ${excerpt(className, 40)} is not supported; descent loads Sequential models`);
  // Old Keras wrote the layer list as the config itself; newer versions write {name, layers}.
  const config = root.config;
  const layerList = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  if (!Array.isArray(layerList)) throw fail('modelTopology.config has no list of layers');
  if (layerList.length > LIMITS.layers) throw fail(`the model has ${layerList.length} layers, more than descent reads (${LIMITS.layers})`);
  const modelName = isObject(config) && typeof config.name === 'string' ? check(name, config.name, fail, ['modelTopology', 'config', 'name']) : 'sequential';

  let inputShape: number[] | undefined;
  const layers: Layer[] = [];
  layerList.forEach((entry: unknown, i) => {
    const where = ['layers', i];
    const { class_name, className: camel, config: rawConfig = {} } = check(LAYER_ENTRY, entry, fail, where);
    const layerClass = class_name ?? camel;
    const layerConfig = snakeCaseKeys(rawConfig);
    const classText = layerClass === undefined ? 'no class_name' : /^\w{1,40}$/.test(layerClass) ? layerClass : excerpt(layerClass, 30);
    const layerName = layerConfig.name;
    const described = `layer ${typeof layerName === 'string' && layerName.length > 0 ? `'${excerpt(layerName, 40).slice(1, -1)}'` : i} (${classText})`;
    const refuse = (problem: string) => fail(`${described}: ${problem}`);
    const common = check(COMMON_CONFIG, layerConfig, refuse);
    const format = layerClass !== undefined && Object.hasOwn(LAYER_FORMATS, layerClass) ? LAYER_FORMATS[layerClass] : undefined;
    if (!format) throw refuse(`layer class ${excerpt(layerClass, 30)} is not supported; descent supports ${Object.keys(LAYER_FORMATS).join(', ')}`);
    inputShape ??= declaredInputShape(common);
    const specific = check(format.config, layerConfig, refuse);
    let training: { kernelInitializer?: VarianceScaling } = {};
    if (forTraining && format.training) check(format.training, layerConfig, refuse);
    if (forTraining && format.hasKernel) {
      check(TRAINING_OPTIONS, layerConfig, refuse);
      const kernelInitializer = layerConfig.kernel_initializer == null ? undefined : initializerFromConfig(layerConfig.kernel_initializer);
      if (kernelInitializer) training = { kernelInitializer };
    }
    let layer: Layer | undefined;
    try {
      layer = format.create(specific, common.name, training);
    } catch (err) {
      if (err instanceof ConfigError || err instanceof ShapeError) throw refuse(err.message);
      throw err;
    }
    if (layer) layers.push(layer);
  });
  if (layers.length === 0) throw fail('the model has no layers');
  return { name: modelName, layers, inputShape };
}

/** The per-sample input shape a layer config declares, if any (the batch dimension dropped). */
function declaredInputShape(config: z.output<typeof COMMON_CONFIG>): number[] | undefined {
  const batchShape = config.batch_input_shape ?? config.batch_shape;
  if (batchShape) return batchShape.slice(1) as number[];
  return config.input_shape ?? undefined;
}

/** {useBias: false} → {use_bias: false}; a snake_case key wins when both are given. */
function snakeCaseKeys(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    const snake = key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
    if (snake === '__proto__') continue;
    if (snake === key || !Object.hasOwn(config, snake)) out[snake] = value;
  }
  return out;
}

/** [null, 28, 28]: any batch size, then fixed positive sizes. */
function batchShape() {
  return z
    .array(positiveDimension.nullable())
    .min(2)
    .max(LIMITS.rank + 1)
    .refine((shape) => shape.slice(1).every((d) => d !== null), 'expected fixed positive sizes after the batch dimension');
}

/** An initializer by Keras class name, compared without case or underscores. */
function initializer(expected: string, message: string) {
  return z
    .unknown()
    .refine((value) => {
      if (value === undefined || value === null) return true;
      const className = isObject(value) ? value.class_name : value;
      return typeof className === 'string' && className.replace(/_/g, '').toLowerCase() === expected;
    }, message)
    .optional();
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A model to train from a definition's JSON text: Keras's model.to_json(), TensorFlow.js's
 * model.toJSON(), or a whole model.json (its modelTopology is used). The text is depth-checked
 * before parsing, every layer checked against LAYER_FORMATS for training, and the model completed
 * and built by defineModel, which checks shapes and the parameter count before any weight exists.
 * `inputShape` is the data's per-sample shape; a definition may declare another of the same size.
 */
export function modelFromDefinitionText(text: string, options: DefineModelOptions & { source: string }): Sequential {
  const { source } = options;
  const parsed = parseJsonText(text);
  if ('problem' in parsed) throw new ModelFormatError(source, parsed.problem);
  // A tfjs model.json holds the definition as its modelTopology.
  const json = parsed.value;
  const topology = isObject(json) && 'modelTopology' in json ? json.modelTopology : json;
  const { layers, inputShape } = layersFromTopology(topology, { file: source, forTraining: true });
  const shape = inputShape ?? options.inputShape;
  const size = shape.reduce((a, b) => a * b, 1);
  const pixels = options.inputShape.reduce((a, b) => a * b, 1);
  if (size !== pixels) {
    throw new ConfigError(`${source}: the model takes inputs of shape [${shape.join(', ')}] (${size} values), but the images have ${options.inputShape.join('×')} = ${pixels} pixels`);
  }
  return defineModel(layers, { ...options, inputShape: shape, addOutput: false });
}
