/**
 * Reverse-mode automatic differentiation, define-by-run.
 *
 * Ops record, on their output, which inputs they read and how to send a gradient back
 * (`Tensor.creator`). `backward(loss)` orders the recorded graph so every tensor comes after
 * the tensors it was computed from, seeds d(loss)/d(loss) = 1, and walks that order backwards:
 * each op adds d(loss)/d(input) = d(loss)/d(output) · d(output)/d(input) into its inputs' `.grad`.
 * A tensor used twice receives the sum of both contributions (the multivariate chain rule).
 */
import { kernels } from './backend/index.js';
import type { Storage } from './backend/kernels.js';
import { ShapeError, formatShape } from './errors.js';
import { Tensor, sameShape } from './tensor.js';

let recording = true;

/** Whether ops currently record their inputs for backward. */
export function isRecording(): boolean {
  return recording;
}

/** Run `fn` without recording a graph (inference: predict, evaluate). */
export function noGrad<T>(fn: () => T): T {
  const before = recording;
  recording = false;
  try {
    return fn();
  } finally {
    recording = before;
  }
}

/**
 * Attach `backward` to `output` if any input needs a gradient. Ops call this last:
 *   return record('relu', [x], out, (dy) => { ... });
 */
export function record(op: string, inputs: readonly Tensor[], output: Tensor, backward: (outputGrad: Tensor) => void): Tensor {
  if (recording && inputs.some((input) => input.requiresGrad)) {
    output.requiresGrad = true;
    output.creator = { op, inputs, backward };
  }
  return output;
}

/**
 * Add a gradient into `input.grad`, computed by `compute(out, accumulate)`.
 * If the input has no gradient yet, `out` is a fresh zeroed buffer and `accumulate` is false
 * (not zeroed when `overwrites`: compute then writes every element of `out` itself).
 * Otherwise: kernels that can add in place (`canAccumulate`) write straight into the existing
 * gradient with `accumulate` true; the rest compute into a temporary that is then added.
 * Inputs that do not require a gradient are skipped entirely.
 */
export function addGrad(
  input: Tensor, compute: (out: Storage, accumulate: boolean) => void, canAccumulate = false, overwrites = false,
): void {
  if (!input.requiresGrad) return;
  if (!input.grad) {
    input.grad = overwrites ? Tensor.empty(input.shape) : Tensor.zeros(input.shape);
    compute(input.grad.storage, false);
  } else if (canAccumulate) {
    compute(input.grad.storage, true);
  } else {
    const temporary = Tensor.zeros(input.shape);
    compute(temporary.storage, false);
    kernels().addInto(temporary.storage, input.grad.storage);
    temporary.dispose();
  }
}

/** Tensors reachable from `root`, each after all of its inputs (depth-first, iterative). */
export function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: Array<{ tensor: Tensor; expanded: boolean }> = [{ tensor: root, expanded: false }];
  while (stack.length > 0) {
    const top = stack.pop()!;
    if (top.expanded) {
      order.push(top.tensor);
      continue;
    }
    if (visited.has(top.tensor)) continue;
    visited.add(top.tensor);
    stack.push({ tensor: top.tensor, expanded: true });
    for (const input of top.tensor.creator?.inputs ?? []) {
      if (!visited.has(input)) stack.push({ tensor: input, expanded: false });
    }
  }
  return order;
}

/** Back-propagate from a one-element tensor (the loss). */
export function backward(root: Tensor): void {
  if (root.size !== 1) {
    throw new ShapeError(`backward() starts from a one-element loss, got shape ${formatShape(root.shape)}`);
  }
  if (!root.requiresGrad) return;
  const order = topologicalOrder(root);
  root.grad ??= Tensor.zeros(root.shape);
  kernels().fill(root.grad.storage, 1);
  for (let i = order.length - 1; i >= 0; i--) {
    const tensor = order[i];
    if (!tensor.creator || !tensor.grad) continue;
    if (!sameShape(tensor.grad.shape, tensor.shape)) {
      throw new ShapeError(`gradient of ${tensor.creator.op} has shape ${formatShape(tensor.grad.shape)}, expected ${formatShape(tensor.shape)}`);
    }
    tensor.creator.backward(tensor.grad);
  }
}
