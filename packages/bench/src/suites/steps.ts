/** Step parity against two tfjs backends; see step-parity.ts for what one run does. */
import { runWorker } from '../child.js';
import type { StepsRun, StepsSuiteResult } from '../types.js';
import { MODEL } from '../types.js';
import type { SuiteContext } from './context.js';

export const STEPS_NOTE =
  'tfjs builds the model and its fresh weights are carried into descent in the tfjs Layers format; both ' +
  'engines then take one Adam step per batch on the first steps x 32 training images in order (no ' +
  'shuffling), fed the same float32 pixels. "keras" is descent\'s default Adam (epsilon added to sqrt(v)); ' +
  '"tfjs" is descent\'s Adam with form: \'tfjs\' (epsilon added to the bias-corrected sqrt(v-hat), and ' +
  'beta1^t, beta2^t accumulated in float32 as tfjs does). Loss: descent fuses softmax and cross-entropy; ' +
  'tfjs clips the softmax output to [1e-7, 1 - 1e-7] before the log, which changes anything only for ' +
  'samples whose label probability falls outside that range (counted above).';

export function stepsPlan(quick: boolean): number {
  return quick ? 20 : 200;
}

export async function runStepsSuite(context: SuiteContext): Promise<StepsSuiteResult> {
  const steps = stepsPlan(context.quick);
  const runs: StepsRun[] = [];
  for (const tfjsBackend of ['wasm', 'cpu'] as const) {
    const run = await runWorker<StepsRun>({ kind: 'steps', tfjsBackend, files: context.files, seed: 1, steps });
    runs.push(run);
    for (const variant of run.variants) {
      context.log(
        `steps: descent-${variant.descentBackend} (adam ${variant.adamForm}) vs tfjs-${run.tfjsBackend}, ${steps} steps: ` +
          `max relative loss difference ${variant.maxRelativeLossDifference.toExponential(2)}, ` +
          `max abs weight difference ${variant.maxAbsWeightDifference.toExponential(2)}`,
      );
    }
  }
  // How closely two tfjs backends agree with each other, from the same seeded initial weights.
  const [wasmRun, cpuRun] = runs;
  const tfjsBackendsDifference = Math.max(...wasmRun.tfjsLosses.map((loss, i) => Math.abs(loss - cpuRun.tfjsLosses[i]) / Math.abs(cpuRun.tfjsLosses[i])));
  // The headline: descent (wasm, asked first) with tfjs's Adam arithmetic against tfjs's wasm backend.
  const headline = runs[0];
  const variant = headline.variants.find((v) => v.adamForm === 'tfjs')!;
  return {
    steps,
    batchSize: MODEL.batchSize,
    note: STEPS_NOTE,
    runs,
    tfjsBackendsDifference,
    primary: {
      tfjsBackend: headline.tfjsBackend,
      descentBackend: variant.descentBackend,
      adamForm: variant.adamForm,
      maxRelativeLossDifference: variant.maxRelativeLossDifference,
      maxAbsWeightDifference: variant.maxAbsWeightDifference,
    },
  };
}
