/**
 * Runs one training job in the calling thread: build the model (or take the given weights, or a
 * checkpoint), fit it with the job's callbacks, and return the history and the weights to keep.
 * Worker threads (thread.ts) call this; so can anything that wants a job done in-process.
 */
import {
  EarlyStopping, History, TerminateOnNaN, captureTrainingState, defineModel, evaluateClassifier, historyData, parseLayers, dense, dropout, emptyHistoryData, flatten, restoreOptimizer, sequential,
  adam, sgd, type Callback, type EpochLogs, type FitOptions, type ImageDataset, type Layer, type Sequential,
} from '@descent/engine';
import {
  better, decodeWeights, encodeArrays, encodeWeights, type BestEpoch, type EncodedWeights, type JobCheckpoint, type JobEvaluation, type JobEvent, type JobResult,
  type ModelDefinition, type TrainingJobSpec,
} from './spec.js';

export interface RunHooks {
  onEvent?(event: JobEvent): void;
  /** Polled after every batch; true stops the job after that batch (it returns a checkpoint). */
  cancelled?(): boolean;
}

/** The classifier a job trains (see ModelDefinition). */
export function buildClassifier(definition: ModelDefinition, inputShape: number[], classes: number, seed: number): Sequential {
  if (definition.layers) return defineModel(parseLayers(definition.layers), { inputShape, classes, seed, source: 'the job\'s layers' });
  const layers: Layer[] = [flatten({ inputShape })];
  for (const units of definition.hidden) {
    layers.push(dense({ units, activation: 'relu' }));
    if (definition.dropout > 0) layers.push(dropout({ rate: definition.dropout }));
  }
  layers.push(dense({ units: classes, activation: 'softmax' }));
  return sequential(layers, { seed });
}

export async function runTrainingJob(spec: TrainingJobSpec, train: ImageDataset, hooks: RunHooks = {}, test?: ImageDataset): Promise<JobResult> {
  const started = performance.now();
  const classes = train.classNames.length;
  const model = buildClassifier(spec.model, [train.rows, train.cols], classes, spec.seed);
  const resume = spec.resume;
  if (resume) {
    model.setWeights(decodeWeights(resume.weights));
    model.random.setState(resume.random);
  } else if (spec.initialWeights) {
    model.setWeights(decodeWeights(spec.initialWeights));
  }
  const optimizer = resume
    ? restoreOptimizer(model, { ...resume.optimizer, state: decodeOptimizerSlots(resume.optimizer.state) })
    : spec.optimizer.name === 'sgd'
      ? sgd({ learningRate: spec.optimizer.learningRate, momentum: spec.optimizer.momentum ?? 0 })
      : adam({ learningRate: spec.optimizer.learningRate });
  model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });

  // Every epoch of the job, those of a resumed run's first part included.
  const history = Object.assign(new History(), structuredClone(resume?.history ?? emptyHistoryData()));
  const keep = new KeepBest(spec, resume?.best ?? null);
  const quiet = (): void => {};
  const terminateOnNaN = new TerminateOnNaN(quiet);
  let earlyStopping: EarlyStopping | undefined;
  if (spec.earlyStopping) {
    earlyStopping = new EarlyStopping({ monitor: spec.earlyStopping.monitor, patience: spec.earlyStopping.patience, restoreBestWeights: spec.earlyStopping.restoreBestWeights, log: quiet });
    if (resume?.earlyStopping) {
      const saved = resume.earlyStopping;
      earlyStopping.setState({ ...saved, best: saved.best ?? Infinity, bestWeights: saved.bestWeights ? decodeWeights(saved.bestWeights) : undefined });
    }
  }
  const trainCount = spec.validationSplit > 0 ? Math.floor(train.count * (1 - spec.validationSplit)) : train.count;
  const batches = Math.ceil(trainCount / spec.batchSize);
  const checkpoint = (position: JobCheckpoint['position'], epochsCompleted: number): JobCheckpoint => {
    const state = captureTrainingState(model);
    const es = earlyStopping?.getState();
    return {
      jobId: spec.id,
      epochsCompleted,
      position,
      weights: encodeWeights(model),
      optimizer: { ...state.optimizer!, state: encodeOptimizerSlots(state.optimizer!.state!) },
      random: state.random!,
      history: historyData(history),
      earlyStopping: es ? { ...es, best: Number.isFinite(es.best) ? es.best : null, bestWeights: es.bestWeights ? encodeArrays(es.bestWeights, model.getWeights().map((w) => w.shape)) : null } : null,
      best: keep.best,
    };
  };

  const callbacks: Callback[] = [
    {
      onBatchEnd(batch, logs) {
        if (spec.progressEvery > 0 && ((batch + 1) % spec.progressEvery === 0 || batch + 1 === batches)) {
          hooks.onEvent?.({ type: 'batch', jobId: spec.id, epoch: currentEpoch, batch: batch + 1, batches, loss: logs.loss, accuracy: logs.accuracy ?? null });
        }
        if (hooks.cancelled?.()) {
          model.stopTraining = true;
          cancelRequested = true;
        }
      },
      onEpochBegin(epoch) {
        currentEpoch = epoch;
      },
      onEpochEnd(epoch, logs) {
        history.record(epoch, logs);
        hooks.onEvent?.({
          type: 'epoch', jobId: spec.id, epoch, loss: logs.loss, accuracy: logs.accuracy ?? null,
          val_loss: logs.val_loss ?? null, val_accuracy: logs.val_accuracy ?? null, seconds: logs.seconds,
        });
      },
    },
    keep,
    terminateOnNaN,
    ...(earlyStopping ? [earlyStopping] : []),
    {
      // Last, so the checkpoint holds the other callbacks' state after this epoch.
      onEpochEnd(epoch) {
        if (spec.checkpoints) hooks.onEvent?.({ type: 'checkpoint', jobId: spec.id, checkpoint: checkpoint(null, epoch + 1) });
      },
    },
  ];
  let cancelRequested = false;
  let currentEpoch = resume?.position?.epoch ?? resume?.epochsCompleted ?? spec.initialEpoch;
  const fitOptions: FitOptions = { epochs: spec.epochs, batchSize: spec.batchSize, validationSplit: spec.validationSplit, callbacks };
  if (resume?.position) fitOptions.resume = resume.position;
  else fitOptions.initialEpoch = resume ? resume.epochsCompleted : spec.initialEpoch;
  try {
    const result = await model.fit(train, train.labels, fitOptions);
    const seconds = (performance.now() - started) / 1000;
    // A cancel seen on an epoch's last batch lets that epoch end, and no later one begin: cancelled too, between two epochs.
    const epochsCompleted = (history.epoch.at(-1) ?? spec.initialEpoch - 1) + 1;
    const cancelledBetweenEpochs = !result.stoppedAt && cancelRequested && !earlyStopping?.stoppedEpoch && epochsCompleted < spec.epochs;
    if ((result.stoppedAt || cancelledBetweenEpochs) && terminateOnNaN.terminatedAt === undefined) {
      const saved = result.stoppedAt ? checkpoint(result.stoppedAt, result.stoppedAt.epoch) : checkpoint(null, epochsCompleted);
      return { id: spec.id, status: 'cancelled', history: historyData(history), best: keep.summary(), weights: saved.weights, seconds, checkpoint: saved };
    }
    const status = terminateOnNaN.terminatedAt !== undefined ? 'terminated-nan' : earlyStopping?.stoppedEpoch ? 'stopped-early' : 'complete';
    const weights = keep.best?.weights ?? encodeWeights(model);
    let evaluation: JobEvaluation | null = null;
    if (spec.evaluate && test && test.count > 0) {
      if (keep.best) model.setWeights(decodeWeights(weights));
      const { loss, accuracy, confusion } = evaluateClassifier(model, test, undefined, classes);
      evaluation = { loss, accuracy, confusion, count: test.count };
    }
    return { id: spec.id, status, history: historyData(history), best: keep.summary(), weights, seconds, checkpoint: null, test: evaluation };
  } finally {
    model.dispose();
    optimizer.dispose?.();
  }
}

/** keras-tuner's SaveBestEpoch: remember the weights of the epoch with the best objective so far. */
class KeepBest implements Callback {
  private model?: Sequential;
  constructor(private readonly spec: TrainingJobSpec, public best: BestEpoch | null) {}
  setModel(model: Sequential): void {
    this.model = model;
  }
  onEpochEnd(epoch: number, logs: EpochLogs): void {
    const objective = this.spec.keepBest;
    const value = objective ? logs[objective.name] : undefined;
    if (!objective || value === undefined || !this.model) return;
    if (this.best === null ? !Number.isNaN(value) : better(objective, value, this.best.value)) {
      this.best = { epoch, value, weights: encodeWeights(this.model) };
    }
  }
  summary(): JobResult['best'] {
    return this.best ? { epoch: this.best.epoch, value: this.best.value } : null;
  }
}

/** Optimizer slots (Adam's m and v, SGD's velocity) as base64, and back. */
function encodeOptimizerSlots(state: { iterations: number; slots: Record<string, number[][]> }): JobCheckpoint['optimizer']['state'] {
  const slots: Record<string, string[]> = {};
  for (const [name, perParameter] of Object.entries(state.slots)) slots[name] = encodeArrays(perParameter, perParameter.map((v) => [v.length])).values;
  return { iterations: state.iterations, slots };
}

function decodeOptimizerSlots(state: JobCheckpoint['optimizer']['state']): { iterations: number; slots: Record<string, number[][]> } {
  const slots: Record<string, number[][]> = {};
  for (const [name, perParameter] of Object.entries(state.slots)) slots[name] = decodeWeights({ shapes: [], values: perParameter }).map((values) => Array.from(values));
  return { iterations: state.iterations, slots };
}
