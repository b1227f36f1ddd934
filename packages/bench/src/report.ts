/** The markdown summary of a bench result: machine, targets, then one table per suite. */
import { exp, mib, ms, percent, ratio, seconds, table } from './format.js';
import { median } from './stats.js';
import type { AccuracySuiteResult, BenchResult, EpochSuiteResult, StepsSuiteResult, TargetCheck } from './types.js';

export const SECTION_TITLES = {
  targets: 'Targets',
  kernels: 'GEMM kernels',
  epoch: 'One training epoch',
  parity: 'Accuracy parity',
  steps: 'Step parity',
} as const;

export function renderMarkdown(result: BenchResult): string {
  const { machine } = result;
  const lines = [
    `# descent vs TensorFlow.js${result.quick ? ' (quick run on the fixture subset)' : ''}`,
    '',
    `- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.platform}, Node ${machine.node}`,
    `- Date: ${machine.date}`,
    `- Command: \`${result.command}\` (${Math.round(result.wallSeconds)} s in all)`,
    `- Data: Fashion-MNIST, ${result.dataset.trainSamples.toLocaleString('en-US')} training and ${result.dataset.testSamples.toLocaleString('en-US')} test images`,
    `- Model: ${result.model.layers}; Adam (lr ${result.model.learningRate}, beta1 ${result.model.beta1}, beta2 ${result.model.beta2}, epsilon ${result.model.epsilon}), batch ${result.model.batchSize}, ${result.model.loss}`,
    '',
  ];
  if (result.targets.length > 0) lines.push(...targetsSection(result.targets, result.quick), '');
  if (result.kernelsMarkdown !== undefined) lines.push(`## ${SECTION_TITLES.kernels}`, '', result.kernelsMarkdown.trim(), '');
  if (result.epoch) lines.push(...epochSection(result.epoch), '');
  if (result.parity) lines.push(...paritySection(result.parity), '');
  if (result.steps) lines.push(...stepsSection(result.steps), '');
  return `${lines.join('\n').trimEnd()}\n`;
}

function targetsSection(targets: TargetCheck[], quick: boolean): string[] {
  return [
    `## ${SECTION_TITLES.targets}`,
    '',
    ...(quick ? ['Quick runs use the 2,000-image fixture and a few steps; the goals are meant for full runs.', ''] : []),
    table(['target', 'goal', 'measured', 'met'], targets.map((t) => [t.name, t.goal, t.measured, t.met ? 'yes' : '**no**'])),
  ];
}

function epochSection(epoch: EpochSuiteResult): string[] {
  const rows = epoch.engines.map((row) => {
    if (!row.available) return [row.label, 'not available', '0', '', '', '', '', '', ''];
    const s = row.secondsPerEpoch!;
    return [
      row.label,
      row.backend + (row.fallbackReason ? ' (fell back)' : ''),
      String(row.runs),
      seconds(s.median),
      `${seconds(s.min)} – ${seconds(s.max)}`,
      ratio(row.ratioToDescentWasm ?? NaN),
      mib(row.peakRssMiB!),
      ms(row.inferenceMs!),
      percent(median(row.testAccuracy)),
    ];
  });
  const notes = epoch.engines.flatMap((row) => [
    ...(row.available ? [] : [`- ${row.engine}: not available: ${row.reason}`]),
    ...(row.runsNote ? [`- ${row.engine}: ${row.runsNote}.`] : []),
    ...(row.fallbackReason ? [`- ${row.engine} ran on the ${row.backend} kernels: ${row.fallbackReason}.`] : []),
  ]);
  return [
    `## ${SECTION_TITLES.epoch}`,
    '',
    `${epoch.trainSamples.toLocaleString('en-US')} training images, batch ${epoch.batchSize}; inference on ${epoch.testSamples.toLocaleString('en-US')} test images.`,
    '',
    table(
      ['engine', 'backend', 'runs', 's/epoch (median)', 'min – max', 'time vs descent (wasm)', 'peak RSS after the epoch (MiB)', 'inference (ms)', 'test accuracy after 1 epoch (median)'],
      rows,
      [false, false, true, true, true, true, true, true, true],
    ),
    '',
    ...notes,
    ...(notes.length ? [''] : []),
    epoch.note,
  ];
}

function paritySection(parity: AccuracySuiteResult): string[] {
  const rows = parity.engines.map((row) => [
    row.label,
    row.backend + (row.fallbackReason ? ' (fell back)' : ''),
    `${percent(row.mean)} ± ${(row.sd * 100).toFixed(2)}`,
    row.accuracies.map((a) => percent(a)).join(', '),
    row.secondsPerRun.map((s) => seconds(s)).join(', '),
    row.clippedFraction.map((f) => percent(f, 1)).join(', '),
  ]);
  return [
    `## ${SECTION_TITLES.parity}`,
    '',
    `${parity.epochs} epoch${parity.epochs > 1 ? 's' : ''} x ${parity.engines[0].seeds.length} seed${parity.engines[0].seeds.length > 1 ? 's' : ''} (${parity.engines[0].seeds.join(', ')}), test accuracy on ${parity.testSamples.toLocaleString('en-US')} images.`,
    '',
    table(
      ['engine', 'backend', 'test accuracy (mean ± sd)', 'per seed', 'training seconds per run', 'test samples tfjs would clip'],
      rows,
      [false, false, true, true, true, true],
    ),
    '',
    `Difference of means (descent - tfjs): ${parity.differencePoints >= 0 ? '+' : ''}${parity.differencePoints.toFixed(2)} percentage points.`,
    '',
    parity.note,
  ];
}

function stepsSection(steps: StepsSuiteResult): string[] {
  const rows = steps.runs.flatMap((run) =>
    run.variants.map((variant) => [
      `tfjs (${run.tfjsBackend})`,
      `descent (${variant.descentBackend})${variant.fallbackReason ? ' (fell back)' : ''}`,
      variant.adamForm,
      exp(variant.maxRelativeLossDifference),
      String(variant.worstStep),
      exp(variant.maxAbsWeightDifference),
    ]),
  );
  const first = steps.runs[0];
  return [
    `## ${SECTION_TITLES.steps}`,
    '',
    `${steps.steps} Adam steps of batch ${steps.batchSize} from tfjs's initial weights (${first.importedWeights.map((w) => `${w.name} [${w.shape.join('x')}]`).join(', ')}).`,
    '',
    table(['oracle', 'engine', 'Adam arithmetic', 'max relative loss difference', 'at step', 'max abs weight difference'], rows, [false, false, false, true, true, true]),
    '',
    `Headline: descent (${steps.primary.descentBackend}) with Adam form '${steps.primary.adamForm}' against tfjs (${steps.primary.tfjsBackend}): ` +
      `max relative loss difference ${exp(steps.primary.maxRelativeLossDifference)}, max abs weight difference ${exp(steps.primary.maxAbsWeightDifference)} ` +
      `(largest tfjs weight ${first.maxAbsWeight.toFixed(3)}). For scale, tfjs (wasm) and tfjs (cpu) differ by up to ${exp(steps.tfjsBackendsDifference)} ` +
      `over the same steps. Samples whose label probability tfjs clipped: ${steps.runs.map((r) => `${r.clippedSamples} (${r.tfjsBackend})`).join(', ')} of ${steps.steps * steps.batchSize}.`,
    '',
    steps.note,
  ];
}
