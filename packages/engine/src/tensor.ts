/**
 * Tensor: a shape, a backend-owned buffer of floats, an optional gradient, and the op that made it.
 *
 * Memory: tensors created inside `scope(fn)` are released when it returns (except what it
 * returns), which is how a training step gives every temporary buffer back to the backend's
 * free lists. Long-lived tensors (weights, optimizer state) are created outside any scope.
 */
import { kernels } from './backend/index.js';
import type { FloatArray, Storage } from './backend/kernels.js';
import { backward as backwardFrom } from './autodiff.js';
import { ShapeError, formatShape } from './errors.js';

/** How an op's output remembers its inputs and how to send its gradient back to them. */
export interface Creator {
  /** The op's name, e.g. 'matmul'. */
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Given d(loss)/d(output), add d(loss)/d(input) into each input that requires a gradient. */
  backward(outputGrad: Tensor): void;
}

export class Tensor {
  /** d(loss)/d(this), filled in by `backward()`. */
  grad: Tensor | undefined;
  /** Set on op outputs while gradients are being recorded. */
  creator: Creator | undefined;
  private disposed = false;

  constructor(
    readonly shape: readonly number[],
    readonly storage: Storage,
    /** Whether gradients flow to this tensor (true for weights; false for data). */
    public requiresGrad = false,
    /** False for views that share another tensor's buffer (reshape): they never free it. */
    private readonly ownsStorage = true,
  ) {
    if (storage.length !== sizeOf(shape)) {
      throw new ShapeError(`shape ${formatShape(shape)} needs ${sizeOf(shape)} values, got ${storage.length}`);
    }
    trackInScope(this);
  }

  /** A tensor of zeros. */
  static zeros(shape: readonly number[], requiresGrad = false): Tensor {
    return new Tensor(shape, kernels().alloc(sizeOf(shape)), requiresGrad);
  }

  /**
   * A tensor whose values are left as the memory held them: for an op's output that its kernel
   * writes entirely (it saves zeroing the buffer first).
   */
  static empty(shape: readonly number[]): Tensor {
    return new Tensor(shape, kernels().alloc(sizeOf(shape), false));
  }

  /** The same values under another shape of the same size, sharing the buffer. */
  static view(source: Tensor, shape: readonly number[]): Tensor {
    if (sizeOf(shape) !== source.size) {
      throw new ShapeError(`cannot view ${formatShape(source.shape)} as ${formatShape(shape)}: sizes differ`);
    }
    return new Tensor(shape, source.storage, false, false);
  }

  /** A tensor holding a copy of `values` (nested arrays are flattened row-major). */
  static from(values: ArrayLike<number> | NestedArray, shape?: readonly number[], requiresGrad = false): Tensor {
    const flat = isNested(values) ? flatten(values) : values;
    const inferred = shape ?? (isNested(values) ? shapeOf(values) : [flat.length]);
    const tensor = Tensor.zeros(inferred, requiresGrad);
    if (flat.length !== tensor.size) {
      throw new ShapeError(`shape ${formatShape(inferred)} needs ${tensor.size} values, got ${flat.length}`);
    }
    tensor.data.set(flat);
    return tensor;
  }

  get size(): number {
    return this.storage.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** A live view of the values (read it again after allocating: WASM memory may have moved). */
  get data(): FloatArray {
    return this.storage.data;
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  /** The single value of a one-element tensor, e.g. a loss. */
  item(): number {
    if (this.size !== 1) throw new ShapeError(`item() needs a one-element tensor, got shape ${formatShape(this.shape)}`);
    return this.data[0];
  }

  /** Back-propagate from this tensor (normally a scalar loss): see autodiff.ts. */
  backward(): void {
    backwardFrom(this);
  }

  /** Give the buffer back to the backend. Safe to call twice. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.ownsStorage) kernels().free(this.storage);
    this.grad?.dispose();
    this.grad = undefined;
    this.creator = undefined;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }
}

export type NestedArray = number[] | NestedArray[];

export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) {
    if (!Number.isInteger(dim) || dim < 0) throw new ShapeError(`invalid shape ${formatShape(shape)}`);
    size *= dim;
  }
  return size;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

function isNested(values: ArrayLike<number> | NestedArray): values is NestedArray {
  return Array.isArray(values) && values.length > 0 && Array.isArray(values[0]);
}

function shapeOf(values: NestedArray): number[] {
  const shape: number[] = [];
  let level: NestedArray | number = values;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}

function flatten(values: NestedArray): number[] {
  return (values as unknown[]).flat(Infinity) as number[];
}

// ---- scopes ------------------------------------------------------------------------------

const scopes: Tensor[][] = [];

function trackInScope(tensor: Tensor): void {
  scopes[scopes.length - 1]?.push(tensor);
}

/**
 * Run `fn`, then dispose every tensor it created except those reachable from its result
 * (a Tensor, or an array/object of Tensors) and those marked with `keep`.
 */
export function scope<T>(fn: () => T): T {
  scopes.push([]);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    for (const tensor of scopes.pop()!) tensor.dispose();
    throw error;
  }
  const created = scopes.pop()!;
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  for (const tensor of created) {
    if (survivors.has(tensor) || kept.has(tensor)) trackInScope(tensor);
    else tensor.dispose();
  }
  return result;
}

const kept = new WeakSet<Tensor>();

/** Keep a tensor alive past the scope that created it (e.g. a weight created during a step). */
export function keep<T extends Tensor>(tensor: T): T {
  kept.add(tensor);
  return tensor;
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const item of value) collectTensors(item, into);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) collectTensors(item, into);
  }
}
