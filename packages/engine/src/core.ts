/**
 * The browser-safe core of descent: tensors, autodiff, ops, layers, optimizers, the kernels, the
 * tfjs Layers format in memory, and learning mode. Nothing reachable from here imports a `node:`
 * module, so a web page bundles it as is (`import { ... } from '@descent/engine/core'`);
 * packages/engine/test/core.test.ts checks that. The Node entry (index.ts) adds files and data sets.
 */
export * from './errors.js';
export * from './data/index.js';
export { Tensor, scope, keep, sizeOf, sameShape } from './tensor.js';
export type { Creator, NestedArray } from './tensor.js';
export { backward, noGrad, isRecording, record, addGrad, topologicalOrder } from './autodiff.js';
export { Random } from './random.js';
export {
  kernels, setBackend, backendName, backendFallbackReason, onBackendWarning, createReferenceKernels, createWasmKernels,
  setThreads, threadCount, threadsReady, defaultThreads, setThreadHost, serveKernels, ThreadError, webWorkerThreadHost, MAX_SPIN_MICROS,
} from './backend/index.js';
export type {
  BackendName, Kernels, Storage, ByteStorage, FloatArray, Window2d, ThreadCount, ThreadHost, WorkerInit, WorkerHandle,
  WebWorkerLike, WebWorkerThreadHostOptions, WasmKernels, WasmKernelsOptions, ShareTiming,
} from './backend/index.js';

export { matmul } from './ops/matmul.js';
export type { MatmulOptions } from './ops/matmul.js';
export { biasAdd } from './ops/bias-add.js';
export { relu } from './ops/relu.js';
export { softmax } from './ops/softmax.js';
export { logSoftmax } from './ops/log-softmax.js';
export { sparseCategoricalCrossentropy, EPSILON } from './ops/cross-entropy.js';
export { mean } from './ops/mean.js';
export { reshape, flatten as flattenOp } from './ops/reshape.js';
export { dropout as dropoutOp } from './ops/dropout.js';
export { meanSquaredError } from './ops/mean-squared-error.js';
export { dense as denseOp } from './ops/dense.js';
export { conv2d as conv2dOp } from './ops/conv2d.js';
export type { Conv2dOptions } from './ops/conv2d.js';
export { maxPool2d } from './ops/max-pool.js';
export type { MaxPool2dOptions } from './ops/max-pool.js';
export { windowAxis, type Padding } from './ops/window.js';

export { Flatten, Dense, Dropout, flatten, dense, dropout, glorotUniform } from './nn/layers.js';
export type { Layer, LayerClassName, Parameter, Activation, CallContext, DenseOptions, FlattenOptions, DropoutOptions, WeightShape } from './nn/layers.js';
export { Conv2D, MaxPooling2D, Reshape, conv2d, maxPooling2d, reshape as reshapeLayer } from './nn/conv-layers.js';
export type { Conv2DOptions, MaxPooling2DOptions, ReshapeOptions, ConvActivation, Size2d } from './nn/conv-layers.js';
export { Sequential, sequential, History, planModel } from './nn/model.js';
export { parseLayers, defineModel, checkDefinition, CNN_LAYERS } from './nn/spec.js';
export { GLOROT_UNIFORM, initialKernel, initializerFromConfig, initializerConfig } from './nn/initializers.js';
export type { VarianceScaling } from './nn/initializers.js';
export type { DefineModelOptions } from './nn/spec.js';
export { SparseTopKCategoricalAccuracy, sparseTopKCategoricalAccuracy, accuracyMetric, countInTopK, metricFrom } from './nn/metrics.js';
export type { Metric, MetricSpec, SparseTopKOptions } from './nn/metrics.js';
export type { ByteImages, Inputs, Targets, CompileOptions, FitOptions, TrainingPosition, LossFunction, LossName, SequentialOptions, EvaluationResult, ModelPlan } from './nn/model.js';
export { EarlyStopping, ReduceLROnPlateau, TerminateOnNaN } from './nn/callbacks.js';
export { argMax, evaluateClassifier, evaluationFromProbabilities, predictProbabilities } from './nn/evaluation.js';
export type { ClassEvaluation, ClassifierEvaluation } from './nn/evaluation.js';
export { ProgbarLogger, progressLine, fitFinishedLine, fitLiveLine, formatEta, formatPerStep, formatMetric, stdoutSink } from './nn/progress.js';
export type { ProgressSink, ProgbarLoggerOptions, ProgressInfo } from './nn/progress.js';
export type { Callback, EpochLogs, BatchLogs, EarlyStoppingOptions, EarlyStoppingState, StepView, TrainingParams, TerminateOnNaNOptions, ReduceLROnPlateauOptions, ReduceLROnPlateauState } from './nn/callbacks.js';

export { Adam, adam } from './optimizers/adam.js';
export type { AdamOptions } from './optimizers/adam.js';
export { Sgd, sgd } from './optimizers/sgd.js';
export type { SgdOptions } from './optimizers/sgd.js';
export { RMSprop, rmsprop } from './optimizers/rmsprop.js';
export type { RmspropOptions } from './optimizers/rmsprop.js';
export { ExponentialDecay, exponentialDecay, scheduleFromConfig } from './optimizers/schedules.js';
export type { LearningRateSchedule, ExponentialDecayOptions, ScheduleConfig } from './optimizers/schedules.js';
export { LearningRateOptimizer } from './optimizers/optimizer.js';
export type { Optimizer, OptimizerState, OptimizerConfig, OptimizerName } from './optimizers/optimizer.js';

export * from './learn/index.js';
export * from './io/index.js';
