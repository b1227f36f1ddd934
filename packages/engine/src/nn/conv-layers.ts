/**
 * Layers for images: Conv2D, MaxPooling2D, and Reshape (which adds the channel axis that the
 * first convolution needs: [28, 28] → [28, 28, 1]). Images are NHWC (channels last), kernels
 * [kh, kw, in, out], as in Keras and TensorFlow.js, so saved models move between them unchanged.
 */
import { ConfigError, ShapeError, formatShape } from '../errors.js';
import { conv2d as conv2dOp } from '../ops/conv2d.js';
import { maxPool2d as maxPool2dOp } from '../ops/max-pool.js';
import { reshape as reshapeOp } from '../ops/reshape.js';
import { windowOutputSize, type Padding } from '../ops/window.js';
import type { Random } from '../random.js';
import { Tensor, keep, sizeOf } from '../tensor.js';
import { GLOROT_UNIFORM, checkInitializer, initialKernel, initializerConfig, type VarianceScaling } from './initializers.js';
import type { CallContext, Layer, Parameter, WeightShape } from './layers.js';

export type ConvActivation = 'relu' | 'linear';
export type Size2d = number | readonly [number, number];

export interface Conv2DOptions {
  filters: number;
  /** [rows, columns] of the kernel, or one number for a square kernel. */
  kernelSize: Size2d;
  /** Default 1. */
  strides?: Size2d;
  /** Default 'valid'. */
  padding?: Padding;
  /** Default 'linear'. */
  activation?: ConvActivation;
  /** Default Glorot uniform, as Keras. */
  kernelInitializer?: VarianceScaling;
  inputShape?: number[];
  name?: string;
}

export class Conv2D implements Layer {
  readonly className = 'Conv2D';
  name: string;
  inputShape?: number[];
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: Padding;
  readonly activation: ConvActivation;
  readonly kernelInitializer: VarianceScaling;
  /** [kh, kw, in, filters]. */
  kernel?: Tensor;
  bias?: Tensor;

  constructor(options: Conv2DOptions) {
    this.name = options.name ?? '';
    checkCount(`conv2d${this.label()}: filters`, options.filters);
    this.filters = options.filters;
    this.kernelSize = checkSize(`conv2d${this.label()}: kernel size`, options.kernelSize);
    this.strides = checkSize(`conv2d${this.label()}: strides`, options.strides ?? 1);
    this.padding = checkPadding(`conv2d${this.label()}`, options.padding ?? 'valid');
    const activation = options.activation ?? 'linear';
    if (activation !== 'relu' && activation !== 'linear') {
      throw new ConfigError(`conv2d${this.label()}: unsupported activation '${String(activation)}' (use relu or linear)`);
    }
    this.activation = activation;
    this.kernelInitializer = checkInitializer(`conv2d${this.label()}`, options.kernelInitializer ?? GLOROT_UNIFORM);
    this.inputShape = options.inputShape;
  }

  build(inputShape: number[], random: Random): number[] {
    const outputShape = this.outputShape(inputShape);
    this.inputShape = inputShape;
    const [kh, kw] = this.kernelSize;
    const channels = inputShape[2];
    this.kernel = keep(initialKernel(this.kernelInitializer, kh * kw * channels, kh * kw * this.filters, random, [kh, kw, channels, this.filters]));
    this.bias = keep(Tensor.zeros([this.filters], true));
    return outputShape;
  }

  /** [outHeight, outWidth, filters] for a per-sample input [height, width, channels]. */
  outputShape(inputShape: readonly number[]): number[] {
    const [height, width] = windowOutputSize(`conv2d${this.label()}`, inputShape, this.kernelSize, this.strides, this.padding);
    return [height, width, this.filters];
  }

  weightShapes(inputShape: readonly number[]): WeightShape[] {
    const [kh, kw] = this.kernelSize;
    return [
      { name: `${this.name}/kernel`, shape: [kh, kw, inputShape[2], this.filters] },
      { name: `${this.name}/bias`, shape: [this.filters] },
    ];
  }

  call(x: Tensor): Tensor {
    const { kernel, bias } = this.built();
    return conv2dOp(x, kernel, bias, { strides: this.strides, padding: this.padding, activation: this.activation });
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
      filters: this.filters,
      kernel_size: [...this.kernelSize],
      strides: [...this.strides],
      padding: this.padding,
      data_format: 'channels_last',
      dilation_rate: [1, 1],
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
    return `conv2d ${this.filters} ${sizeText(this.kernelSize)}${stridesText(this.strides)}${this.padding === 'same' ? ' same' : ''} ${this.activation}`;
  }

  private label(): string {
    return this.name ? ` '${this.name}'` : '';
  }

  private built(): { kernel: Tensor; bias: Tensor } {
    if (!this.kernel || !this.bias) throw new ConfigError(`conv2d '${this.name}' is used before it was built`);
    return { kernel: this.kernel, bias: this.bias };
  }
}

export interface MaxPooling2DOptions {
  /** Window [rows, columns], or one number for a square window. Default 2. */
  poolSize?: Size2d;
  /** Default: the pool size. */
  strides?: Size2d;
  /** Default 'valid'. */
  padding?: Padding;
  inputShape?: number[];
  name?: string;
}

export class MaxPooling2D implements Layer {
  readonly className = 'MaxPooling2D';
  name: string;
  inputShape?: number[];
  readonly poolSize: [number, number];
  readonly strides: [number, number];
  readonly padding: Padding;

  constructor(options: MaxPooling2DOptions = {}) {
    this.name = options.name ?? '';
    const label = `max pooling${this.name ? ` '${this.name}'` : ''}`;
    this.poolSize = checkSize(`${label}: pool size`, options.poolSize ?? 2);
    this.strides = checkSize(`${label}: strides`, options.strides ?? this.poolSize);
    this.padding = checkPadding(label, options.padding ?? 'valid');
    this.inputShape = options.inputShape;
  }

  build(inputShape: number[]): number[] {
    const outputShape = this.outputShape(inputShape);
    this.inputShape = inputShape;
    return outputShape;
  }

  outputShape(inputShape: readonly number[]): number[] {
    const label = `max pooling${this.name ? ` '${this.name}'` : ''}`;
    const [height, width] = windowOutputSize(label, inputShape, this.poolSize, this.strides, this.padding);
    return [height, width, inputShape[2]];
  }

  call(x: Tensor): Tensor {
    return maxPool2dOp(x, { poolSize: this.poolSize, strides: this.strides, padding: this.padding });
  }

  parameters(): Parameter[] {
    return [];
  }

  weightShapes(): WeightShape[] {
    return [];
  }

  config(): Record<string, unknown> {
    return {
      name: this.name,
      trainable: true,
      dtype: 'float32',
      pool_size: [...this.poolSize],
      padding: this.padding,
      strides: [...this.strides],
      data_format: 'channels_last',
    };
  }

  describe(): string {
    const [rows, cols] = this.strides;
    const strides = rows === this.poolSize[0] && cols === this.poolSize[1] ? '' : rows === cols ? ` stride ${rows}` : ` stride ${rows}×${cols}`;
    return `maxpool ${sizeText(this.poolSize)}${strides}${this.padding === 'same' ? ' same' : ''}`;
  }
}

export interface ReshapeOptions {
  /** Per-sample shape; one entry may be -1 (whatever makes the size match). */
  targetShape: number[];
  inputShape?: number[];
  name?: string;
}

export class Reshape implements Layer {
  readonly className = 'Reshape';
  name: string;
  inputShape?: number[];
  readonly targetShape: number[];
  private outShape?: number[];

  constructor(options: ReshapeOptions) {
    this.name = options.name ?? '';
    const target = options.targetShape;
    const unknowns = Array.isArray(target) ? target.filter((d) => d === -1).length : 0;
    if (!Array.isArray(target) || target.length === 0 || unknowns > 1 || !target.every((d) => d === -1 || (Number.isInteger(d) && d > 0))) {
      throw new ConfigError(`reshape${this.name ? ` '${this.name}'` : ''}: target shape ${JSON.stringify(target)} must be positive sizes, at most one of them -1`);
    }
    this.targetShape = [...target];
    this.inputShape = options.inputShape;
  }

  build(inputShape: number[]): number[] {
    this.outShape = this.outputShape(inputShape);
    this.inputShape = inputShape;
    return this.outShape;
  }

  outputShape(inputShape: readonly number[]): number[] {
    const size = sizeOf(inputShape);
    const known = this.targetShape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const shape = this.targetShape.map((d) => (d === -1 ? size / known : d));
    if (sizeOf(shape.map((d) => (Number.isInteger(d) ? d : 0))) !== size) {
      throw new ShapeError(`reshape${this.name ? ` '${this.name}'` : ''}: cannot reshape ${formatShape(inputShape)} (${size} values) to ${formatShape(this.targetShape)}`);
    }
    return shape;
  }

  call(x: Tensor, _context?: CallContext): Tensor {
    if (!this.outShape) throw new ConfigError(`reshape '${this.name}' is used before it was built`);
    return reshapeOp(x, [x.shape[0], ...this.outShape]);
  }

  parameters(): Parameter[] {
    return [];
  }

  weightShapes(): WeightShape[] {
    return [];
  }

  config(): Record<string, unknown> {
    return { name: this.name, trainable: true, dtype: 'float32', target_shape: [...this.targetShape] };
  }

  describe(): string {
    return `reshape ${(this.outShape ?? this.targetShape).join('×')}`;
  }
}

export const conv2d = (options: Conv2DOptions): Conv2D => new Conv2D(options);
export const maxPooling2d = (options?: MaxPooling2DOptions): MaxPooling2D => new MaxPooling2D(options);
export const reshape = (options: ReshapeOptions): Reshape => new Reshape(options);

function checkCount(what: string, value: unknown): void {
  if (!Number.isInteger(value) || (value as number) < 1) throw new ConfigError(`${what} must be a positive integer, got ${String(value)}`);
}

function checkSize(what: string, value: Size2d): [number, number] {
  const size = typeof value === 'number' ? [value, value] : Array.isArray(value) && value.length === 2 ? [value[0], value[1]] : undefined;
  if (!size || !size.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ConfigError(`${what} must be a positive integer or two of them, got ${JSON.stringify(value)}`);
  }
  return size as [number, number];
}

function checkPadding(what: string, value: string): Padding {
  if (value !== 'valid' && value !== 'same') throw new ConfigError(`${what}: padding must be 'valid' or 'same', got '${String(value)}'`);
  return value;
}

function sizeText([rows, cols]: readonly [number, number]): string {
  return `${rows}×${cols}`;
}

function stridesText(strides: readonly [number, number]): string {
  if (strides[0] === 1 && strides[1] === 1) return '';
  return strides[0] === strides[1] ? ` stride ${strides[0]}` : ` stride ${strides[0]}×${strides[1]}`;
}

