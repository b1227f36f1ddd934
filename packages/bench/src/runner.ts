/**
 * `npm run bench`: runs the suites in order (kernels, epoch, parity, steps), then writes
 * <date>-<machine>[-<suites>][-quick].json and .md into the output folder, and latest.md after a
 * full run of every suite.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readIdxLabels, resolveDataset, type DatasetFiles } from '@descent/engine';
import { FIXTURE_DIR } from './data.js';
import { formatConvSuite, runConvSuite } from './conv-suite.js';
import { formatKernelSuite, runKernelSuite, twoThreadSpeedup } from './kernel-suite.js';
import { coreSpeeds, formatCoreSpeeds, machineInfo, machineTag } from './machine.js';
import { renderMarkdown } from './report.js';
import { runAccuracySuite } from './suites/accuracy.js';
import { CNN_STEP_GOAL, runCnnEarlyStoppingSuite, runCnnParitySuite, runCnnSuite } from './suites/cnn.js';
import type { SuiteContext } from './suites/context.js';
import { runEpochSuite } from './suites/epoch.js';
import { runStepsSuite } from './suites/steps.js';
import { CNN, ENGINE_LABELS, MLP, MODEL, describeModel, SUITES, type BenchResult, type EngineId, type EpochEngineResult, type SuiteName, type TargetCheck } from './types.js';

export interface BenchOptions {
  quick: boolean;
  suites: readonly SuiteName[];
  /** Runs per engine in the whole-epoch suite. */
  runs: number;
  outDir: string;
  /** How the run was started, recorded in the results. */
  command: string;
  log?: (line: string) => void;
}

export interface WrittenFiles {
  json: string;
  markdown: string;
  latest?: string;
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const { files, dir } = await findData(options.quick);
  // Each worker loads the images itself; the parent needs only the sizes.
  const trainSamples = readIdxLabels(files.trainLabels).length;
  const testSamples = readIdxLabels(files.testLabels).length;
  const context: SuiteContext = { quick: options.quick, runs: options.runs, model: MLP, files, trainSamples, testSamples, log };
  const suites = SUITES.filter((suite) => options.suites.includes(suite));
  const result: BenchResult = {
    version: 2,
    quick: options.quick,
    command: options.command,
    machine: machineInfo(),
    dataset: { dir, trainSamples, testSamples },
    model: MODEL,
    suites,
    targets: [],
    wallSeconds: 0,
  };

  // The cores' speeds where the suites start, and at the end: they explain what a second thread gained.
  const noteCoreSpeeds = (when: string): void => {
    const speeds = coreSpeeds();
    if (speeds === undefined) return;
    (result.machine.coreSpeeds ??= {})[when] = speeds;
    log(`core speeds (${when}): ${formatCoreSpeeds(speeds)}`);
  };
  for (const suite of suites) {
    log(`== ${suite} ==`);
    noteCoreSpeeds(suite);
    const suiteStarted = performance.now();
    if (suite === 'kernels') Object.assign(result, await runKernels(options.quick, log));
    if (suite === 'epoch') result.epoch = await runEpochSuite(context);
    if (suite === 'parity') result.parity = await runAccuracySuite(context);
    if (suite === 'steps') result.steps = await runStepsSuite(context);
    if (suite === 'conv') {
      result.conv = await runConvSuite({ quick: options.quick, log });
      result.convMarkdown = formatConvSuite(result.conv);
    }
    if (suite === 'cnn') result.cnn = { ...result.cnn, ...(await runCnnSuite(context)) };
    if (suite === 'cnn-parity') result.cnn = { layers: describeModel(CNN), ...result.cnn, parity: await runCnnParitySuite(context) };
    if (suite === 'cnn-early') result.cnn = { layers: describeModel(CNN), ...result.cnn, early: await runCnnEarlyStoppingSuite(context) };
    log(`${suite}: done in ${((performance.now() - suiteStarted) / 1000).toFixed(1)} s`);
  }
  noteCoreSpeeds('end');
  result.targets = checkTargets(result);
  result.wallSeconds = (performance.now() - started) / 1000;
  return result;
}

async function runKernels(quick: boolean, log: (line: string) => void): Promise<Pick<BenchResult, 'kernels' | 'kernelsMarkdown'>> {
  const kernels = await runKernelSuite({ quick, log });
  return { kernels, kernelsMarkdown: formatKernelSuite(kernels) };
}

async function findData(quick: boolean): Promise<{ files: DatasetFiles; dir: string }> {
  const resolved = await resolveDataset('fashion-mnist', quick ? { dir: FIXTURE_DIR } : {});
  return { files: resolved.files, dir: resolved.dir };
}

/** The issue's targets, for the suites that ran. */
export function checkTargets(result: BenchResult): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const engine = (id: EngineId) => result.epoch?.engines.find((row) => row.engine === id && row.available);
  const descent = engine('descent-wasm');
  for (const [id, goal] of [['tfjs-wasm', 12], ['tfjs-cpu', 75]] as const) {
    const other = engine(id);
    if (descent && other) {
      const measured = other.ratioToDescentWasm!;
      checks.push({ name: `epoch: descent (wasm) vs ${ENGINE_LABELS[id]}`, goal: `>= ${goal}x faster`, measured: `${measured.toFixed(1)}x`, met: measured >= goal });
    }
  }
  const tfjsWasm = engine('tfjs-wasm');
  if (descent && tfjsWasm) {
    const share = descent.peakRssMiB! / tfjsWasm.peakRssMiB!;
    checks.push({
      name: 'peak RSS: descent (wasm) / tfjs (wasm)',
      goal: '<= 1/3',
      measured: `${descent.peakRssMiB!.toFixed(0)} / ${tfjsWasm.peakRssMiB!.toFixed(0)} MiB = ${share.toFixed(2)}`,
      met: share <= 1 / 3,
    });
  }
  if (descent) {
    checks.push({
      name: `inference on ${result.dataset.testSamples.toLocaleString('en-US')} test images, descent (wasm)`,
      goal: '<= 40 ms',
      measured: `${descent.inferenceMs!.toFixed(1)} ms`,
      met: descent.inferenceMs! <= 40,
    });
  }
  checks.push(...threadTargets(result, engine));
  if (result.parity) {
    for (const { label, points } of result.parity.differences) {
      checks.push({ name: `accuracy parity with ${label}: |mean difference|`, goal: '<= 0.5 points', measured: `${Math.abs(points).toFixed(2)} points`, met: Math.abs(points) <= 0.5 });
    }
    const [ours, ...theirs] = result.parity.engines;
    if (ours.available) {
      const others = theirs.filter((row) => row.available).map((row) => `${row.engine} ${(row.mean! * 100).toFixed(2)}%`);
      checks.push({
        name: 'accuracy: descent (wasm) mean',
        goal: '>= 88%',
        measured: `${(ours.mean! * 100).toFixed(2)}%${others.length ? ` (${others.join(', ')})` : ''}`,
        met: ours.mean! >= 0.88,
      });
    }
  }
  checks.push(...cnnTargets(result));
  for (const headline of result.steps?.headlines ?? []) {
    checks.push({
      name: `step parity with ${headline.oracle === 'keras' ? 'Keras' : headline.oracle}: ${result.steps!.steps} steps, Adam '${headline.adamForm}', max relative loss difference`,
      goal: `<= ${headline.goal.toExponential(0)}`,
      measured: headline.maxRelativeLossDifference.toExponential(2),
      met: headline.maxRelativeLossDifference <= headline.goal,
    });
  }
  return checks;
}

/** The CNN's targets (#15): speed against tfjs-node, memory, accuracy, step parity, the convolutions' products. */
function cnnTargets(result: BenchResult): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const { cnn } = result;
  const engine = (id: EngineId) => cnn?.epoch?.engines.find((row) => row.engine === id && row.available);
  const descent = engine('descent-wasm');
  const tfjsNode = engine('tfjs-node-1t');
  if (descent && tfjsNode) {
    const [ours, theirs] = [descent.secondsPerEpoch!.median, tfjsNode.secondsPerEpoch!.median];
    checks.push({ name: `CNN epoch: descent (wasm) vs ${ENGINE_LABELS['tfjs-node-1t']}`, goal: 'faster', measured: `${ours.toFixed(1)} s vs ${theirs.toFixed(1)} s`, met: ours < theirs });
  }
  const twoThreads = engine('descent-wasm-2t');
  if (twoThreads) {
    const ours = twoThreads.secondsPerEpoch!.median;
    checks.push({ name: 'CNN epoch: descent (wasm), 2 threads', goal: '<= 12 s', measured: `${ours.toFixed(1)} s`, met: ours <= 12 });
  }
  if (descent) {
    checks.push({ name: 'CNN peak RSS: descent (wasm), one epoch', goal: '<= 300 MB', measured: `${(descent.peakRssMiB! * 2 ** 20 / 1e6).toFixed(0)} MB`, met: descent.peakRssMiB! * 2 ** 20 <= 300e6 });
  }
  const parity = cnn?.parity;
  if (parity) {
    const [ours] = parity.engines;
    if (ours.available) {
      checks.push({ name: `CNN accuracy: descent (wasm) mean after ${parity.epochs} epochs`, goal: '>= 91%', measured: `${(ours.mean! * 100).toFixed(2)}%`, met: ours.mean! >= 0.91 });
      if (ours.bestMean !== undefined) {
        checks.push({
          name: `CNN accuracy: descent (wasm) mean of each seed's best epoch within ${parity.epochs}`, goal: '>= 91%',
          measured: `${(ours.bestMean * 100).toFixed(2)}%`, met: ours.bestMean >= 0.91,
        });
      }
    }
    for (const { label, points } of parity.differences) {
      checks.push({ name: `CNN accuracy parity with ${label}: |mean difference|`, goal: '<= 0.5 points', measured: `${Math.abs(points).toFixed(2)} points`, met: Math.abs(points) <= 0.5 });
    }
  }
  const early = cnn?.early;
  if (early?.earlyStopping) {
    const [ours] = early.engines;
    const how = `validation split ${early.earlyStopping.validationSplit}, early stopping on val_loss (patience ${early.earlyStopping.patience}, best weights restored), at most ${early.epochs} epochs`;
    if (ours.available) checks.push({ name: `CNN accuracy: descent (wasm) mean, ${how}`, goal: '>= 91%', measured: `${(ours.mean! * 100).toFixed(2)}%`, met: ours.mean! >= 0.91 });
    for (const { label, points } of early.differences) {
      checks.push({ name: `CNN accuracy parity with ${label}, ${how}: |mean difference|`, goal: '<= 0.5 points', measured: `${Math.abs(points).toFixed(2)} points`, met: Math.abs(points) <= 0.5 });
    }
  }
  for (const headline of cnn?.steps?.headlines ?? []) {
    checks.push({
      name: `CNN step parity with ${headline.oracle === 'keras' ? 'Keras' : headline.oracle}: ${cnn!.steps!.steps} steps, Adam '${headline.adamForm}', max relative loss difference`,
      goal: `<= ${CNN_STEP_GOAL.toExponential(0)}`,
      measured: headline.maxRelativeLossDifference.toExponential(2),
      met: headline.maxRelativeLossDifference <= headline.goal,
    });
  }
  const second = result.conv?.rows.filter((row) => row.path === 'default' && row.layer.startsWith('conv 2'));
  if (second && second.length > 0) {
    const worst = second.reduce((a, b) => (b.ofGemm < a.ofGemm ? b : a));
    checks.push({
      name: "CNN's second convolution (default path): slowest pass's GFLOP/s over the GEMM's, one thread",
      goal: '>= 75%',
      measured: `${Math.round(worst.ofGemm * 100)}% (${worst.pass})`,
      met: worst.ofGemm >= 0.75,
    });
  }
  return checks;
}

/**
 * The targets of descent on two threads: an epoch ≥ 1.6× faster than on one and ≥ 4× faster than
 * Keras on one; inference on the test set within 1.5× of Keras (on two threads, its default
 * here), or ≤ 15 ms without Keras; GEMM speed-up ≥ 1.8× on 256×784×128 and 1024³.
 */
function threadTargets(result: BenchResult, engine: (id: EngineId) => EpochEngineResult | undefined): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const one = engine('descent-wasm'), two = engine('descent-wasm-2t');
  const seconds = (row: EpochEngineResult): number => row.secondsPerEpoch!.median;
  if (one && two) {
    const speedup = seconds(one) / seconds(two);
    checks.push({ name: 'epoch: descent (wasm) 2 threads vs 1 thread', goal: '>= 1.6x faster', measured: `${speedup.toFixed(2)}x`, met: speedup >= 1.6 });
  }
  const keras = engine('keras-1t');
  if (two && keras) {
    const speedup = seconds(keras) / seconds(two);
    checks.push({ name: `epoch: descent (wasm) 2 threads vs ${ENGINE_LABELS['keras-1t']}`, goal: '>= 4.0x faster', measured: `${speedup.toFixed(2)}x`, met: speedup >= 4 });
  }
  if (two) {
    const images = `${result.dataset.testSamples.toLocaleString('en-US')} test images`;
    const kerasInference = engine('keras-2t')?.inferenceMs;
    const ms = two.inferenceMs!;
    checks.push(
      kerasInference === undefined
        ? { name: `inference on ${images}, descent (wasm) 2 threads`, goal: '<= 15 ms', measured: `${ms.toFixed(1)} ms`, met: ms <= 15 }
        : {
          name: `inference on ${images}, descent (wasm) 2 threads vs ${ENGINE_LABELS['keras-2t']}`,
          goal: '<= 1.5x its time',
          measured: `${ms.toFixed(1)} / ${kerasInference.toFixed(1)} ms = ${(ms / kerasInference).toFixed(2)}x`,
          met: ms <= 1.5 * kerasInference,
        },
    );
  }
  for (const shape of ['256×784×128', '1024×1024×1024']) {
    const speedup = result.kernels ? twoThreadSpeedup(result.kernels, shape) : NaN;
    if (Number.isFinite(speedup)) {
      checks.push({ name: `GEMM ${shape}: descent 2 threads vs 1 thread`, goal: '>= 1.8x faster', measured: `${speedup.toFixed(2)}x`, met: speedup >= 1.8 });
    }
  }
  return checks;
}

/** Writes the JSON and markdown summary (and latest.md after a full run), each via a temporary file. */
export function writeResults(result: BenchResult, outDir: string): WrittenFiles {
  mkdirSync(outDir, { recursive: true });
  const partial = result.suites.length < SUITES.length;
  const name = `${result.machine.date.slice(0, 10)}-${machineTag(result.machine)}${partial ? `-${result.suites.join('-')}` : ''}${result.quick ? '-quick' : ''}`;
  // A second run of the same suites on the same day is written beside the first, never over it.
  let base = name;
  for (let run = 2; existsSync(join(outDir, `${base}.json`)) || existsSync(join(outDir, `${base}.md`)); run++) base = `${name}-run${run}`;
  const markdown = renderMarkdown(result);
  const written: WrittenFiles = {
    json: writeAtomically(join(outDir, `${base}.json`), `${JSON.stringify(result, null, 2)}\n`),
    markdown: writeAtomically(join(outDir, `${base}.md`), markdown),
  };
  // latest.md feeds the README: only a full run of every suite replaces it.
  if (!result.quick && !partial) written.latest = writeAtomically(join(outDir, 'latest.md'), markdown);
  return written;
}

/** The README's benchmark block lies between these lines; a full run replaces what is between them. */
export const README_MARKERS = ['<!-- bench:latest (written by npm run bench after a full run) -->', '<!-- bench:end -->'] as const;

/** Replaces the README's benchmark block; false (and the file untouched) when it has no markers. */
export function updateReadme(file: string, block: string): boolean {
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(README_MARKERS[0]);
  const end = text.indexOf(README_MARKERS[1]);
  if (start < 0 || end < start) return false;
  writeAtomically(file, `${text.slice(0, start + README_MARKERS[0].length)}\n\n${block.trimEnd()}\n\n${text.slice(end)}`);
  return true;
}

function writeAtomically(file: string, text: string): string {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, file);
  return file;
}

// ---- for the report's chart ----------------------------------------------------------------

export interface EpochTiming {
  engine: EngineId;
  label: string;
  /** Median seconds per epoch, and the spread over runs. */
  seconds: number;
  min: number;
  max: number;
  runs: number;
}

/** Seconds per epoch for every engine that was measured, in the order of the epoch table. */
export function secondsPerEpoch(result: Pick<BenchResult, 'epoch'>): EpochTiming[] {
  return (result.epoch?.engines ?? [])
    .filter((row) => row.available && row.secondsPerEpoch)
    .map((row) => ({ engine: row.engine, label: row.label, seconds: row.secondsPerEpoch!.median, min: row.secondsPerEpoch!.min, max: row.secondsPerEpoch!.max, runs: row.runs }));
}

export function readBenchResult(file: string): BenchResult {
  return JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
}

/** The newest result file in a results folder from a full run of every suite, if any. */
export function latestResultFile(dir: string): string | undefined {
  const names = readdirSync(dir).filter((name) => /^\d{4}-\d{2}-\d{2}-.+\.json$/.test(name)).sort().reverse();
  for (const name of names) {
    const result = readBenchResult(join(dir, name));
    if (!result.quick && result.suites.length === SUITES.length) return join(dir, name);
  }
  return undefined;
}
