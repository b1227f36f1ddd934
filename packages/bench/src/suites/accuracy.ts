/**
 * Accuracy parity: descent (wasm) and the references (Keras, tfjs-node, tfjs's wasm backend) each
 * train the bench model for several epochs from several seeds; the test accuracies' means must
 * agree within half a point.
 */
import { runTask } from '../child.js';
import { mean, standardDeviation } from '../stats.js';
import { ENGINE_LABELS, type AccuracyEngineResult, type AccuracyRun, type AccuracySuiteResult, type EngineId } from '../types.js';
import { modelTag, type SuiteContext } from './context.js';

/** descent first; the others are compared with it. */
export const ACCURACY_ENGINES: readonly EngineId[] = ['descent-wasm', 'keras-2t', 'tfjs-node', 'tfjs-wasm'];

export const ACCURACY_NOTE =
  'Test accuracy after training from scratch (batch 32, shuffled every epoch), one process per run. ' +
  'The seed sets each engine\'s initialisation and shuffling, so runs repeat. Keras: keras.utils.set_random_seed, and ' +
  'a numpy permutation per epoch fed to fit one epoch at a time (with a global seed set, Keras 3\'s fit(shuffle=True) ' +
  'repeats one order in every epoch, which an unseeded run would not). tfjs: its kernel initialisers, and a seeded ' +
  'Math.random in its worker process, since tfjs shuffles with Math.random and takes no seed.';

/** A quick run trains one epoch, or three to give early stopping something to choose from. */
export function accuracyPlan(quick: boolean, earlyStopping = false): { epochs: number; seeds: number[] } {
  return quick ? { epochs: earlyStopping ? 3 : 1, seeds: [1] } : { epochs: 10, seeds: [1, 2, 3] };
}

/** Keras's way to stop in time: a validation split, and EarlyStopping on val_loss that restores the best epoch's weights. */
export interface EarlyStoppingPlan {
  validationSplit: number;
  patience: number;
}

/** `compared`: descent first, then the references. */
export async function runAccuracySuite(
  context: SuiteContext,
  compared: readonly EngineId[] = ACCURACY_ENGINES,
  earlyStopping?: EarlyStoppingPlan,
): Promise<AccuracySuiteResult> {
  const { epochs, seeds } = accuracyPlan(context.quick, earlyStopping !== undefined);
  const engines: AccuracyEngineResult[] = [];
  for (const engine of compared) {
    const row: AccuracyEngineResult = { engine, label: ENGINE_LABELS[engine], available: true, seeds, accuracies: [], secondsPerRun: [], clippedFraction: [] };
    engines.push(row);
    for (const seed of seeds) {
      const run = await runTask<AccuracyRun>({
        kind: 'accuracy', engine, model: context.model, files: context.files, seed, epochs,
        ...(earlyStopping ? { validationSplit: earlyStopping.validationSplit, earlyStoppingPatience: earlyStopping.patience } : {}),
      });
      if (run.available === false) {
        Object.assign(row, { available: false, reason: run.reason, seeds: [] });
        context.log(`${modelTag(context)}parity: ${engine}: not available: ${run.reason}`);
        break;
      }
      row.backend = run.backend;
      if (run.fallbackReason) row.fallbackReason = run.fallbackReason;
      row.accuracies.push(run.testAccuracy);
      if (run.epochAccuracies?.length) (row.epochAccuracies ??= []).push(run.epochAccuracies);
      row.secondsPerRun.push(run.seconds);
      row.clippedFraction.push(run.clippedFraction);
      const ran = run.epochAccuracies?.length ?? epochs;
      if (earlyStopping) {
        (row.epochsRun ??= []).push(ran);
        (row.keptEpochs ??= []).push((run.restoredEpoch ?? ran - 1) + 1);
        (row.valLosses ??= []).push(run.valLosses ?? []);
      }
      const kept = earlyStopping ? `, weights of epoch ${(run.restoredEpoch ?? ran - 1) + 1}` : '';
      context.log(
        `${modelTag(context)}parity: ${engine} seed ${seed}: test accuracy ${run.testAccuracy.toFixed(4)} after ${ran} epoch${ran > 1 ? 's' : ''}${kept} ` +
          `(${run.seconds.toFixed(1)} s)` + (run.fallbackReason ? ` (ran on the ${run.backend} kernels: ${run.fallbackReason})` : ''),
      );
    }
    if (row.available) Object.assign(row, { mean: mean(row.accuracies), sd: standardDeviation(row.accuracies) });
    if (row.available && !earlyStopping && row.epochAccuracies?.length === row.accuracies.length) {
      row.bestMean = mean(row.epochAccuracies.map((curve) => Math.max(...curve)));
    }
  }
  const [descent, ...references] = engines;
  return {
    epochs,
    ...(earlyStopping ? { earlyStopping } : {}),
    trainSamples: context.trainSamples,
    testSamples: context.testSamples,
    note: ACCURACY_NOTE,
    engines,
    differences: references
      .filter((row) => row.available && descent.available)
      .map((row) => ({ engine: row.engine, label: row.label, points: (descent.mean! - row.mean!) * 100 })),
  };
}
