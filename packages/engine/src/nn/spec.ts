/**
 * Model definitions in one line, as `descent train --layers` takes them:
 *
 *   conv2d:32:3:relu,maxpool:2,conv2d:64:3:relu,maxpool:2,flatten,dense:128:relu,dropout:0.3
 *
 * Grammar (spaces around commas and colons are ignored; names are case-insensitive):
 *
 *   spec     = layer { "," layer }
 *   layer    = conv2d | maxpool | dense | dropout | flatten | reshape
 *   conv2d   = ("conv2d" | "conv") ":" FILTERS ":" SIZE { ":" option }      options: activation, padding, stride
 *   maxpool  = ("maxpool" | "pool") ":" SIZE { ":" option }                options: padding, stride (default: SIZE)
 *   dense    = "dense" ":" UNITS [ ":" activation ]
 *   dropout  = "dropout" ":" RATE                                        0 ≤ RATE < 1
 *   flatten  = "flatten"
 *   reshape  = "reshape" ":" DIM { "x" DIM }                             e.g. reshape:28x28x1
 *   SIZE     = N | N "x" M                                               3 is 3×3; 3x5 is 3 rows × 5 columns
 *   option   = activation | padding | "stride=" SIZE | "padding=" padding | "activation=" activation
 *   activation = "relu" | "linear" | "softmax" (dense only)
 *   padding  = "valid" | "same"
 *
 * `defineModel` completes a definition the way `descent train` needs it: a reshape to one
 * channel in front when the first layer works on images and the data has none ([28, 28] →
 * [28, 28, 1]), and the output layer, dense(classes, softmax), at the end unless the definition
 * ends with one. Shapes are checked layer by layer; errors name the layer as it was written.
 */
import { ConfigError, ShapeError, quote } from '../errors.js';
import { LIMITS } from '../io/schema.js';
import { sizeOf } from '../tensor.js';
import { Conv2D, MaxPooling2D, Reshape } from './conv-layers.js';
import { Dense, Dropout, Flatten, type Layer } from './layers.js';
import { Sequential, planModel } from './model.js';

/** The tutorial CNN of the Keras and TensorFlow.js examples (225,034 parameters on 28×28 images). */
export const CNN_LAYERS = 'conv2d:32:3:relu,maxpool:2,conv2d:64:3:relu,maxpool:2,flatten,dense:128:relu';

/** The layers of a one-line definition, in order (see the grammar above). */
export function parseLayers(spec: string): Layer[] {
  const tokens = spec.split(',').map((token) => token.trim());
  if (spec.trim() === '' || tokens.some((token) => token === '')) {
    throw new ConfigError(`${quote(spec)} has an empty layer; write layers separated by commas, e.g. conv2d:32:3:relu,maxpool:2,flatten,dense:128:relu`);
  }
  if (tokens.length > LIMITS.layers) throw new ConfigError(`the definition has ${tokens.length} layers, more than descent builds (${LIMITS.layers})`);
  return tokens.map((token, i) => {
    try {
      return parseLayer(token);
    } catch (err) {
      throw new ConfigError(`layer ${i + 1} ${quote(token)}: ${(err as Error).message}`);
    }
  });
}

function parseLayer(token: string): Layer {
  const [rawName, ...fields] = token.split(':').map((part) => part.trim());
  const name = rawName.toLowerCase();
  const expect = (count: number, what: string): void => {
    if (fields.length < count) throw new ConfigError(`expected ${what}`);
  };
  switch (name) {
    case 'conv2d':
    case 'conv': {
      expect(2, 'conv2d:FILTERS:SIZE[:relu|linear][:valid|same][:stride=N], e.g. conv2d:32:3:relu');
      const options = parseOptions(fields.slice(2), ['activation', 'padding', 'stride']);
      return new Conv2D({
        filters: count(fields[0], 'FILTERS'),
        kernelSize: size(fields[1]),
        strides: options.stride,
        padding: options.padding,
        activation: options.activation === 'softmax' ? unsupported('activation softmax on conv2d (use relu or linear)') : options.activation,
      });
    }
    case 'maxpool':
    case 'pool': {
      expect(1, 'maxpool:SIZE[:stride=N][:valid|same], e.g. maxpool:2');
      const options = parseOptions(fields.slice(1), ['padding', 'stride']);
      const poolSize = size(fields[0]);
      return new MaxPooling2D({ poolSize, strides: options.stride ?? poolSize, padding: options.padding });
    }
    case 'dense': {
      expect(1, 'dense:UNITS[:relu|linear|softmax], e.g. dense:128:relu');
      const options = parseOptions(fields.slice(1), ['activation']);
      return new Dense({ units: count(fields[0], 'UNITS'), activation: options.activation ?? 'linear' });
    }
    case 'dropout': {
      expect(1, 'dropout:RATE with 0 ≤ RATE < 1, e.g. dropout:0.3');
      if (fields.length > 1) throw new ConfigError(`unexpected ${quote(`:${fields[1]}`)} after the rate`);
      const rate = Number(fields[0]);
      if (fields[0] === '' || !(rate >= 0 && rate < 1)) throw new ConfigError(`rate ${quote(fields[0])} is not a number from 0 up to (not including) 1`);
      return new Dropout({ rate });
    }
    case 'flatten':
      if (fields.length > 0) throw new ConfigError('flatten takes no options');
      return new Flatten();
    case 'reshape': {
      expect(1, 'reshape:DIMS, e.g. reshape:28x28x1');
      if (fields.length > 1) throw new ConfigError(`unexpected ${quote(`:${fields[1]}`)} after the shape`);
      const dims = fields[0].split(/x|×/);
      if (dims.length > LIMITS.rank) throw new ConfigError(`shape ${quote(fields[0])} has more than ${LIMITS.rank} dimensions`);
      return new Reshape({ targetShape: dims.map((d) => count(d, 'a dimension')) });
    }
    default:
      throw new ConfigError(`unknown layer ${quote(rawName)}; known: conv2d, maxpool, dense, dropout, flatten, reshape`);
  }
}

interface LayerOptions {
  activation?: 'relu' | 'linear' | 'softmax';
  padding?: 'valid' | 'same';
  stride?: [number, number];
}

function parseOptions(fields: string[], allowed: Array<keyof LayerOptions>): LayerOptions {
  const options: LayerOptions = {};
  const set = <K extends keyof LayerOptions>(key: K, value: LayerOptions[K], text: string): void => {
    if (!allowed.includes(key)) throw new ConfigError(`option ${quote(text)} does not apply to this layer`);
    if (options[key] !== undefined) throw new ConfigError(`${key} is given twice`);
    options[key] = value;
  };
  for (const field of fields) {
    const [key, value] = field.includes('=') ? field.split('=').map((part) => part.trim().toLowerCase()) : [undefined, field.toLowerCase()];
    if ((key === undefined || key === 'activation') && isActivation(value)) set('activation', value, field);
    else if ((key === undefined || key === 'padding') && (value === 'valid' || value === 'same')) set('padding', value, field);
    else if (key === 'stride' || key === 'strides') set('stride', size(value), field);
    else throw new ConfigError(`unknown option ${quote(field)}; options are ${describeAllowed(allowed)}`);
  }
  return options;
}

function describeAllowed(allowed: Array<keyof LayerOptions>): string {
  const text: Record<keyof LayerOptions, string> = { activation: 'relu, linear', padding: 'valid, same', stride: 'stride=N' };
  return allowed.map((key) => text[key]).join(', ');
}

function isActivation(value: string): value is 'relu' | 'linear' | 'softmax' {
  return value === 'relu' || value === 'linear' || value === 'softmax';
}

function count(text: string, what: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`${what} ${quote(text)} is not a positive whole number`);
  if (n > LIMITS.dimension) throw new ConfigError(`${what} ${n} is more than descent allows (${LIMITS.dimension})`);
  return n;
}

/** "3" → [3, 3]; "3x5" → [3, 5]. */
function size(text: string): [number, number] {
  const parts = text.split(/x|×/);
  if (parts.length > 2) throw new ConfigError(`size ${quote(text)} is not N or NxM`);
  const rows = count(parts[0], 'size');
  return [rows, parts.length === 2 ? count(parts[1], 'size') : rows];
}

function unsupported(what: string): never {
  throw new ConfigError(`${what} is not supported`);
}

export interface DefineModelOptions {
  /** Per-sample shape of the data, e.g. [28, 28]. */
  inputShape: number[];
  /** Number of classes: the output layer gets this many units. */
  classes: number;
  seed?: number;
  /** How the definition was given, for messages (e.g. '--layers'). Default 'the model definition'. */
  source?: string;
  /**
   * Append dense(classes, softmax) unless the layers end with it (default). False: the layers
   * must end with it (a complete definition, e.g. from Keras).
   */
  addOutput?: boolean;
  /**
   * Most parameters (weights and biases) the model may have, checked before any weight is made.
   * Default LIMITS.trainingParameters (2^26: with gradients and Adam's moments, 1 GiB to train);
   * pass less for definitions from others.
   */
  maxParameters?: number;
}

/**
 * A built Sequential model from `layers` (from parseLayers, a preset or a Keras/tfjs definition):
 * a reshape in front when the images need a channel axis, the softmax output at the end unless
 * the layers end with one, and every shape checked. Errors name the layer: its position and how
 * it was written.
 */
export function defineModel(layers: Layer[], options: DefineModelOptions): Sequential {
  return new Sequential(checkDefinition(layers, options), { seed: options.seed, inputShape: options.inputShape });
}

/**
 * Everything defineModel checks, without building: the completed layer list (reshape in front,
 * output at the end), every shape, and the parameter count and per-sample sizes against their caps.
 * Allocates no weight.
 */
export function checkDefinition(layers: Layer[], { inputShape, classes, source = 'the model definition', addOutput = true, maxParameters = LIMITS.trainingParameters }: DefineModelOptions): Layer[] {
  const all = [...layers];
  const first = all[0];
  if (first && (first instanceof Conv2D || first instanceof MaxPooling2D) && inputShape.length === 2) {
    all.unshift(new Reshape({ targetShape: [...inputShape, 1] }));
  }
  const last = all[all.length - 1];
  if (last instanceof Dense && last.activation === 'softmax') {
    if (last.units !== classes) throw new ConfigError(`${source}: the output layer (${last.describe()}) must have ${classes} units, one per class`);
  } else if (addOutput) {
    all.push(new Dense({ units: classes, activation: 'softmax' }));
  } else {
    const what = last ? `its last layer is ${last.describe()}` : 'it has no layers';
    throw new ConfigError(`${source}: the model must end with a dense layer of ${classes} units and softmax activation (one probability per class); ${what}`);
  }
  for (let i = 0; i < all.length - 1; i++) {
    const layer = all[i];
    if (layer instanceof Dense && layer.activation === 'softmax') {
      throw new ConfigError(`${source}: ${layer.describe()} is only supported as the last layer`);
    }
  }
  // Check every layer's input before any weight is made, naming the layer as the user wrote it.
  let shape = inputShape;
  all.forEach((layer, i) => {
    try {
      shape = outputShapeOf(layer, shape);
    } catch (err) {
      if (!(err instanceof ShapeError || err instanceof ConfigError)) throw err;
      // Layers from a JSON definition have names; those from --layers are counted.
      const position = !layers.includes(layer) ? `the added ${layer.describe()}`
        : layer.name ? `layer '${layer.name}' (${layer.describe()})` : `layer ${layers.indexOf(layer) + 1} (${layer.describe()})`;
      throw new ConfigError(`${source}: ${position}: ${detail(err.message)}`);
    }
  });
  const plan = planModel(all, inputShape);
  const largest = plan.outputShapes.findIndex((shape) => sizeOf(shape) > LIMITS.sampleElements);
  if (largest >= 0) {
    throw new ConfigError(`${source}: ${all[largest].describe()} makes ${sizeOf(plan.outputShapes[largest]).toLocaleString('en-US')} values per sample, more than descent allows (${LIMITS.sampleElements.toLocaleString('en-US')})`);
  }
  const parameters = plan.weights.reduce((n, weight) => n + sizeOf(weight.shape), 0);
  if (parameters > maxParameters) {
    throw new ConfigError(`${source}: the model would have ${parameters.toLocaleString('en-US')} parameters, more than descent builds here (${maxParameters.toLocaleString('en-US')})`);
  }
  return all;
}

/** The per-sample output shape, without making weights. */
function outputShapeOf(layer: Layer, inputShape: number[]): number[] {
  if (layer instanceof Conv2D || layer instanceof MaxPooling2D || layer instanceof Reshape) return layer.outputShape(inputShape);
  if (layer instanceof Dense) {
    if (inputShape.length !== 1) throw new ShapeError(`needs flat inputs but gets ${inputShape.join('×')} per sample; put flatten before it`);
    return [layer.units];
  }
  if (layer instanceof Flatten) return [inputShape.reduce((a, b) => a * b, 1)];
  return inputShape;
}

/** A layer's own message without its name prefix ("conv2d: ..." → "..."). */
function detail(message: string): string {
  return message.replace(/^(conv2d|max pooling|reshape)(?: '[^']*')?: /, '');
}
