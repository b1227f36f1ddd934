/**
 * One training step, small enough to read every number: two 4×4 images, a hidden layer of 4
 * ReLU units, 3 classes, softmax cross-entropy, one Adam update with Keras's defaults.
 *
 * The step runs on the engine itself — the same layers, initialiser, ops, autodiff and Adam that
 * `fit` uses — and `explainOneStep` returns every intermediate with its shape and the formula that
 * produced it. docs/learn/one-step.md walks through the same step with the shapes of the real model.
 */
import { noGrad } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import { dense, flatten } from '../nn/layers.js';
import { sequential } from '../nn/model.js';
import { sparseCategoricalCrossentropy } from '../ops/cross-entropy.js';
import { dense as denseOp } from '../ops/dense.js';
import { relu } from '../ops/relu.js';
import { flatten as flattenOp } from '../ops/reshape.js';
import { softmax } from '../ops/softmax.js';
import type { Parameter } from '../nn/layers.js';
import type { Sequential } from '../nn/model.js';
import { Adam } from '../optimizers/adam.js';
import { Tensor, scope } from '../tensor.js';
import { ConfigError } from '../errors.js';

/**
 * Two training images of the Fashion-MNIST fixture (test/fixtures/fashion-mnist, training images
 * 1 and 16, counting from 0: the first T-shirt/top and the first Trouser), shrunk from 28×28 to
 * 4×4: each pixel is the mean of a 7×7 block, rounded. Bytes, 0 = black, 255 = white.
 */
export const EXPLAIN_EXAMPLE = Object.freeze({
  rows: 4,
  cols: 4,
  pixels: Object.freeze([
    46, 161, 160, 82, 62, 175, 171, 89, 0, 175, 208, 12, 0, 169, 199, 17, // T-shirt/top
    0, 127, 184, 0, 0, 129, 157, 0, 0, 120, 127, 0, 0, 108, 111, 0, // Trouser
  ]),
  labels: Object.freeze([0, 1]),
  classNames: Object.freeze(['T-shirt/top', 'Trouser', 'Sneaker']),
  /** Where the images come from in the fixture, for the test that re-derives them. */
  fixtureIndices: Object.freeze([1, 16]),
  hiddenUnits: 4,
  seed: 13,
});

export type ExplainPhase = 'data' | 'forward' | 'loss' | 'backward' | 'update';

/** One labelled value of the step. */
export interface ExplainStep {
  /** Identifier, e.g. 'dW1'. */
  key: string;
  phase: ExplainPhase;
  /** How it is computed, e.g. 'dW1 = xᵀ · dz1'. */
  formula: string;
  /** One sentence on what it means. */
  note: string;
  /** [] for a single number. */
  shape: number[];
  /** Row-major. */
  values: number[];
  /**
   * How 4-D values are printed: 'images' [n, h, w, c] as one h×w map per image and channel,
   * 'kernels' [kh, kw, in, out] as one kh×kw map per input and output channel.
   */
  layout?: 'images' | 'kernels';
}

interface CommonSettings {
  seed: number;
  classNames: string[];
  labels: number[];
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  backend: string;
  precision: string;
}

/** The dense network's step (explainOneStep). */
export interface MlpSettings extends CommonSettings {
  model?: 'mlp';
  hiddenUnits: number;
}

/** The convolutional network's step (explainCnnStep in explain-cnn.ts). */
export interface CnnSettings extends CommonSettings {
  model: 'cnn';
  filters: number;
  kernelSize: number;
  poolSize: number;
}

export interface Explanation {
  settings: MlpSettings | CnnSettings;
  steps: ExplainStep[];
}

/** The starting values explainOneStep may be given in place of the example's (the web app's Learn page edits them). */
export interface ExplainOptions {
  /** Seed of the starting weights (Glorot uniform). */
  seed?: number;
  /** The two images' 2×16 pixels, bytes 0–255, in place of EXPLAIN_EXAMPLE.pixels. */
  pixels?: readonly number[];
  /** Starting weights in place of the seeded ones (row-major; any of the four). */
  weights?: Partial<Record<ExplainWeight, readonly number[]>>;
}

export type ExplainWeight = 'W1' | 'b1' | 'W2' | 'b2';

/** Run one training step on the fixed example (or the given pixels and weights) and record everything it computes. */
export function explainOneStep({ seed = EXPLAIN_EXAMPLE.seed, pixels = EXPLAIN_EXAMPLE.pixels, weights = {} }: ExplainOptions = {}): Explanation {
  const { rows, cols, labels, classNames, hiddenUnits } = EXPLAIN_EXAMPLE;
  if (pixels.length !== labels.length * rows * cols || pixels.some((p) => !(p >= 0 && p <= 255))) {
    throw new ConfigError(`explain: pixels must be ${labels.length * rows * cols} values from 0 to 255`);
  }
  const n = labels.length;
  const inputs = rows * cols;
  const classes = classNames.length;
  const hidden = dense({ units: hiddenUnits, activation: 'relu' });
  const output = dense({ units: classes, activation: 'softmax' });
  // Built exactly as a model for training is: glorot-uniform kernels from the seeded generator, zero biases.
  const model = sequential([flatten({ inputShape: [rows, cols] }), hidden, output], { seed });
  const optimizer = new Adam();
  const { learningRate: lr, beta1, beta2, epsilon } = optimizer;
  const [W1, b1, W2, b2] = [hidden.kernel!, hidden.bias!, output.kernel!, output.bias!];
  const parameters = model.parameters();
  for (const [name, tensor] of [['W1', W1], ['b1', b1], ['W2', W2], ['b2', b2]] as const) {
    const given = weights[name];
    if (given === undefined) continue;
    if (given.length !== tensor.size || given.some((w) => !Number.isFinite(w))) throw new ConfigError(`explain: ${name} must be ${tensor.size} finite numbers`);
    tensor.data.set(given);
  }
  const before = { W1: W1.toArray(), b1: b1.toArray(), W2: W2.toArray(), b2: b2.toArray() };

  const steps: ExplainStep[] = [];
  const add = stepRecorder(steps);
  const limit = (fanIn: number, fanOut: number) => Math.sqrt(6 / (fanIn + fanOut)).toFixed(3);

  add('pixels', 'data', 'pixels', `${n} images of ${rows}×${cols} pixels (0 = black, 255 = white), left a ${classNames[labels[0]]}, right a ${classNames[labels[1]]}: real Fashion-MNIST photos shrunk by averaging 7×7 blocks`, [n, rows, cols], pixels);
  add('y', 'data', 'y', `the right answer for each image, as a class number: ${classNames.map((name, i) => `${i} = ${name}`).join(', ')}`, [n], labels);

  const loss = scope(() => {
    // The same scaling fit applies to byte images (pixels · 1/255), then flatten.
    const images = Tensor.from(pixels.map((p) => p * (1 / 255)), [n, rows, cols]);
    const x = flattenOp(images);
    add('x', 'forward', 'x = flatten(pixels / 255)', `each row is one image: its ${inputs} pixels scaled to [0, 1] and laid out row after row`, x.shape, x.data);
    add('W1', 'forward', `W1 ~ U(−${limit(inputs, hiddenUnits)}, ${limit(inputs, hiddenUnits)})`, `hidden-layer weights (row k: pixel k, column j: hidden unit j), drawn uniformly at random between ±√(6/(${inputs}+${hiddenUnits})) (Glorot uniform)`, W1.shape, before.W1);
    add('b1', 'forward', 'b1 = 0', 'hidden-layer biases, one per unit; they start at zero', b1.shape, before.b1);
    const z1 = denseOp(x, W1, b1, 'linear');
    add('z1', 'forward', 'z1 = x · W1 + b1', `z1[i,j] = Σₖ x[i,k]·W1[k,j] + b1[j]: the weighted sum of image i's ${inputs} pixels that unit j computes`, z1.shape, z1.data);
    const h1 = relu(z1);
    add('h1', 'forward', 'h1 = relu(z1) = max(z1, 0)', 'the hidden activations: negative sums become 0 (that unit is "off" for that image)', h1.shape, h1.data);
    add('W2', 'forward', `W2 ~ U(−${limit(hiddenUnits, classes)}, ${limit(hiddenUnits, classes)})`, `output-layer weights (row j: hidden unit j, column c: class c), drawn uniformly at random between ±√(6/(${hiddenUnits}+${classes}))`, W2.shape, before.W2);
    add('b2', 'forward', 'b2 = 0', 'output-layer biases, one per class', b2.shape, before.b2);
    const z2 = denseOp(h1, W2, b2, 'linear');
    add('z2', 'forward', 'z2 = h1 · W2 + b2', 'the logits: one score per class for each image; higher means "more likely"', z2.shape, z2.data);
    const p = softmax(z2);
    add('p', 'forward', 'p = softmax(z2), p[i,c] = exp(z2[i,c]) / Σ_c′ exp(z2[i,c′])', 'scores turned into probabilities: positive, and each row sums to 1', p.shape, p.data);

    const target = Tensor.from(labels, [n]);
    const lossTensor = sparseCategoricalCrossentropy(p, target);
    add('loss', 'loss', `L = −(1/N) Σᵢ log p[i, y[i]], N = ${n}`, 'cross-entropy: the average over the images of minus the (natural) log of the probability given to the right class; 0 would be perfect', [], [lossTensor.item()]);

    lossTensor.backward();
    const onehot = Tensor.zeros([n, classes]);
    labels.forEach((label, i) => (onehot.data[i * classes + label] = 1));
    add('onehot', 'backward', 'onehot[i,c] = 1 if c = y[i], else 0', 'the right answers as rows of probabilities: all of the probability on the right class', onehot.shape, onehot.data);
    add('dz2', 'backward', 'dz2 = ∂L/∂z2 = (p − onehot) / N', 'softmax and cross-entropy differentiated together: each score is pushed down by its probability, and the right class is pulled up by 1, averaged over the batch', z2.shape, z2.grad!.data);
    add('dW2', 'backward', 'dW2 = h1ᵀ · dz2', 'dW2[j,c] = Σᵢ h1[i,j]·dz2[i,c]: each weight\'s gradient is its input times the gradient at its output, summed over the images', W2.shape, W2.grad!.data);
    add('db2', 'backward', 'db2 = Σᵢ dz2[i, :]', 'a bias is added to every row, so its gradient is the column sum of dz2', b2.shape, b2.grad!.data);
    add('dh1', 'backward', 'dh1 = dz2 · W2ᵀ', 'dh1[i,j] = Σ_c dz2[i,c]·W2[j,c]: how the loss changes with each hidden activation, collected from every class it feeds', h1.shape, h1.grad!.data);
    add('dz1', 'backward', 'dz1 = dh1 ∘ [z1 > 0]', 'ReLU passes the gradient where the unit was on and blocks it (0) where it was off', z1.shape, z1.grad!.data);
    add('dW1', 'backward', 'dW1 = xᵀ · dz1', 'dW1[k,j] = Σᵢ x[i,k]·dz1[i,j]: a pixel that is black (0) in every image, or a unit that was off for every image, gives its weight no gradient', W1.shape, W1.grad!.data);
    add('db1', 'backward', 'db1 = Σᵢ dz1[i, :]', 'column sums of dz1', b1.shape, b1.grad!.data);

    optimizer.step(parameters);
    for (const { tensor } of parameters) tensor.grad = undefined;
    return lossTensor.item();
  });

  explainAdamUpdate(optimizer, parameters, ['W1', 'b1', 'W2', 'b2'], add);
  explainLossAfter(model, pixels, labels, [n, rows, cols], loss, add);

  model.dispose();
  return {
    settings: {
      seed,
      classNames: [...classNames],
      labels: [...labels],
      hiddenUnits,
      learningRate: lr,
      beta1,
      beta2,
      epsilon,
      backend: kernels().name,
      precision: kernels().precision,
    },
    steps,
  };
}

/** An AddStep that appends to `steps`. */
export function stepRecorder(steps: ExplainStep[]): AddStep {
  return (key, phase, formula, note, shape, values, layout) => {
    steps.push({ key, phase, formula, note, shape: [...shape], values: Array.from(values), ...(layout ? { layout } : {}) });
  };
}

/** Records one value of a step (see ExplainStep). */
export type AddStep = (key: string, phase: ExplainPhase, formula: string, note: string, shape: readonly number[], values: ArrayLike<number>, layout?: ExplainStep['layout']) => void;

/** The update phase: Adam's lr_t, then m, v, the step and the new value of each parameter (named `names`). */
export function explainAdamUpdate(optimizer: Adam, parameters: Parameter[], names: readonly string[], add: AddStep): void {
  const { learningRate: lr, beta1, beta2, epsilon } = optimizer;
  const t = optimizer.iterations;
  const lrT = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
  add('lr_t', 'update', `lr_t = lr · √(1 − β2ᵗ) / (1 − β1ᵗ), t = ${t}`, `Adam's step size (lr = ${lr}, β1 = ${beta1}, β2 = ${beta2}), corrected for m and v starting at 0; see docs/learn/gradients.md §9`, [], [lrT]);
  const state = optimizer.getState(parameters);
  names.forEach((name, i) => {
    const tensor = parameters[i].tensor;
    const m = state.slots.m[i];
    const v = state.slots.v[i];
    const g = `d${name}`;
    const layout = tensor.rank === 4 ? 'kernels' : undefined;
    add(`m_${name}`, 'update', `m_${name} = β1·m_${name} + (1 − β1)·${g}`, `running average of ${name}'s gradient; it starts at 0, so after this first step m_${name} = 0.1·${g}`, tensor.shape, m, layout);
    add(`v_${name}`, 'update', `v_${name} = β2·v_${name} + (1 − β2)·${g}²`, `running average of the gradient squared (element by element); now 0.001·${g}²`, tensor.shape, v, layout);
    const delta = m.map((mj, j) => (lrT * mj) / (Math.sqrt(v[j]) + epsilon));
    add(`step_${name}`, 'update', `Δ${name} = lr_t · m_${name} / (√v_${name} + ε)`, `how far each weight moves (ε = ${epsilon} keeps the division safe where v is 0); on this first step about lr = ${lr} in the direction of ${g}'s sign, and 0 where ${g} was 0`, tensor.shape, delta, layout);
    add(`${name}_new`, 'update', `${name} ← ${name} − Δ${name}`, 'the updated weights: each one moved against its gradient', tensor.shape, tensor.data, layout);
  });
}

/** The last value of a step: the loss of the same images with the updated weights. */
export function explainLossAfter(model: Sequential, pixels: readonly number[], labels: readonly number[], shape: number[], loss: number, add: AddStep): void {
  const lossAfter = scope(() => noGrad(() => {
    const images = Tensor.from(pixels.map((p) => p * (1 / 255)), shape);
    return sparseCategoricalCrossentropy(model.call(images, false), Tensor.from(labels, [labels.length])).item();
  }));
  add('loss_after', 'update', 'L with the updated weights', `the same two images scored again: the loss went ${lossAfter < loss ? 'down' : 'up'} from ${loss.toFixed(4)}`, [], [lossAfter]);
}

const PHASE_TITLES: Record<ExplainPhase, string> = {
  data: 'The data',
  forward: 'Forward pass: from pixels to probabilities',
  loss: 'Loss: how wrong the probabilities are',
  backward: 'Backward pass: the gradient of the loss with respect to everything (chain rule, last layer first)',
  update: 'Update: Adam moves every weight a small step against its gradient',
};

/** The walk-through as text: per phase, each value with its formula, shape, meaning and numbers. */
export function formatExplanation(explanation: Explanation): string {
  const { settings, steps } = explanation;
  const kernelsUsed = `Starting weights from seed ${settings.seed}; computed by the ${settings.backend === 'ts' ? 'reference TypeScript' : 'WebAssembly'} kernels in ${settings.precision}.`;
  const pixels = steps.find((s) => s.key === 'pixels')!.shape;
  const out: string[] = settings.model === 'cnn'
    ? [
      `Every number of one training step of a small convolutional network: ${settings.labels.length} images of ${pixels[1]}×${pixels[2]} pixels → ${settings.filters} filters of ${settings.kernelSize}×${settings.kernelSize} with ReLU → ${settings.poolSize}×${settings.poolSize} max pooling → ${settings.classNames.length} classes, one Adam update.`,
      kernelsUsed,
      'Images are [image, row, column, channel]; the maps of each image and channel are printed side by side (image 0 channel 0 | image 0 channel 1 | image 1 ...). How each gradient comes about: docs/learn/gradients.md, "Convolution" and "Max pooling".',
    ]
    : [
      `Every number of one training step: ${settings.labels.length} images, ${steps.find((s) => s.key === 'x')!.shape[1]} pixels each → ${settings.hiddenUnits} hidden ReLU units → ${settings.classNames.length} classes, one Adam update.`,
      kernelsUsed,
      'Shapes are [rows, columns]; in the batch, row i is image i. The same step for the full model: docs/learn/one-step.md.',
    ];
  let phase: ExplainPhase | undefined;
  for (const step of steps) {
    if (step.phase !== phase) {
      phase = step.phase;
      out.push('', `== ${PHASE_TITLES[phase]} ==`);
    }
    out.push('', `${step.formula}    shape ${formatShapeOf(step.shape)}`, `  ${step.note}`);
    out.push(...formatValues(step).map((line) => `    ${line}`));
  }
  return out.join('\n');
}

function formatShapeOf(shape: number[]): string {
  return shape.length === 0 ? '[] (a single number)' : `[${shape.join(', ')}]`;
}

const INTEGER_STEPS = new Set(['pixels', 'y', 'onehot']);
const MAX_COLUMNS = 8;

/**
 * Numbers of one step as aligned rows; 3-D values (images) are printed side by side, and so are
 * the 2-D maps of 4-D values (see ExplainStep.layout).
 */
export function formatValues(step: Pick<ExplainStep, 'key' | 'shape' | 'values' | 'layout'>): string[] {
  const { shape, values } = step;
  if (shape.length === 4) return formatValues({ key: step.key, ...asMaps(shape, values, step.layout ?? 'images') });
  const text = formatNumbers(values, INTEGER_STEPS.has(step.key));
  const width = Math.max(...text.map((t) => t.length));
  const cell = (i: number) => text[i].padStart(width);
  if (shape.length === 0) return [text[0]];
  if (shape.length === 1) return [values.map((_, i) => cell(i)).join('  ')];
  if (shape.length === 2) {
    const [r, c] = shape;
    const rowsOf = (from: number, to: number) =>
      Array.from({ length: r }, (_, i) => Array.from({ length: to - from }, (_, j) => cell(i * c + from + j)).join('  '));
    if (c <= MAX_COLUMNS) return rowsOf(0, c);
    // Wide matrices in blocks of columns, so lines fit a terminal.
    const lines: string[] = [];
    for (let from = 0; from < c; from += MAX_COLUMNS) {
      const to = Math.min(c, from + MAX_COLUMNS);
      lines.push(`(columns ${from}–${to - 1})`, ...rowsOf(from, to));
    }
    return lines;
  }
  const [count, r, c] = shape;
  return Array.from({ length: r }, (_, i) =>
    Array.from({ length: count }, (_, s) => Array.from({ length: c }, (_, j) => cell(s * r * c + i * c + j)).join('  ')).join('    |    '),
  );
}

/**
 * 4-D values as a stack of 2-D maps [maps, rows, cols]: for 'images' [n, h, w, c] one map per
 * image and channel (n-major), for 'kernels' [kh, kw, in, out] one per input and output channel.
 */
function asMaps(shape: number[], values: number[], layout: 'images' | 'kernels'): { shape: number[]; values: number[] } {
  const [a, h, w, c] = layout === 'images' ? shape : [1, shape[0], shape[1], shape[2] * shape[3]];
  const maps: number[] = [];
  for (let n = 0; n < a; n++) {
    for (let k = 0; k < c; k++) {
      for (let r = 0; r < h; r++) for (let col = 0; col < w; col++) maps.push(values[((n * h + r) * w + col) * c + k]);
    }
  }
  return { shape: [a * c, h, w], values: maps };
}

/**
 * One format per matrix so columns line up: integers as they are; otherwise 4 decimals, or
 * 3-significant-digit scientific notation when the largest value is below 0.01 (gradients, Adam's v).
 */
export function formatNumbers(values: readonly number[], integers = false): string[] {
  if (integers) return values.map((v) => String(v));
  const largest = Math.max(0, ...values.map(Math.abs));
  const scientific = largest > 0 && (largest < 0.01 || largest >= 1e4);
  return values.map((v) => (v === 0 ? '0' : scientific ? v.toExponential(3) : v.toFixed(4)));
}
