/** The markdown summary of a bench result: machine, targets, then one table per suite. */
import { exp, mib, ms, percent, ratio, seconds, table } from './format.js';
import { describeCpu, formatCoreSpeeds } from './machine.js';
import { median } from './stats.js';
import { ENGINES, ENGINE_LABELS, ORACLE_ENGINES, type AccuracyEngineResult, type AccuracySuiteResult, type BenchResult, type EngineId, type EpochEngineResult, type EpochSuiteResult, type OracleId, type StepsRun, type StepsSuiteResult, type TargetCheck } from './types.js';

export const SECTION_TITLES = {
  headline: 'descent against TensorFlow',
  targets: 'Targets',
  kernels: 'GEMM kernels',
  epoch: 'One training epoch',
  parity: 'Accuracy parity',
  steps: 'Step parity',
  conv: 'Convolution kernels',
  cnn: 'The tutorial CNN against TensorFlow',
  cnnEpoch: 'The tutorial CNN: one training epoch',
  cnnParity: 'The tutorial CNN: accuracy parity',
  cnnEarly: 'The tutorial CNN: accuracy with a validation split and early stopping',
  cnnSteps: 'The tutorial CNN: step parity',
} as const;

export function renderMarkdown(result: BenchResult): string {
  const lines = [`# descent vs TensorFlow${result.quick ? ' (quick run on the fixture subset)' : ''}`, '', ...runLines(result), ''];
  const headline = headlineTable(result);
  if (headline) lines.push(`## ${SECTION_TITLES.headline}`, '', headline, '');
  if (result.targets.length > 0) lines.push(...targetsSection(result.targets, result.quick), '');
  if (result.kernelsMarkdown !== undefined) lines.push(`## ${SECTION_TITLES.kernels}`, '', result.kernelsMarkdown.trim(), '');
  if (result.epoch) lines.push(...epochSection(result.epoch), '');
  if (result.parity) lines.push(...paritySection(result.parity), '');
  if (result.steps) lines.push(...stepsSection(result.steps), '');
  const cnn = cnnTable(result);
  if (cnn) lines.push(`## ${SECTION_TITLES.cnn}`, '', `Model: ${result.cnn!.layers}; the same Adam, batch and data as above.`, '', cnn, '');
  if (result.convMarkdown !== undefined) lines.push(`## ${SECTION_TITLES.conv}`, '', result.convMarkdown.trim(), '');
  if (result.cnn?.epoch) lines.push(...epochSection(result.cnn.epoch, SECTION_TITLES.cnnEpoch), '');
  if (result.cnn?.parity) lines.push(...paritySection(result.cnn.parity, SECTION_TITLES.cnnParity), '');
  if (result.cnn?.early) lines.push(...paritySection(result.cnn.early, SECTION_TITLES.cnnEarly), '');
  if (result.cnn?.steps) lines.push(...stepsSection(result.cnn.steps, SECTION_TITLES.cnnSteps), '');
  return `${lines.join('\n').trimEnd()}\n`;
}

/** The block the README shows: how the run was made, the headline table and the targets, headings one level down. */
export function renderReadmeBlock(result: BenchResult, fullResults: string): string {
  const lines = [...runLines(result), ''];
  const headline = headlineTable(result);
  if (headline) lines.push(headline, '');
  const cnn = cnnTable(result);
  if (cnn) lines.push(`${result.cnn!.layers}:`, '', cnn, '');
  if (result.targets.length > 0) lines.push(...targetsSection(result.targets, result.quick).map((line) => (line.startsWith('## ') ? `#${line}` : line)), '');
  lines.push(`Every table of this run (GEMM kernels, epochs, accuracy and step parity, with their notes): [${fullResults}](${fullResults}).`);
  return `${lines.join('\n').trimEnd()}\n`;
}

function runLines(result: BenchResult): string[] {
  const { machine } = result;
  return [
    `- Machine: ${describeCpu(machine)}, ${machine.cores} cores, ${machine.platform}, Node ${machine.node}`,
    `- Date: ${machine.date}`,
    ...(machine.coreSpeeds
      ? [`- Core speeds (one loop pinned to each core in turn, relative to the fastest; where each suite started, and at the end): ${Object.entries(machine.coreSpeeds).map(([when, speeds]) => `${when} ${formatCoreSpeeds(speeds)}`).join('; ')}`]
      : []),
    `- Command: \`${result.command}\` (${Math.round(result.wallSeconds)} s in all)`,
    `- Data: Fashion-MNIST, ${result.dataset.trainSamples.toLocaleString('en-US')} training and ${result.dataset.testSamples.toLocaleString('en-US')} test images`,
    `- Model: ${result.model.layers}; Adam (lr ${result.model.learningRate}, beta1 ${result.model.beta1}, beta2 ${result.model.beta2}, epsilon ${result.model.epsilon}), batch ${result.model.batchSize}, ${result.model.loss}`,
  ];
}

/**
 * One row per engine, TensorFlow itself first: seconds per epoch, inference, accuracy after the
 * parity suite's epochs, and how closely descent follows it step by step.
 */
export function headlineTable(result: BenchResult): string | undefined {
  const { epoch, parity, steps } = result;
  if (!epoch && !parity && !steps) return undefined;
  const inference = { header: `inference on ${result.dataset.testSamples.toLocaleString('en-US')} images (ms)`, cell: (row: EpochEngineResult) => ms(row.inferenceMs!) };
  return engineTable(ENGINES.filter((id) => id !== 'descent-ts'), result, inference);
}

/** The CNN's headline: one row per engine of its epoch suite, with accuracy and step parity where measured. */
export function cnnTable(result: BenchResult): string | undefined {
  const { cnn } = result;
  if (!cnn || (!cnn.epoch && !cnn.parity && !cnn.steps)) return undefined;
  const ids = cnn.epoch?.engines.map((row) => row.engine) ?? cnn.parity?.engines.map((row) => row.engine) ?? ['descent-wasm'];
  return engineTable(ids, cnn, { header: 'peak RSS (MiB)', cell: (row) => mib(row.peakRssMiB!) });
}

/** Seconds per epoch, ratio, one more epoch figure, accuracy and step parity, per engine. */
function engineTable(
  ids: readonly EngineId[],
  { epoch, parity, steps }: { epoch?: EpochSuiteResult; parity?: AccuracySuiteResult; steps?: StepsSuiteResult },
  extra: { header: string; cell: (row: EpochEngineResult) => string },
): string {
  const rows = ids.map((id) => {
    const timing = epoch?.engines.find((row) => row.engine === id);
    const accuracy = parity?.engines.find((row) => row.engine === id);
    const oracle = steps?.headlines.find((h) => ORACLE_ENGINES[h.oracle] === id);
    const measured = timing?.available && timing.secondsPerEpoch;
    return [
      ENGINE_LABELS[id],
      measured ? seconds(timing.secondsPerEpoch!.median) : timing ? 'not available' : '–',
      measured ? ratio(timing.ratioToDescentWasm ?? NaN) : '–',
      measured ? extra.cell(timing) : '–',
      accuracyCell(accuracy),
      oracle ? `${exp(oracle.maxRelativeLossDifference)} (Adam '${oracle.adamForm}')` : '–',
    ];
  });
  return table(
    ['engine', 's/epoch', 'time vs descent', extra.header, accuracyHeader(parity), `descent's step parity: max relative loss difference over ${steps?.steps ?? '–'} steps`],
    rows,
    [false, true, true, true, true, true],
  );
}

function accuracyCell(accuracy: AccuracyEngineResult | undefined): string {
  if (!accuracy) return '–';
  if (!accuracy.available) return 'not available';
  return `${percent(accuracy.mean!)}${accuracy.accuracies.length > 1 ? ` ± ${(accuracy.sd! * 100).toFixed(2)}` : ''}`;
}

function accuracyHeader(parity: AccuracySuiteResult | undefined): string {
  if (!parity) return 'test accuracy';
  const seeds = parity.engines[0].seeds.length;
  return `test accuracy after ${parity.epochs} epoch${parity.epochs > 1 ? 's' : ''} (${seeds > 1 ? `mean ± sd of ${seeds} seeds` : '1 seed'})`;
}

function targetsSection(targets: TargetCheck[], quick: boolean): string[] {
  return [
    `## ${SECTION_TITLES.targets}`,
    '',
    ...(quick ? ['Quick runs use the 2,000-image fixture and a few steps; the goals are meant for full runs.', ''] : []),
    table(['target', 'goal', 'measured', 'met'], targets.map((t) => [t.name, t.goal, t.measured, t.met ? 'yes' : '**no**'])),
  ];
}

function epochSection(epoch: EpochSuiteResult, title: string = SECTION_TITLES.epoch): string[] {
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
    ...(row.inferenceFromBytesMs !== undefined ? [`- ${row.label}: inference from the test set's bytes (copied into the engine's batch buffer and scaled in each call): ${ms(row.inferenceFromBytesMs)} ms.`] : []),
  ]);
  return [
    `## ${title}`,
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

function paritySection(parity: AccuracySuiteResult, title: string = SECTION_TITLES.parity): string[] {
  const rows = parity.engines.map((row) =>
    row.available
      ? [
          row.label,
          row.backend + (row.fallbackReason ? ' (fell back)' : ''),
          `${percent(row.mean!)} ± ${(row.sd! * 100).toFixed(2)}`,
          row.accuracies.map((a) => percent(a)).join(', '),
          row.secondsPerRun.map((s) => seconds(s)).join(', '),
          row.clippedFraction.map((f) => percent(f, 1)).join(', '),
        ]
      : [row.label, 'not available', '', '', '', ''],
  );
  const seeds = parity.engines[0].seeds;
  const plan = parity.earlyStopping;
  const runs = `${seeds.length} seed${seeds.length > 1 ? 's' : ''} (${seeds.join(', ')}), test accuracy on ${parity.testSamples.toLocaleString('en-US')} images`;
  const intro = plan
    ? `At most ${parity.epochs} epochs on the first ${percent(1 - plan.validationSplit, 0)} of the training images, the last ${percent(plan.validationSplit, 0)} held out ` +
      `for val_loss; training stops after ${plan.patience} epochs without a better val_loss and the best epoch's weights are restored at the end ` +
      `(Keras 3's EarlyStopping with restore_best_weights). ${runs}: the test set plays no part in choosing the epoch.`
    : `${parity.epochs} epoch${parity.epochs > 1 ? 's' : ''} x ${runs}.`;
  const kept = (row: AccuracyEngineResult) => (row.epochsRun ?? []).map((ran, i) => `${row.keptEpochs![i]} of ${ran}`).join(', ');
  return [
    `## ${title}`,
    '',
    intro,
    '',
    table(
      ['engine', 'backend', 'test accuracy (mean ± sd)', 'per seed', ...(plan ? ['weights kept: epoch of epochs run'] : []), 'training seconds per run', 'test samples tfjs would clip'],
      rows.map((row, i) => (plan ? [...row.slice(0, 4), parity.engines[i].available ? kept(parity.engines[i]) : '', ...row.slice(4)] : row)),
      [false, false, true, true, ...(plan ? [true] : []), true, true],
    ),
    '',
    ...parity.engines.filter((row) => !row.available).map((row) => `- ${row.engine}: not available: ${row.reason}`),
    ...parity.differences.map((d) => `- Difference of means, descent (wasm) - ${d.label}: ${signed(d.points)} percentage points.`),
    '',
    ...epochCurves(parity),
    parity.note,
  ];
}

/** Test accuracy after each epoch, per engine and seed, and the mean of each seed's best epoch. */
function epochCurves(parity: AccuracySuiteResult): string[] {
  const measured = parity.engines.filter((row) => row.available && row.epochAccuracies?.length);
  if (measured.length === 0 || parity.epochs < 2) return [];
  const epochs = Array.from({ length: parity.epochs }, (_, i) => String(i + 1));
  if (parity.earlyStopping) {
    // Runs stop at different epochs; the kept epoch is starred.
    const rows = measured.flatMap((row) =>
      row.epochAccuracies!.map((curve, i) => [
        `${row.label}, seed ${row.seeds[i]}`,
        ...epochs.map((_, epoch) => (epoch < curve.length ? percent(curve[epoch]) + (epoch + 1 === row.keptEpochs?.[i] ? '*' : '') : '')),
      ]),
    );
    return [
      'Test accuracy after each epoch (evaluated between epochs, not timed); * marks the epoch whose weights were kept (the best val_loss).',
      '',
      table(['run', ...epochs], rows, [false, ...epochs.map(() => true)]),
      '',
    ];
  }
  const rows = measured.flatMap((row) =>
    row.epochAccuracies!.map((curve, i) => [`${row.label}, seed ${row.seeds[i]}`, ...curve.map((a) => percent(a)), percent(Math.max(...curve))]),
  );
  return [
    `Test accuracy after each epoch (evaluated between epochs, not timed); the last column is the seed's best epoch, whose mean over seeds is ${measured
      .map((row) => `${percent(row.bestMean!)} for ${row.label}`).join(' and ')}.`,
    '',
    table(['run', ...epochs, 'best'], rows, [false, ...epochs.map(() => true), true]),
    '',
  ];
}

function stepsSection(steps: StepsSuiteResult, title: string = SECTION_TITLES.steps): string[] {
  const rows = steps.runs.flatMap((run) =>
    run.variants.map((variant) => [
      oracleName(run.oracle),
      `descent (${variant.descentBackend})${variant.fallbackReason ? ' (fell back)' : ''}`,
      variant.adamForm,
      exp(variant.maxRelativeLossDifference),
      String(variant.worstStep),
      exp(variant.maxAbsWeightDifference),
    ]),
  );
  const weights = (run: StepsRun) => run.importedWeights.map((w) => `${w.name} [${w.shape.join('x')}]`).join(', ');
  return [
    `## ${title}`,
    '',
    `${steps.steps} Adam steps of batch ${steps.batchSize} from each oracle's own initial weights${steps.runs[0] ? ` (${oracleName(steps.runs[0].oracle)}: ${weights(steps.runs[0])})` : ''}.`,
    '',
    table(['oracle', 'engine', 'Adam arithmetic', 'max relative loss difference', 'at step', 'max abs weight difference'], rows, [false, false, false, true, true, true]),
    '',
    ...steps.unavailable.map((u) => `- ${u.oracle}: not available: ${u.reason}`),
    ...steps.headlines.map(
      (h) =>
        `- Headline against ${oracleName(h.oracle)} (${h.oracleBackend}): descent (${h.descentBackend}) with Adam form '${h.adamForm}': max relative loss difference ` +
        `${exp(h.maxRelativeLossDifference)} (goal <= ${exp(h.goal)}), max abs weight difference ${exp(h.maxAbsWeightDifference)} ` +
        `(largest oracle weight ${steps.runs.find((r) => r.oracle === h.oracle)!.maxAbsWeight.toFixed(3)}).`,
    ),
    ...steps.oracleDifferences.map(
      (d) =>
        `- For scale, ${d.between[0]} and ${d.between[1]} (${d.why}) differ by up to ${exp(d.maxRelativeLossDifference)} in loss${d.worstStep !== undefined ? ` (step ${d.worstStep})` : ''}` +
        `${d.maxAbsWeightDifference !== undefined ? ` and ${exp(d.maxAbsWeightDifference)} in weights` : ''}.`,
    ),
    ...(steps.runs.some((r) => r.clippedSamples !== undefined)
      ? [`- Samples whose label probability tfjs clipped: ${steps.runs.filter((r) => r.clippedSamples !== undefined).map((r) => `${r.clippedSamples} (${r.oracle})`).join(', ')} of ${steps.steps * steps.batchSize}.`]
      : []),
    '',
    steps.note,
  ];
}

function oracleName(oracle: OracleId): string {
  return oracle === 'keras' ? 'Keras' : oracle;
}

const signed = (value: number): string => `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
