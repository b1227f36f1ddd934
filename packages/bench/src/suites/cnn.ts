/**
 * The tutorial CNN (types.ts CNN) against TensorFlow: one epoch per engine, step parity from the
 * oracle's initial weights, (suite cnn-parity) test accuracy after 10 epochs from 3 seeds, and
 * (suite cnn-early) the same with a validation split and early stopping.
 *
 * Engines left out, and why: descent's reference TS kernels (the readable ones, minutes per
 * epoch on convolutions), tfjs-wasm (it cannot train a CNN: Conv2DBackpropFilter is not
 * registered for its backend) and tfjs-cpu (over 6,000 s for one epoch here).
 */
import { CNN, describeModel, type AccuracySuiteResult, type EngineId, type EpochSuiteResult, type OracleId, type StepsSuiteResult } from '../types.js';
import { runAccuracySuite } from './accuracy.js';
import type { SuiteContext } from './context.js';
import { runEpochSuite } from './epoch.js';
import { runStepsSuite } from './steps.js';

export const CNN_EPOCH_ENGINES: readonly EngineId[] = ['descent-wasm', 'descent-wasm-2t', 'keras-1t', 'keras-2t', 'tfjs-node-1t', 'tfjs-node'];
/**
 * A quick run times descent only: Keras and tfjs-node train the CNN in its step parity, and their
 * epoch code is the MLP's (each costs a TensorFlow start-up, ~10 s in the tests).
 */
export const CNN_QUICK_EPOCH_ENGINES: readonly EngineId[] = ['descent-wasm'];
/** Keras with one thread, as in the step parity: its arithmetic in one order, so a seed's run repeats. */
export const CNN_ACCURACY_ENGINES: readonly EngineId[] = ['descent-wasm', 'keras-1t'];
export const CNN_ORACLES: readonly OracleId[] = ['keras', 'tfjs-node'];
/** Step parity over 50 steps, as the issue asks, in quick and full runs alike. */
export const CNN_STEPS = 50;
/** The largest relative loss difference the CNN's step parity allows, against either oracle. */
export const CNN_STEP_GOAL = 1e-4;

export const CNN_NOTE =
  "The tutorial CNN. Left out: descent's reference TS kernels (minutes per epoch on convolutions), tfjs-wasm " +
  "(Conv2DBackpropFilter is not registered for its backend, so it cannot train a CNN) and tfjs-cpu (over 6,000 s for one epoch). " +
  'Step parity runs descent on its WASM kernels only (the TS kernels agree with them to float32 rounding: engine tests). ' +
  "Over 50 Adam steps this CNN amplifies float32 rounding: Keras is also trained a second time on TensorFlow's Eigen kernels " +
  '(TF_ENABLE_ONEDNN_OPTS=0; the same weights, batches and Adam, gradients at equal weights within rounding of oneDNN\'s), and the two ' +
  'Keras runs drift apart as far as descent does from Keras; descent is reported against that second run too.';

const cnnContext = (context: SuiteContext): SuiteContext => ({ ...context, model: CNN });

export async function runCnnSuite(context: SuiteContext): Promise<{ layers: string; epoch: EpochSuiteResult; steps: StepsSuiteResult }> {
  const cnn = cnnContext(context);
  const epoch = await runEpochSuite(cnn, context.quick ? CNN_QUICK_EPOCH_ENGINES : CNN_EPOCH_ENGINES);
  const steps = await runStepsSuite(cnn, { oracles: CNN_ORACLES, steps: CNN_STEPS, goal: CNN_STEP_GOAL, descentBackends: ['wasm'], kerasEigen: true, float64: true });
  return { layers: describeModel(CNN), epoch: { ...epoch, note: `${CNN_NOTE} ${epoch.note}` }, steps };
}

export async function runCnnParitySuite(context: SuiteContext): Promise<AccuracySuiteResult> {
  return runAccuracySuite(cnnContext(context), CNN_ACCURACY_ENGINES);
}

/**
 * How a Keras user stops the tutorial CNN in time: hold out the last tenth of the training images,
 * and EarlyStopping(monitor='val_loss', patience=3, restore_best_weights=True) over at most 10
 * epochs. The test set plays no part in choosing the epoch.
 */
export const CNN_EARLY_STOPPING = { validationSplit: 0.1, patience: 3 } as const;

export async function runCnnEarlyStoppingSuite(context: SuiteContext): Promise<AccuracySuiteResult> {
  return runAccuracySuite(cnnContext(context), CNN_ACCURACY_ENGINES, CNN_EARLY_STOPPING);
}
