/**
 * Sequential: a stack of layers with Keras's compile / fit / evaluate / predict / summary.
 *
 * One training step (see runStep): copy a batch in, run the layers forward, compute the loss,
 * `loss.backward()` to fill every weight's `.grad`, let the optimizer update the weights, and
 * release every temporary buffer. Input buffers are kept per batch size and reused, so after the
 * first step the backend hands out the same memory again and again. `fit` records its second
 * step's kernel calls and replays them for the batches after it (recordTrainStep, replayStep;
 * see step-recording.ts), unless compiled with runEagerly.
 */
import { noGrad } from '../autodiff.js';
import { kernels } from '../backend/index.js';
import type { ByteStorage, Storage } from '../backend/kernels.js';
import { ConfigError, ShapeError, formatShape } from '../errors.js';
import { meanSquaredError } from '../ops/mean-squared-error.js';
import { sparseCategoricalCrossentropy } from '../ops/cross-entropy.js';
import { Adam } from '../optimizers/adam.js';
import type { Optimizer } from '../optimizers/optimizer.js';
import { Sgd } from '../optimizers/sgd.js';
import { Random } from '../random.js';
import { reshape } from '../ops/reshape.js';
import { recordStep, unrecorded, type StepRecording } from '../step-recording.js';
import { Tensor, keep, sameShape, scope, sizeOf } from '../tensor.js';
import type { BatchLogs, Callback, EpochLogs, StepView } from './callbacks.js';
import { Conv2D, MaxPooling2D, Reshape } from './conv-layers.js';
import { Dense, Dropout, Flatten, type Layer, type Parameter, type WeightShape } from './layers.js';
import { metricFrom, type Metric, type MetricSpec } from './metrics.js';
import { ProgbarLogger } from './progress.js';

/** Images kept as bytes (0–255) and scaled to [0, 1] one batch at a time. */
export interface ByteImages {
  images: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** Model inputs: a float tensor [samples, ...], or byte images. */
export type Inputs = Tensor | ByteImages;
/** Targets: one class index per sample (sparse cross-entropy), or a tensor (mean squared error). */
export type Targets = ArrayLike<number> | Tensor;

export type LossFunction = (predictions: Tensor, targets: Tensor) => Tensor;
export type LossName = 'sparseCategoricalCrossentropy' | 'sparse_categorical_crossentropy' | 'meanSquaredError' | 'mse';

export interface CompileOptions {
  optimizer: Optimizer | 'adam' | 'sgd';
  loss: LossName | { name: string; fn: LossFunction };
  /** 'accuracy', 'sparse_top_k_categorical_accuracy' (k 5), or metric objects such as sparseTopKCategoricalAccuracy({ k: 3 }). */
  metrics?: MetricSpec[];
  /**
   * Run every training step the usual way, op by op (Keras's run_eagerly). By default `fit`
   * records one step's kernel calls and replays them for the batches after it (see
   * step-recording.ts), with the same results.
   */
  runEagerly?: boolean;
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  /** Reseeds the model's generator before training (shuffling and dropout). */
  seed?: number;
  /** Fraction of samples held out for validation: the last ones, taken before shuffling (Keras). */
  validationSplit?: number;
  validationData?: [Inputs, Targets];
  callbacks?: Callback[];
  /**
   * Progress, as Keras prints it: 0 none (the default here), 1 a progress bar per epoch on a
   * terminal (one line per epoch elsewhere), 2 one line per epoch. The same lines as `descent train`.
   */
  verbose?: 0 | 1 | 2;
  /** Epoch to start counting from (Keras's initial_epoch), e.g. when resuming. */
  initialEpoch?: number;
  /** Continue an interrupted epoch exactly where it stopped (from `History.stoppedAt`). */
  resume?: TrainingPosition;
}

/** Where training stopped inside an epoch, with everything needed to continue it exactly. */
export interface TrainingPosition {
  epoch: number;
  /** Number of batches of `epoch` already applied. */
  batch: number;
  /** Generator state at the start of the epoch (before shuffling) and now. */
  epochStartRandom: number[];
  random: number[];
  lossSum: number;
  /** Accuracy's hits so far in the epoch. */
  correct: number;
  /** Every metric's hits so far in the epoch, by name (older saves have only `correct`). */
  hits?: Record<string, number>;
  seen: number;
}

export class History {
  epoch: number[] = [];
  loss: number[] = [];
  accuracy: number[] = [];
  val_loss: number[] = [];
  val_accuracy: number[] = [];
  seconds: number[] = [];
  /** Every value logged at an epoch's end, by key, as Keras's History.history (top-k metrics included). */
  history: Record<string, number[]> = {};
  /** Set when training was stopped in the middle of an epoch (stopTraining during a batch loop). */
  stoppedAt?: TrainingPosition;

  record(epoch: number, logs: EpochLogs): void {
    this.epoch.push(epoch);
    this.loss.push(logs.loss);
    if (logs.accuracy !== undefined) this.accuracy.push(logs.accuracy);
    if (logs.val_loss !== undefined) this.val_loss.push(logs.val_loss);
    if (logs.val_accuracy !== undefined) this.val_accuracy.push(logs.val_accuracy);
    this.seconds.push(logs.seconds);
    for (const [key, value] of Object.entries(logs)) {
      if (key !== 'seconds' && value !== undefined) (this.history[key] ??= []).push(value);
    }
  }
}

export interface SequentialOptions {
  /** Seed of the generator used for weight initialisation (and training, unless fit gets its own). */
  seed?: number;
  name?: string;
  inputShape?: number[];
}

export class Sequential {
  readonly name: string;
  readonly layers: Layer[];
  random: Random;
  optimizer?: Optimizer;
  lossName?: string;
  /** Names of the compiled metrics, in order. */
  metrics: string[] = [];
  private compiledMetrics: Metric[] = [];
  /** Set to true (by a callback, a signal handler…) to stop after the current batch. */
  stopTraining = false;
  private lossFunction?: LossFunction;
  /** Whether the loss is one of descent's own (a replayed step can only hold ops it knows). */
  private builtInLoss = false;
  /** See CompileOptions.runEagerly. */
  runEagerly = false;
  /** Steps of the last fit that were replayed from a recorded one (see CompileOptions.runEagerly). */
  replayedSteps = 0;
  private inputShape?: number[];
  private outputShape?: number[];
  private layerOutputShapes: number[][] = [];
  private readonly batchBuffers = new Map<number, BatchBuffers>();

  constructor(layers: Layer[], { seed = 42, name = 'sequential', inputShape }: SequentialOptions = {}) {
    if (layers.length === 0) throw new ConfigError('a sequential model needs at least one layer');
    this.name = name;
    this.layers = layers;
    this.random = new Random(seed);
    nameLayers(layers);
    const shape = inputShape ?? layers[0].inputShape;
    if (shape) this.build(shape);
  }

  /** Create every layer's weights for a per-sample input shape, e.g. [28, 28]. */
  build(inputShape: number[]): void {
    if (this.inputShape) return;
    planModel(this.layers, inputShape); // shape errors surface here, before any weight exists
    let shape = inputShape;
    const built: Layer[] = [];
    try {
      this.layerOutputShapes = this.layers.map((layer) => {
        shape = layer.build(shape, this.random);
        built.push(layer);
        return shape;
      });
    } catch (err) {
      // e.g. WASM memory is full: give back what the layers before this one took.
      for (const layer of built) for (const { tensor } of layer.parameters()) tensor.dispose();
      throw err;
    }
    this.inputShape = inputShape;
    this.outputShape = shape;
  }

  get built(): boolean {
    return this.inputShape !== undefined;
  }

  get perSampleInputShape(): number[] {
    return this.requireBuilt().inputShape;
  }

  get perSampleOutputShape(): number[] {
    return this.requireBuilt().outputShape;
  }

  compile({ optimizer, loss, metrics = [], runEagerly = false }: CompileOptions): void {
    this.runEagerly = runEagerly;
    this.builtInLoss = typeof loss !== 'object';
    this.optimizer = optimizer === 'adam' ? new Adam() : optimizer === 'sgd' ? new Sgd() : optimizer;
    if (typeof loss === 'object') {
      this.lossName = loss.name;
      this.lossFunction = loss.fn;
    } else if (loss === 'sparseCategoricalCrossentropy' || loss === 'sparse_categorical_crossentropy') {
      this.lossName = 'sparse_categorical_crossentropy';
      this.lossFunction = (predictions, labels) => sparseCategoricalCrossentropy(predictions, labels);
    } else if (loss === 'meanSquaredError' || loss === 'mse') {
      this.lossName = 'mean_squared_error';
      this.lossFunction = meanSquaredError;
    } else {
      throw new ConfigError(`unknown loss '${String(loss)}'`);
    }
    const compiled = metrics.map(metricFrom);
    const names = compiled.map((metric) => metric.name);
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice) throw new ConfigError(`the metric '${twice}' is given twice`);
    this.compiledMetrics = compiled;
    this.metrics = names;
  }

  /** Every trainable weight, in layer order (kernel before bias), as saved in model files. */
  parameters(): Parameter[] {
    return this.layers.flatMap((layer) => layer.parameters());
  }

  countParameters(): number {
    return this.parameters().reduce((total, { tensor }) => total + tensor.size, 0);
  }

  /**
   * Run the layers on a batch. Records the graph for backward unless inside noGrad.
   * With `outputs`, each layer's output is appended to it (for step observers).
   */
  call(x: Tensor, training = false, outputs?: Tensor[]): Tensor {
    // Inputs of the same size in another shape (28×28 images for a model declared on
    // [28, 28, 1]) are read in the model's shape, without a copy.
    const shape = this.inputShape;
    let out = shape && !sameShape(x.shape.slice(1), shape) && x.size === x.shape[0] * sizeOf(shape) ? reshape(x, [x.shape[0], ...shape]) : x;
    for (const layer of this.layers) {
      out = layer.call(out, { training, random: this.random });
      outputs?.push(out);
    }
    return out;
  }

  async fit(x: Inputs, y: Targets, options: FitOptions = {}): Promise<History> {
    const { epochs = 1, batchSize = 32, shuffle = true, validationSplit = 0, initialEpoch = 0, resume, verbose = 0 } = options;
    const { optimizer, lossFunction } = this.requireCompiled();
    checkPositiveInteger('epochs', epochs);
    checkPositiveInteger('batch size', batchSize);
    if (!(validationSplit >= 0 && validationSplit < 1)) throw new ConfigError(`validation split must be in [0, 1), got ${validationSplit}`);

    const source = new BatchSource(x, y);
    this.build(source.sampleShape);
    this.checkInputShape(source.sampleShape);
    if (options.seed !== undefined) this.random = new Random(options.seed);

    // Keras: the validation samples are the last ones, chosen before any shuffling.
    const trainCount = validationSplit > 0 ? Math.floor(source.count * (1 - validationSplit)) : source.count;
    if (trainCount === 0) throw new ConfigError('no training samples left after the validation split');
    let validation: [BatchSource, Int32Array] | undefined;
    if (options.validationData) {
      const held = new BatchSource(...options.validationData);
      this.checkInputShape(held.sampleShape);
      validation = [held, rangeIndices(0, held.count)];
    } else if (validationSplit > 0) {
      validation = [source, rangeIndices(trainCount, source.count)];
    }
    if (validation && validation[1].length === 0) throw new ConfigError('the validation split leaves no validation samples');

    const steps = Math.ceil(trainCount / batchSize);
    const callbacks: Callback[] = verbose ? [new ProgbarLogger({ epochs, steps, verbose }), ...(options.callbacks ?? [])] : options.callbacks ?? [];
    const history = new History();
    const parameters = this.parameters();
    const observers = callbacks.filter((callback) => callback.onGradients || callback.onUpdate);
    const indices = rangeIndices(0, trainCount);
    this.stopTraining = false;
    for (const callback of callbacks) callback.setModel?.(this);
    for (const callback of callbacks) callback.setParams?.({ epochs, steps, batchSize });
    for (const callback of callbacks) await callback.onTrainBegin?.();
    let lastYield = now();
    const replay: StepReplay | undefined = this.replaysSteps(observers) ? { steps: 0 } : undefined;
    this.replayedSteps = 0;

    try {
      for (let epoch = resume?.epoch ?? initialEpoch; epoch < epochs && !this.stopTraining; epoch++) {
        const started = now();
        const resuming = resume !== undefined && epoch === resume.epoch;
        if (resuming) this.random.setState(resume.epochStartRandom);
        const epochStartRandom = this.random.getState();
        indices.set(rangeIndices(0, trainCount));
        if (shuffle) this.random.shuffle(indices);
        if (resuming) this.random.setState(resume.random);
        for (const callback of callbacks) await callback.onEpochBegin?.(epoch);

        let lossSum = resuming ? resume.lossSum : 0;
        const hits = this.metrics.map((name) => (resuming ? resume.hits?.[name] ?? (name === 'accuracy' ? resume.correct : 0) : 0));
        let seen = resuming ? resume.seen : 0;
        const batches = steps;
        let batch = resuming ? resume.batch : 0;
        for (; batch < batches; batch++) {
          const start = batch * batchSize;
          const size = Math.min(batchSize, trainCount - start);
          const step = this.trainStep(source, indices, start, size, parameters, optimizer, lossFunction, callbacks, batch, epoch, observers, replay);
          if (step.stop) {
            this.stopTraining = true;
            break;
          }
          lossSum += step.loss * size;
          step.hits.forEach((h, i) => (hits[i] += h));
          seen += size;
          const logs: BatchLogs = { loss: lossSum / seen, size };
          this.metrics.forEach((name, i) => (logs[name] = hits[i] / seen));
          for (const callback of callbacks) callback.onBatchEnd?.(batch, logs);
          // Let signal handlers and timers run now and then, without a macrotask per step.
          if (now() - lastYield > 50) {
            await yieldToEventLoop();
            lastYield = now();
          }
          if (this.stopTraining) {
            batch++;
            break;
          }
        }

        if (batch < batches) {
          // Stopped inside the epoch: report where, so the run can be resumed exactly.
          const byName = Object.fromEntries(this.metrics.map((name, i) => [name, hits[i]]));
          history.stoppedAt = { epoch, batch, epochStartRandom, random: this.random.getState(), lossSum, correct: byName.accuracy ?? 0, hits: byName, seen };
          break;
        }
        const logs: EpochLogs = { loss: lossSum / seen, seconds: 0 };
        this.metrics.forEach((name, i) => (logs[name] = hits[i] / seen));
        if (validation) {
          const result = this.evaluateSource(validation[0], validation[1], batchSize);
          logs.val_loss = result.loss;
          for (const name of this.metrics) logs[`val_${name}`] = result[name];
        }
        logs.seconds = (now() - started) / 1000;
        history.record(epoch, logs);
        for (const callback of callbacks) await callback.onEpochEnd?.(epoch, logs);
      }
    } finally {
      replay?.recorded?.recording.dispose();
    }
    for (const callback of callbacks) await callback.onTrainEnd?.();
    return history;
  }

  /**
   * One optimizer step on exactly these samples, in the order given (Keras's train_on_batch).
   * Returns the batch's mean loss, computed before the update.
   */
  trainOnBatch(x: Inputs, y: Targets): number {
    const { optimizer, lossFunction } = this.requireCompiled();
    const source = new BatchSource(x, y);
    this.build(source.sampleShape);
    this.checkInputShape(source.sampleShape);
    const parameters = this.parameters();
    return this.trainStep(source, rangeIndices(0, source.count), 0, source.count, parameters, optimizer, lossFunction, [], 0).loss;
  }

  /** Mean loss, and every compiled metric (accuracy: 0 when not compiled with it), over all samples. */
  evaluate(x: Inputs, y: Targets, { batchSize = 32 }: { batchSize?: number } = {}): EvaluationResult {
    this.requireCompiled();
    checkPositiveInteger('batch size', batchSize);
    const source = new BatchSource(x, y);
    this.checkInputShape(source.sampleShape);
    return this.evaluateSource(source, rangeIndices(0, source.count), batchSize);
  }

  /** Model outputs for every sample: a [samples, ...outputShape] tensor the caller disposes. */
  predict(x: Inputs, { batchSize = 32 }: { batchSize?: number } = {}): Tensor {
    checkPositiveInteger('batch size', batchSize);
    const source = new BatchSource(x);
    this.build(source.sampleShape);
    this.checkInputShape(source.sampleShape);
    const outputShape = this.perSampleOutputShape;
    const width = sizeOf(outputShape);
    const result = Tensor.zeros([source.count, ...outputShape]);
    const order = rangeIndices(0, source.count);
    noGrad(() => {
      for (let start = 0; start < source.count; start += batchSize) {
        const size = Math.min(batchSize, source.count - start);
        scope(() => {
          const input = wholeTensorInput(source, start, size) ?? this.fillBatch(source, order, start, size).input;
          const out = this.call(input, false);
          result.data.set(out.data.subarray(0, size * width), start * width);
        });
      }
    });
    return result;
  }

  /** Copies of every weight, in `parameters()` order. */
  getWeights(): Array<{ name: string; shape: number[]; values: Float32Array }> {
    return this.parameters().map(({ name, tensor }) => ({ name, shape: [...tensor.shape], values: Float32Array.from(tensor.data) }));
  }

  /** Replace every weight, in `parameters()` order. */
  setWeights(values: ReadonlyArray<ArrayLike<number>>): void {
    const parameters = this.parameters();
    if (values.length !== parameters.length) throw new ShapeError(`setWeights: model has ${parameters.length} weights, got ${values.length}`);
    parameters.forEach(({ name, tensor }, i) => {
      if (values[i].length !== tensor.size) {
        throw new ShapeError(`setWeights: ${name} has shape ${formatShape(tensor.shape)} (${tensor.size} values), got ${values[i].length}`);
      }
      tensor.data.set(values[i]);
    });
  }

  /** A Keras-style table of layers, output shapes and parameter counts. */
  summary(): string {
    this.requireBuilt();
    // Keras's column widths, widened when a name (e.g. 'max_pooling2d (MaxPooling2D)') needs it.
    const nameWidth = Math.max(28, ...this.layers.map((layer) => `${layer.name} (${layer.className})`.length + 2));
    const width = 65 + nameWidth - 28;
    const rule = '_'.repeat(width);
    const row = (a: string, b: string, c: string) => ` ${a.padEnd(nameWidth)}${b.padEnd(26)}${c}`.trimEnd();
    const lines = [`Model: "${this.name}"`, rule, row('Layer (type)', 'Output Shape', 'Param #'), '='.repeat(width)];
    this.layers.forEach((layer, i) => {
      const shape = this.layerOutputShapes[i];
      const count = layer.parameters().reduce((total, { tensor }) => total + tensor.size, 0);
      lines.push(row(`${layer.name} (${layer.className})`, `(None, ${shape.join(', ')})`, count.toLocaleString('en-US')));
    });
    const total = this.countParameters().toLocaleString('en-US');
    lines.push('='.repeat(width), `Total params: ${total}`, `Trainable params: ${total}`, 'Non-trainable params: 0', rule);
    return lines.join('\n');
  }

  /** Free every buffer the model holds (weights, optimizer state stays with the optimizer). */
  dispose(): void {
    for (const { tensor } of this.parameters()) tensor.dispose();
    for (const buffers of this.batchBuffers.values()) disposeBuffers(buffers);
    this.batchBuffers.clear();
  }

  // ---- internals ----------------------------------------------------------------------

  /**
   * One optimizer step on samples order[start..start+size). With `replay` (fit's), the second
   * step of a batch size is recorded and the later ones replay it (see step-recording.ts).
   */
  private trainStep(
    source: BatchSource, order: Int32Array, start: number, size: number,
    parameters: Parameter[], optimizer: Optimizer, lossFunction: LossFunction, callbacks: Callback[], batch: number,
    epoch = 0, observers: readonly Callback[] = [], replay?: StepReplay,
  ): StepResult {
    if (replay !== undefined && !replay.off) {
      const recorded = replay.recorded;
      if (recorded !== undefined && recorded.size === size && kernels() === recorded.recording.backend) {
        const step = this.replayStep(recorded, source, order, start, size, parameters, optimizer, callbacks, batch);
        if (step !== undefined) {
          this.replayedSteps++;
          return step;
        }
        // The batch's buffers are not the recorded ones any more (another source had them): record again.
        recorded.recording.dispose();
        replay.recorded = undefined;
      } else if (recorded === undefined && replay.steps++ >= 1) {
        // Not the first step: that one makes what steps keep (optimizer slots, the batch's buffers).
        return this.recordTrainStep(replay, source, order, start, size, parameters, optimizer, lossFunction, callbacks, batch, epoch);
      }
    }
    return this.runStep(source, order, start, size, parameters, optimizer, lossFunction, callbacks, batch, epoch, observers);
  }

  /**
   * One step the usual way: copy a batch in, forward, loss, backward, update. While a step is
   * recorded, `recording` marks where backward starts and keeps the tensors a replay reads.
   */
  private runStep(
    source: BatchSource, order: Int32Array, start: number, size: number,
    parameters: Parameter[], optimizer: Optimizer, lossFunction: LossFunction, callbacks: Callback[], batch: number,
    epoch = 0, observers: readonly Callback[] = [], recording?: StepCapture,
  ): StepResult {
    return scope(() => {
      // The copy-in, the metrics and the update run live in a replayed step too: not recorded.
      const { input, targets } = unrecorded(() => this.fillBatch(source, order, start, size));
      // Observers are asked before the forward pass, so unobserved steps keep no layer outputs.
      const watching = observers.length === 0 ? observers : observers.filter((o) => o.observesStep?.(optimizer.iterations) ?? true);
      const outputs: Tensor[] | undefined = watching.length > 0 ? [] : undefined;
      const predictions = this.call(input, true, outputs);
      const loss = lossFunction(predictions, targets);
      const lossValue = loss.item();
      if (!Number.isFinite(lossValue)) {
        // Decide before the update, so stopping keeps the weights from before this batch.
        const stop = callbacks.some((callback) => callback.onNonFiniteLoss?.(batch, lossValue));
        if (stop) return { loss: lossValue, hits: [], stop: true };
      }
      const hits = unrecorded(() => this.compiledMetrics.map((metric) => metric.hits(predictions, targets)));
      recording?.mark('backward');
      loss.backward();
      let view: StepView | undefined;
      if (outputs) {
        const layers = this.layers.map((layer, i) => ({ layer, output: outputs[i] }));
        view = { step: optimizer.iterations, epoch, batch, loss: lossValue, input, targets, layers, parameters };
        for (const observer of watching) observer.onGradients?.(view);
      }
      if (recording) recording.tensors = { input, targets, predictions, loss, grads: parameters.map(({ tensor }) => tensor.grad) };
      unrecorded(() => optimizer.step(parameters));
      if (view) for (const observer of watching) observer.onUpdate?.(view);
      for (const { tensor } of parameters) tensor.grad = undefined; // their buffers go back with the scope
      return { loss: lossValue, hits, stop: false };
    });
  }

  /** Runs one step the usual way while recording its kernel calls (see step-recording.ts). */
  private recordTrainStep(
    replay: StepReplay, source: BatchSource, order: Int32Array, start: number, size: number,
    parameters: Parameter[], optimizer: Optimizer, lossFunction: LossFunction, callbacks: Callback[], batch: number, epoch: number,
  ): StepResult {
    const capture: StepCapture = { mark: () => {} };
    const { result, recording, marks } = recordStep((mark) => {
      capture.mark = mark;
      return this.runStep(source, order, start, size, parameters, optimizer, lossFunction, callbacks, batch, epoch, [], capture);
    });
    const backwardAt = marks.get('backward');
    const tensors = capture.tensors;
    if (result.stop || backwardAt === undefined || tensors === undefined) {
      // A step that stopped before its update cannot stand for the others.
      recording.dispose();
      replay.off = true;
      return result;
    }
    // The step's own tensors were disposed with its scope; their buffers are the recording's now.
    const view = (tensor: Tensor): Tensor => new Tensor(tensor.shape, tensor.storage, false, false);
    replay.recorded = {
      recording, size, backwardAt,
      input: tensors.input.storage,
      targets: tensors.targets.storage,
      predictions: view(tensors.predictions),
      loss: view(tensors.loss),
      grads: tensors.grads.map((grad) => (grad === undefined ? undefined : view(grad))),
    };
    return result;
  }

  /**
   * A recorded step, replayed on the batch order[start..start+size): the same kernel calls as
   * runStep would make, on the recorded buffers. Undefined (nothing done but the copy-in) when
   * the batch's buffers are not the ones recorded.
   */
  private replayStep(
    recorded: RecordedTrainStep, source: BatchSource, order: Int32Array, start: number, size: number,
    parameters: Parameter[], optimizer: Optimizer, callbacks: Callback[], batch: number,
  ): StepResult | undefined {
    const { input, targets } = this.fillBatch(source, order, start, size);
    if (input.storage !== recorded.input || targets.storage !== recorded.targets) return undefined;
    recorded.recording.replay(0, recorded.backwardAt);
    const lossValue = recorded.loss.item();
    if (!Number.isFinite(lossValue)) {
      const stop = callbacks.some((callback) => callback.onNonFiniteLoss?.(batch, lossValue));
      if (stop) return { loss: lossValue, hits: [], stop: true };
    }
    const hits = this.compiledMetrics.map((metric) => metric.hits(recorded.predictions, targets));
    recorded.recording.replay(recorded.backwardAt);
    parameters.forEach(({ tensor }, i) => (tensor.grad = recorded.grads[i]));
    try {
      optimizer.step(parameters);
    } finally {
      for (const { tensor } of parameters) tensor.grad = undefined;
    }
    return { loss: lossValue, hits, stop: false };
  }

  /**
   * Whether fit may replay recorded steps: not when asked to run eagerly, when callbacks watch
   * each step's gradients, or when a layer or the loss is not descent's own (its JavaScript may
   * do per-step work that a replay would not see).
   */
  private replaysSteps(observers: readonly Callback[]): boolean {
    return !this.runEagerly && observers.length === 0 && this.builtInLoss && this.layers.every((layer) => REPLAYABLE_LAYERS.some((kind) => layer instanceof kind));
  }

  private evaluateSource(source: BatchSource, order: Int32Array, batchSize: number): EvaluationResult {
    const { lossFunction } = this.requireCompiled();
    let lossSum = 0;
    const hits = this.compiledMetrics.map(() => 0);
    noGrad(() => {
      for (let start = 0; start < order.length; start += batchSize) {
        const size = Math.min(batchSize, order.length - start);
        scope(() => {
          const { input, targets } = this.fillBatch(source, order, start, size);
          const predictions = this.call(input, false);
          lossSum += lossFunction(predictions, targets).item() * size;
          this.compiledMetrics.forEach((metric, i) => (hits[i] += metric.hits(predictions, targets)));
        });
      }
    });
    const result: EvaluationResult = { loss: lossSum / order.length, accuracy: 0 };
    this.metrics.forEach((name, i) => (result[name] = hits[i] / order.length));
    return result;
  }

  /** Copy the samples order[start .. start+size) into this batch size's reusable input buffers. */
  private fillBatch(source: BatchSource, order: Int32Array, start: number, size: number): { input: Tensor; targets: Tensor } {
    let buffers = this.batchBuffers.get(size);
    if (!buffers || buffers.source !== source.signature) {
      if (buffers) disposeBuffers(buffers);
      buffers = createBuffers(source, size);
      this.batchBuffers.set(size, buffers);
    }
    source.fill(buffers, order, start, size);
    return { input: buffers.input, targets: buffers.targets };
  }

  private checkInputShape(sampleShape: number[]): void {
    const expected = this.perSampleInputShape;
    if (sizeOf(sampleShape) !== sizeOf(expected)) {
      throw new ShapeError(`model expects inputs of shape ${formatShape(expected)} per sample, got ${formatShape(sampleShape)}`);
    }
  }

  private requireBuilt(): { inputShape: number[]; outputShape: number[] } {
    if (!this.inputShape || !this.outputShape) throw new ConfigError('the model is not built yet: give the first layer an inputShape');
    return { inputShape: this.inputShape, outputShape: this.outputShape };
  }

  private requireCompiled(): { optimizer: Optimizer; lossFunction: LossFunction } {
    if (!this.optimizer || !this.lossFunction) throw new ConfigError('compile the model before fit or evaluate');
    return { optimizer: this.optimizer, lossFunction: this.lossFunction };
  }
}

/** evaluate's result: the loss and each compiled metric by name. */
export interface EvaluationResult {
  loss: number;
  accuracy: number;
  [metric: string]: number;
}

export function sequential(layers: Layer[], options?: SequentialOptions): Sequential {
  return new Sequential(layers, options);
}

// ---- batches ------------------------------------------------------------------------------

interface BatchBuffers {
  source: string;
  input: Tensor;
  targets: Tensor;
  staging?: ByteStorage;
}

/**
 * Rows order[start..start+size) of `from` (rows of `width`) into `to`, one after another. Runs of
 * consecutive rows (all of them when predicting, which keeps the order) go in one copy.
 */
function gatherRows<T extends Float32Array | Float64Array | Uint8Array>(
  from: T, to: T, order: Int32Array, start: number, size: number, width: number,
): void {
  touchScatteredRows(from, order, start, size, width);
  for (let i = 0; i < size;) {
    const first = order[start + i];
    let run = 1;
    while (i + run < size && order[start + i + run] === first + run) run++;
    to.set(from.subarray(first * width, (first + run) * width), i * width);
    i += run;
  }
}

/** What touchScatteredRows read, kept so that the compiler cannot drop the reads. */
let touched = 0;

/**
 * Reads one element of every 64-byte cache line of each row that is not next to the row before
 * it, before gatherRows copies them. A shuffled batch's rows lie far apart in a large array, so
 * copied one by one each row waits for memory on its own; these reads do not depend on each
 * other, so the processor has all of them in flight at once and the copies then find the rows
 * in cache. A batch of 32 Fashion-MNIST images (784 bytes each, 47 MB in all) took 20 µs to
 * gather without, 14 µs with (medians of 5 runs).
 */
function touchScatteredRows(from: Float32Array | Float64Array | Uint8Array, order: Int32Array, start: number, size: number, width: number): void {
  const step = Math.max(1, 64 / from.BYTES_PER_ELEMENT);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const row = order[start + i];
    if (i > 0 && order[start + i - 1] === row - 1) continue;
    const first = row * width;
    for (let j = 0; j < width; j += step) sum += from[first + j];
    sum += from[first + width - 1];
  }
  touched = sum;
}

/**
 * The caller's input tensor itself, as the batch of every sample in order, when the backend's
 * kernels can read it where it is: inference on a tensor already in memory then copies nothing
 * (10,000 Fashion-MNIST images are 31 MB of floats). Otherwise undefined, and the batch is copied.
 */
function wholeTensorInput(source: BatchSource, start: number, size: number): Tensor | undefined {
  const { inputs } = source;
  if (!(inputs instanceof Tensor) || start !== 0 || size !== source.count || !kernels().holds(inputs.storage)) return undefined;
  return Tensor.view(inputs, [size, ...source.sampleShape]);
}

/** Reads samples out of the caller's inputs and targets, one batch at a time. */
class BatchSource {
  readonly count: number;
  readonly sampleShape: number[];
  readonly sampleSize: number;
  readonly targetShape: number[];
  readonly targetSize: number;
  /** Identifies the layout, so cached buffers are rebuilt when the data changes shape. */
  readonly signature: string;

  constructor(readonly inputs: Inputs, readonly targets?: Targets) {
    if (inputs instanceof Tensor) {
      this.count = inputs.shape[0];
      this.sampleShape = inputs.shape.slice(1);
    } else {
      this.count = inputs.count;
      this.sampleShape = [inputs.rows, inputs.cols];
      if (inputs.images.length !== inputs.count * inputs.rows * inputs.cols) {
        throw new ShapeError(`byte images: ${inputs.count} images of ${inputs.rows}x${inputs.cols} need ${inputs.count * inputs.rows * inputs.cols} bytes, got ${inputs.images.length}`);
      }
    }
    this.sampleSize = sizeOf(this.sampleShape);
    if (targets === undefined) {
      this.targetShape = [];
    } else if (targets instanceof Tensor) {
      if (targets.shape[0] !== this.count) throw new ShapeError(`${this.count} samples but targets of shape ${formatShape(targets.shape)}`);
      this.targetShape = targets.shape.slice(1);
    } else {
      if (targets.length !== this.count) throw new ShapeError(`${this.count} samples but ${targets.length} labels`);
      this.targetShape = [];
    }
    this.targetSize = sizeOf(this.targetShape);
    this.signature = `${this.sampleShape.join('x')}|${this.targetShape.join('x')}|${inputs instanceof Tensor ? 'f' : 'u8'}`;
  }

  fill(buffers: BatchBuffers, order: Int32Array, start: number, size: number): void {
    const { inputs, targets, sampleSize, targetSize } = this;
    if (inputs instanceof Tensor) {
      gatherRows(inputs.data, buffers.input.data, order, start, size, sampleSize);
    } else {
      // Only bytes cross into the backend; the backend scales them to floats (x / 255).
      gatherRows(inputs.images, buffers.staging!.data, order, start, size, sampleSize);
      kernels().normalizeBytes(buffers.staging!, size * sampleSize, 1 / 255, buffers.input.storage);
    }
    if (targets === undefined) return;
    const to = buffers.targets.data;
    if (targets instanceof Tensor) {
      gatherRows(targets.data, to, order, start, size, targetSize);
    } else {
      for (let i = 0; i < size; i++) to[i] = targets[order[start + i]];
    }
  }
}

function createBuffers(source: BatchSource, size: number): BatchBuffers {
  return {
    source: source.signature,
    input: keep(Tensor.zeros([size, ...source.sampleShape])),
    targets: keep(Tensor.zeros([size, ...source.targetShape])),
    staging: source.inputs instanceof Tensor ? undefined : kernels().allocBytes(size * source.sampleSize),
  };
}

function disposeBuffers(buffers: BatchBuffers): void {
  buffers.input.dispose();
  buffers.targets.dispose();
  if (buffers.staging) kernels().freeBytes(buffers.staging);
}

function countCorrect(predictions: Tensor, targets: Tensor): number {
  const [m, n] = predictions.shape;
  if (targets.size !== m) return 0; // accuracy is defined for class-index targets
  return kernels().countCorrect(m, n, predictions.storage, targets.storage);
}

/** What building a model makes, worked out without allocating anything. */
export interface ModelPlan {
  /** Each layer's per-sample output shape. */
  outputShapes: number[][];
  /** Every weight the model will have, in `parameters()` order, named as saved. */
  weights: WeightShape[];
}

/**
 * Names the layers as a model does and follows `inputShape` through them, collecting the weights
 * each would create. Throws a ShapeError (or ConfigError) for layers that do not fit together.
 * Loaders use it to compare a model file with its weights before any memory is taken.
 */
export function planModel(layers: Layer[], inputShape: readonly number[]): ModelPlan {
  nameLayers(layers);
  let shape: readonly number[] = inputShape;
  const outputShapes: number[][] = [];
  const weights: WeightShape[] = [];
  for (const layer of layers) {
    const next = layer.outputShape(shape); // checks that the input fits before its weights are sized
    weights.push(...layer.weightShapes(shape));
    shape = next;
    outputShapes.push([...shape]);
  }
  return { outputShapes, weights };
}

function nameLayers(layers: Layer[]): void {
  const used = new Map<string, number>();
  for (const layer of layers) {
    const base = layer.name || snakeCase(layer.className);
    const count = used.get(base) ?? 0;
    used.set(base, count + 1);
    if (!layer.name) layer.name = count === 0 ? base : `${base}_${count}`;
  }
  const names = new Set<string>();
  for (const layer of layers) {
    if (names.has(layer.name)) throw new ConfigError(`two layers are named '${layer.name}'`);
    names.add(layer.name);
  }
}

/** Keras's default layer names: 'Dense' → 'dense', 'MaxPooling2D' → 'max_pooling2d'. */
function snakeCase(className: string): string {
  return className.replace(/(.)([A-Z][a-z]+)/g, '$1_$2').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

function rangeIndices(from: number, to: number): Int32Array {
  const indices = new Int32Array(Math.max(0, to - from));
  for (let i = 0; i < indices.length; i++) indices[i] = from + i;
  return indices;
}

function checkPositiveInteger(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${what} must be a positive integer, got ${value}`);
}

const now = (): number => performance.now();

function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  // Browsers hold a nested setTimeout(0) back 4 ms; a message on a channel runs at once.
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** What a training step returns to fit. */
interface StepResult {
  loss: number;
  hits: number[];
  stop: boolean;
}

/** The layers whose ops mark their per-step JavaScript (see step-recording.ts). */
const REPLAYABLE_LAYERS = [Flatten, Dense, Dropout, Conv2D, MaxPooling2D, Reshape];

/** fit's record of one batch size's step, and how far it got. */
interface StepReplay {
  /** Steps run so far in this fit call. */
  steps: number;
  recorded?: RecordedTrainStep;
  /** Set when a recorded step could not stand for the others: every step then runs the usual way. */
  off?: boolean;
}

/** What runStep hands back while it is recorded. */
interface StepCapture {
  mark: (name: string) => void;
  tensors?: { input: Tensor; targets: Tensor; predictions: Tensor; loss: Tensor; grads: Array<Tensor | undefined> };
}

interface RecordedTrainStep {
  recording: StepRecording;
  size: number;
  /** The action at which backward starts. */
  backwardAt: number;
  input: Storage;
  targets: Storage;
  /** Views of the recorded step's buffers, which every replay fills again. */
  predictions: Tensor;
  loss: Tensor;
  grads: Array<Tensor | undefined>;
}
