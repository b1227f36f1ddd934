/** Step parity against every oracle that runs here; see step-parity.ts for what one run does. */
import { runWorker } from '../child.js';
import {
  ENGINE_LABELS, MODEL, ORACLES, ORACLE_ADAM_FORMS, ORACLE_ENGINES, type OracleDifference, type OracleId, type StepsHeadline, type StepsRun,
  type StepsSuiteResult, type Unavailable,
} from '../types.js';
import { modelTag, type SuiteContext } from './context.js';

/** The largest relative loss difference each oracle's target allows descent. */
export const STEP_PARITY_GOALS: Readonly<Record<OracleId, number>> = { keras: 1e-5, 'tfjs-node': 1e-4, 'tfjs-wasm': 1e-4, 'tfjs-cpu': 1e-4 };

export const STEPS_NOTE =
  'The oracle builds the model and its fresh weights are carried into descent (tfjs: in the tfjs Layers format; ' +
  'Keras: model.weights as float32); both engines then take one Adam step per batch on the first steps x 32 ' +
  'training images in order (no shuffling), fed bit-identical float32 pixels (Keras: numpy float32 / 255). Keras runs ' +
  'with one thread. "keras" is descent\'s default Adam (epsilon added to sqrt(v), as Keras does); ' +
  '"tfjs" is descent\'s Adam with form: \'tfjs\' (epsilon added to the bias-corrected sqrt(v-hat), and ' +
  'beta1^t, beta2^t accumulated in float32 as tfjs does). Loss: descent fuses softmax and cross-entropy, and so ' +
  'does Keras (it looks through the softmax to its logits); tfjs clips the softmax output to [1e-7, 1 - 1e-7] ' +
  'before the log, which changes anything only for samples whose label probability falls outside that range (counted above).';

export function stepsPlan(quick: boolean): number {
  return quick ? 50 : 200;
}

function oracleLabel(oracle: OracleId): string {
  return oracle === 'keras' ? 'Keras' : ENGINE_LABELS[ORACLE_ENGINES[oracle]];
}

export interface StepsOptions {
  oracles?: readonly OracleId[];
  steps?: number;
  /** One goal for every oracle (default STEP_PARITY_GOALS). */
  goal?: number;
  /** descent's kernels to compare (default wasm and ts). */
  descentBackends?: Array<'wasm' | 'ts'>;
  /** Also train Keras on TensorFlow's Eigen kernels, for the scale of float32 rounding (one more TensorFlow start). */
  kerasEigen?: boolean;
  /** Also train descent in float64 from Keras's weights, for the scale of float32 rounding whatever Keras's kernels. */
  float64?: boolean;
}

export async function runStepsSuite(context: SuiteContext, { oracles = ORACLES, steps = stepsPlan(context.quick), goal, descentBackends, kerasEigen = false, float64 = false }: StepsOptions = {}): Promise<StepsSuiteResult> {
  const runs: StepsRun[] = [];
  const unavailable: StepsSuiteResult['unavailable'] = [];
  for (const oracle of oracles) {
    const run = await runWorker<StepsRun | Unavailable>({
      kind: 'steps', oracle, model: context.model, files: context.files, seed: 1, steps, crossCheckTfjsNode: oracle === 'keras',
      ...(kerasEigen && oracle === 'keras' ? { crossCheckKerasEigen: true } : {}), ...(float64 && oracle === 'keras' ? { crossCheckFloat64: true } : {}),
      ...(descentBackends ? { descentBackends } : {}),
    });
    if (!run.available) {
      unavailable.push({ oracle, reason: run.reason });
      context.log(`steps: ${oracle}: not available: ${run.reason}`);
      continue;
    }
    runs.push(run);
    const eigen = run.kerasEigenFromKeras;
    if (eigen) {
      context.log(
        `${modelTag(context)}steps: Keras on Eigen kernels (oneDNN off) vs Keras, ${steps} steps: ` +
          (eigen.available ? `max relative loss difference ${eigen.maxRelativeLossDifference.toExponential(2)} at step ${eigen.worstStep}` : `not available: ${eigen.reason}`),
      );
      for (const variant of run.variants.filter((v) => v.againstKerasEigen)) {
        context.log(
          `${modelTag(context)}steps: descent-${variant.descentBackend} (adam ${variant.adamForm}) vs Keras on Eigen kernels, ${steps} steps: ` +
            `max relative loss difference ${variant.againstKerasEigen!.maxRelativeLossDifference.toExponential(2)} at step ${variant.againstKerasEigen!.worstStep}`,
        );
      }
    }
    if (run.float64FromKeras) {
      context.log(
        `${modelTag(context)}steps: descent in float64 vs Keras, ${steps} steps: ` +
          `max relative loss difference ${run.float64FromKeras.maxRelativeLossDifference.toExponential(2)} at step ${run.float64FromKeras.worstStep}`,
      );
    }
    for (const variant of run.variants) {
      context.log(
        `${modelTag(context)}steps: descent-${variant.descentBackend} (adam ${variant.adamForm}) vs ${oracle}, ${steps} steps: ` +
          `max relative loss difference ${variant.maxRelativeLossDifference.toExponential(2)}, ` +
          `max abs weight difference ${variant.maxAbsWeightDifference.toExponential(2)}`,
      );
    }
  }
  return {
    steps,
    batchSize: MODEL.batchSize,
    note: STEPS_NOTE,
    runs,
    unavailable,
    oracleDifferences: oracleDifferences(runs),
    headlines: runs.map((run) => headline(run, goal ?? STEP_PARITY_GOALS[run.oracle])),
  };
}

/** descent (wasm, asked for first) in the oracle's own Adam arithmetic, against the oracle. */
function headline(run: StepsRun, goal: number): StepsHeadline {
  const adamForm = ORACLE_ADAM_FORMS[run.oracle];
  const variant = run.variants.find((v) => v.adamForm === adamForm)!;
  return {
    oracle: run.oracle,
    oracleBackend: run.oracleBackend,
    descentBackend: variant.descentBackend,
    adamForm,
    maxRelativeLossDifference: variant.maxRelativeLossDifference,
    worstStep: variant.worstStep,
    maxAbsWeightDifference: variant.maxAbsWeightDifference,
    goal,
  };
}

/**
 * How far the oracles are from one another over the same steps: the tfjs backends start from the
 * same seeded weights; tfjs-node also trains from Keras's weights in the Keras run.
 */
function oracleDifferences(runs: StepsRun[]): OracleDifference[] {
  const differences: OracleDifference[] = [];
  const wasm = runs.find((run) => run.oracle === 'tfjs-wasm');
  for (const run of runs) {
    if (wasm && run !== wasm && run.oracle !== 'keras') {
      const relative = run.oracleLosses.map((loss, i) => Math.abs(loss - wasm.oracleLosses[i]) / Math.abs(wasm.oracleLosses[i]));
      differences.push({
        between: [oracleLabel(run.oracle), oracleLabel('tfjs-wasm')],
        why: 'the same tfjs Adam and initial weights on different kernels',
        maxRelativeLossDifference: Math.max(...relative),
      });
    }
    const cross = run.tfjsNodeFromKeras;
    if (cross?.available) {
      differences.push({
        between: ['Keras', oracleLabel('tfjs-node')],
        why: "TensorFlow's kernels in both, from Keras's initial weights; Adam adds epsilon to sqrt(v) in Keras and to sqrt(v-hat) in tfjs",
        maxRelativeLossDifference: cross.maxRelativeLossDifference,
        maxAbsWeightDifference: cross.maxAbsWeightDifference,
      });
    }
    const eigen = run.kerasEigenFromKeras;
    if (eigen?.available) {
      differences.push({
        between: ['Keras', 'Keras on Eigen kernels (oneDNN off)'],
        why: "the same Keras, Adam, batches and initial weights; only TensorFlow's CPU kernels differ",
        maxRelativeLossDifference: eigen.maxRelativeLossDifference,
        worstStep: eigen.worstStep,
        maxAbsWeightDifference: eigen.maxAbsWeightDifference,
      });
    }
    if (run.float64FromKeras) {
      differences.push({
        between: ['Keras', "descent in float64 (reference kernels, Keras's Adam)"],
        why: 'the same steps in exact-ish arithmetic: how far float32 rounding carries any float32 run, Keras included',
        maxRelativeLossDifference: run.float64FromKeras.maxRelativeLossDifference,
        worstStep: run.float64FromKeras.worstStep,
        maxAbsWeightDifference: run.float64FromKeras.maxAbsWeightDifference,
      });
    }
    const headlineVariant = run.variants.find((v) => v.adamForm === ORACLE_ADAM_FORMS[run.oracle] && v.againstKerasEigen);
    if (eigen?.available && headlineVariant?.againstKerasEigen) {
      differences.push({
        between: [`descent (${headlineVariant.descentBackend}, Adam form '${headlineVariant.adamForm}')`, 'Keras on Eigen kernels (oneDNN off)'],
        why: "descent's kernels against TensorFlow's Eigen ones, from the same weights",
        ...headlineVariant.againstKerasEigen,
      });
    }
  }
  return differences;
}
