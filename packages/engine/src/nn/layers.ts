/**
 * Layers: Flatten, Dense, Dropout here; Conv2D, MaxPooling2D and Reshape in conv-layers.ts. A
 * layer owns its weights, knows its output shape, and turns an input tensor into an output
 * tensor with ops (whose backward comes with them).
 */
import { ConfigError, ShapeError, formatShape } from '../errors.js';
import { dense as denseOp } from '../ops/dense.js';
import { dropout as dropoutOp } from '../ops/dropout.js';
import { flatten as flattenOp } from '../ops/reshape.js';
import { softmax } from '../ops/softmax.js';
import type { Random } from '../random.js';
import { Tensor, keep } from '../tensor.js';
import { GLOROT_UNIFORM, checkInitializer, initialKernel, initializerConfig, type VarianceScaling } from './initializers.js';

export type Activation = 'relu' | 'softmax' | 'linear';

/** A trainable tensor with the name it is saved under, e.g. 'dense/kernel'. */
export interface Parameter {
  readonly name: string;
  readonly tensor: Tensor;
}

export interface WeightShape {
  name: string;
  shape: number[];
}

export interface CallContext {
  training: boolean;
  random: Random;
}

/** Keras's class names of the layers descent has. */
export type LayerClassName = 'Flatten' | 'Dense' | 'Dropout' | 'Conv2D' | 'MaxPooling2D' | 'Reshape';

export interface Layer {
  readonly className: LayerClassName;
  name: string;
  /** Per-sample input shape (without the batch dimension); set by `build`. */
  inputShape?: number[];
  /** Create weights for a per-sample input shape; returns the per-sample output shape. */
  build(inputShape: number[], random: Random): number[];
  /** The per-sample output shape for `inputShape`, without building; a ShapeError if the input does not fit. */
  outputShape(inputShape: readonly number[]): number[];
  /**
   * The weights `build` would create for `inputShape`, in `parameters()` order and named as saved
   * ('dense/kernel'), without creating them: loaders compare them with a file before allocating.
   */
  weightShapes(inputShape: readonly number[]): WeightShape[];
  call(x: Tensor, context: CallContext): Tensor;
  parameters(): Parameter[];
  /** Keras config, as saved in model.json. */
  config(): Record<string, unknown>;
  /** A few words for people, e.g. 'dense 128 relu' or 'conv2d 32 3×3 relu'. */
  describe(): string;
}

export interface FlattenOptions {
  inputShape?: number[];
  name?: string;
}

export class Flatten implements Layer {
  readonly className = 'Flatten';
  name: string;
  inputShape?: number[];
  constructor(readonly options: FlattenOptions = {}) {
    this.name = options.name ?? '';
    this.inputShape = options.inputShape;
  }
  build(inputShape: number[]): number[] {
    this.inputShape = inputShape;
    return this.outputShape(inputShape);
  }
  outputShape(inputShape: readonly number[]): number[] {
    return [inputShape.reduce((a, b) => a * b, 1)];
  }
  weightShapes(): WeightShape[] {
    return [];
  }
  call(x: Tensor): Tensor {
    return flattenOp(x);
  }
  parameters(): Parameter[] {
    return [];
  }
  config(): Record<string, unknown> {
    return { name: this.name, trainable: true, dtype: 'float32', data_format: 'channels_last' };
  }
  describe(): string {
    return 'flatten';
  }
}

export interface DenseOptions {
  units: number;
  activation?: Activation;
  /** Default Glorot uniform, as Keras. */
  kernelInitializer?: VarianceScaling;
  inputShape?: number[];
  name?: string;
}

export class Dense implements Layer {
  readonly className = 'Dense';
  name: string;
  inputShape?: number[];
  readonly units: number;
  readonly activation: Activation;
  readonly kernelInitializer: VarianceScaling;
  /** [inputs, units], Keras's layout, so x·kernel needs no transpose. */
  kernel?: Tensor;
  bias?: Tensor;

  constructor(options: DenseOptions) {
    if (!Number.isInteger(options.units) || options.units < 1) {
      throw new ConfigError(`dense: units must be a positive integer, got ${options.units}`);
    }
    const activation = options.activation ?? 'linear';
    if (!['relu', 'softmax', 'linear'].includes(activation)) {
      throw new ConfigError(`dense: unsupported activation '${activation}' (use relu, softmax or linear)`);
    }
    this.units = options.units;
    this.activation = activation;
    this.kernelInitializer = checkInitializer('dense', options.kernelInitializer ?? GLOROT_UNIFORM);
    this.name = options.name ?? '';
    this.inputShape = options.inputShape;
  }

  build(inputShape: number[], random: Random): number[] {
    const outputShape = this.outputShape(inputShape);
    this.inputShape = inputShape;
    const fanIn = inputShape[0];
    this.kernel = keep(initialKernel(this.kernelInitializer, fanIn, this.units, random));
    this.bias = keep(Tensor.zeros([this.units], true));
    return outputShape;
  }

  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== 1) {
      throw new ShapeError(`dense '${this.name}' needs flat inputs, got per-sample shape ${formatShape(inputShape)}; add a flatten layer first`);
    }
    return [this.units];
  }

  weightShapes(inputShape: readonly number[]): WeightShape[] {
    return [
      { name: `${this.name}/kernel`, shape: [inputShape[0], this.units] },
      { name: `${this.name}/bias`, shape: [this.units] },
    ];
  }

  call(x: Tensor): Tensor {
    const { kernel, bias } = this.built();
    if (this.activation === 'softmax') return softmax(denseOp(x, kernel, bias, 'linear'));
    return denseOp(x, kernel, bias, this.activation);
  }

  parameters(): Parameter[] {
    const { kernel, bias } = this.built();
    return [
      { name: `${this.name}/kernel`, tensor: kernel },
      { name: `${this.name}/bias`, tensor: bias },
    ];
  }

  config(): Record<string, unknown> {
    return {
      name: this.name,
      trainable: true,
      dtype: 'float32',
      units: this.units,
      activation: this.activation,
      use_bias: true,
      kernel_initializer: initializerConfig(this.kernelInitializer),
      bias_initializer: { class_name: 'Zeros', config: {} },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    };
  }

  describe(): string {
    return `dense ${this.units} ${this.activation}`;
  }

  private built(): { kernel: Tensor; bias: Tensor } {
    if (!this.kernel || !this.bias) throw new ConfigError(`dense '${this.name}' is used before it was built`);
    return { kernel: this.kernel, bias: this.bias };
  }
}

/**
 * Glorot (Xavier) uniform: U(-limit, limit) with limit = √(6 / (fanIn + fanOut)), which keeps
 * the variance of activations and of gradients roughly equal from layer to layer. A dense kernel
 * is [fanIn, fanOut]; a convolution kernel [kh, kw, in, out] has fanIn = kh·kw·in and
 * fanOut = kh·kw·out (Keras's receptive-field fans) and passes its own shape.
 */
export function glorotUniform(fanIn: number, fanOut: number, random: Random, shape: readonly number[] = [fanIn, fanOut]): Tensor {
  return initialKernel(GLOROT_UNIFORM, fanIn, fanOut, random, shape);
}

export interface DropoutOptions {
  rate: number;
  name?: string;
  inputShape?: number[];
}

export class Dropout implements Layer {
  readonly className = 'Dropout';
  name: string;
  inputShape?: number[];
  readonly rate: number;
  constructor(options: DropoutOptions) {
    if (!(options.rate >= 0 && options.rate < 1)) throw new ConfigError(`dropout rate must be in [0, 1), got ${options.rate}`);
    this.rate = options.rate;
    this.name = options.name ?? '';
    this.inputShape = options.inputShape;
  }
  build(inputShape: number[]): number[] {
    this.inputShape = inputShape;
    return inputShape;
  }
  outputShape(inputShape: readonly number[]): number[] {
    return [...inputShape];
  }
  weightShapes(): WeightShape[] {
    return [];
  }
  call(x: Tensor, { training, random }: CallContext): Tensor {
    return dropoutOp(x, this.rate, random, training);
  }
  parameters(): Parameter[] {
    return [];
  }
  config(): Record<string, unknown> {
    return { name: this.name, trainable: true, dtype: 'float32', rate: this.rate, noise_shape: null, seed: null };
  }
  describe(): string {
    return `dropout ${this.rate}`;
  }
}

export const flatten = (options?: FlattenOptions): Flatten => new Flatten(options);
export const dense = (options: DenseOptions): Dense => new Dense(options);
export const dropout = (options: DropoutOptions): Dropout => new Dropout(options);
