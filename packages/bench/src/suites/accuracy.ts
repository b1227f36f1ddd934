/**
 * Accuracy parity: descent (wasm) and tfjs (wasm backend) each train the bench model for several
 * epochs from several seeds; the test accuracies' means must agree within half a point.
 */
import { runWorker } from '../child.js';
import { mean, standardDeviation } from '../stats.js';
import { ENGINE_LABELS, type AccuracyEngineResult, type AccuracyRun, type AccuracySuiteResult } from '../types.js';
import type { SuiteContext } from './context.js';

export const ACCURACY_NOTE =
  'Test accuracy after training from scratch (batch 32, shuffled every epoch), one process per run. ' +
  'The seed sets each engine\'s initialisation and shuffling (tfjs: its kernel initialisers, and a seeded ' +
  'Math.random in its worker process, since tfjs shuffles with Math.random and takes no seed), so runs repeat.';

export function accuracyPlan(quick: boolean): { epochs: number; seeds: number[] } {
  return quick ? { epochs: 1, seeds: [1] } : { epochs: 10, seeds: [1, 2, 3] };
}

export async function runAccuracySuite(context: SuiteContext): Promise<AccuracySuiteResult> {
  const { epochs, seeds } = accuracyPlan(context.quick);
  const engines: AccuracyEngineResult[] = [];
  for (const engine of ['descent-wasm', 'tfjs-wasm'] as const) {
    const runs: AccuracyRun[] = [];
    for (const seed of seeds) {
      const run = await runWorker<AccuracyRun>({ kind: 'accuracy', engine, files: context.files, seed, epochs });
      runs.push(run);
      context.log(
        `parity: ${engine} seed ${seed}: test accuracy ${run.testAccuracy.toFixed(4)} after ${epochs} epoch${epochs > 1 ? 's' : ''} ` +
          `(${run.seconds.toFixed(1)} s)` + (run.fallbackReason ? ` (ran on the ${run.backend} kernels: ${run.fallbackReason})` : ''),
      );
    }
    const accuracies = runs.map((run) => run.testAccuracy);
    engines.push({
      engine,
      label: ENGINE_LABELS[engine],
      backend: runs[0].backend,
      ...(runs[0].fallbackReason ? { fallbackReason: runs[0].fallbackReason } : {}),
      seeds,
      accuracies,
      mean: mean(accuracies),
      sd: standardDeviation(accuracies),
      secondsPerRun: runs.map((run) => run.seconds),
      clippedFraction: runs.map((run) => run.clippedFraction),
    });
  }
  return {
    epochs,
    trainSamples: context.trainSamples,
    testSamples: context.testSamples,
    note: ACCURACY_NOTE,
    engines,
    differencePoints: (engines[0].mean - engines[1].mean) * 100,
  };
}
