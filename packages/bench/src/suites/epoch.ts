/**
 * Whole-epoch suite: every engine trains the bench model for one epoch from scratch, each run in a
 * fresh process, then predicts the test set. Seconds are model.fit's wall time, as a user sees it.
 */
import { WorkerError, runTask } from '../child.js';
import { max } from '../format.js';
import { median, summarize } from '../stats.js';
import { ENGINES, ENGINE_LABELS, MODEL, inferenceBatchOf, type EngineId, type EpochEngineResult, type EpochRun, type EpochSuiteResult } from '../types.js';
import { modelTag, type SuiteContext } from './context.js';

/** Engines whose epoch takes long enough on the full set that they run fewer times. */
const SLOW_ENGINES: Partial<Record<EngineId, string>> = { 'descent-ts': '~35 s', 'tfjs-cpu': '~90 s' };

export function epochNote(testSamples: number, inferenceRuns: number, inferenceBatch: number): string {
  return (
    'Each run is a fresh process (engines take turns, run by run): build and compile the model, then time model.fit for one epoch ' +
    '(batch 32, shuffled), first-step warm-up included. tfjs gets its training set as float32 tensors ' +
    'scaled /255, built once before the timed fit (what a Keras-style user writes); descent gets the ' +
    'bytes and scales each batch inside the timed epoch, and runs its wasm kernels as `descent train` does, with V8\'s inlining of ' +
    'JavaScript off (fewer compiles during the first epoch). Keras runs in a Python process of its own and gets ' +
    'numpy float32 arrays scaled /255 the same way; its thread counts are set with tf.config.threading, ' +
    "tfjs-node's with TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS. Peak RSS is the process high-water mark " +
    '(process.resourceUsage().maxRSS; Python: resource.getrusage) right after the epoch, so it counts the data and the training but ' +
    `not the inference runs (the JSON also has it after inference). Inference: the ${testSamples.toLocaleString('en-US')} ` +
    `test images ${inferenceBatch >= testSamples ? 'as one batch' : `in batches of ${inferenceBatch.toLocaleString('en-US')}`}, outputs read back to JavaScript (Keras: model.predict_on_batch, to numpy), median of ${inferenceRuns} runs after a warm-up ` +
    '(then the median over runs). Every engine predicts from the test set as float32 scaled /255, made before the timed calls ' +
    '(descent: a tensor in its WASM memory; tfjs: a tensor; Keras: a numpy array); descent\'s time from the bytes, copied and ' +
    'scaled inside each call, is given below the table.'
  );
}

export function runsFor(engine: EngineId, context: Pick<SuiteContext, 'quick' | 'runs'>): { runs: number; note?: string } {
  const slow = SLOW_ENGINES[engine];
  if (context.quick || !slow) return { runs: context.runs };
  const runs = Math.max(1, Math.floor(context.runs / 3));
  return runs < context.runs ? { runs, note: `${runs} of ${context.runs} runs: one epoch takes ${slow} here` } : { runs };
}

export async function runEpochSuite(context: SuiteContext, engines: readonly EngineId[] = ENGINES): Promise<EpochSuiteResult> {
  const inferenceRuns = context.quick ? 3 : 7;
  const plans = engines.map((engine) => ({ engine, ...runsFor(engine, context) }));
  const rows: EpochEngineResult[] = plans.map(({ engine, runs, note }) => ({
    engine, label: ENGINE_LABELS[engine], available: true, runs, ...(note ? { runsNote: note } : {}),
    seconds: [], peakRssMiBPerRun: [], peakRssAfterInferenceMiBPerRun: [], inferenceMsPerRun: [], trainLoss: [], testAccuracy: [],
  }));
  for (const { engine, note } of plans) if (note) context.log(`epoch: ${engine}: ${note}`);
  // Round-robin over engines, so a stretch of load on a shared machine does not land on one engine's runs.
  const rounds = Math.max(...plans.map((plan) => plan.runs));
  for (let run = 1; run <= rounds; run++) {
    for (const row of rows) {
      if (!row.available || run > row.runs) continue;
      const { engine } = row;
      // A run that fails (a crash, memory) marks the engine failed in the results; the other engines go on.
      const result = await runTask<EpochRun>({ kind: 'epoch', engine, model: context.model, files: context.files, seed: 41 + run, inferenceRuns }).catch(
        (error: unknown) => {
          if (!(error instanceof WorkerError)) throw error;
          return { available: false as const, reason: `failed: ${error.message}` };
        },
      );
      if (!result.available) {
        Object.assign(row, { available: false, reason: result.reason, runs: 0 });
        context.log(`${engine}: not available: ${result.reason}`);
        continue;
      }
      row.backend = result.backend;
      if (result.fallbackReason) row.fallbackReason = result.fallbackReason;
      row.seconds.push(result.seconds);
      row.peakRssMiBPerRun.push(result.peakRssBytes / 2 ** 20);
      row.peakRssAfterInferenceMiBPerRun.push(result.peakRssAfterInferenceBytes / 2 ** 20);
      row.inferenceMsPerRun.push(median(result.inferenceMs));
      if (result.inferenceFromBytesMs) (row.inferenceFromBytesMsPerRun ??= []).push(median(result.inferenceFromBytesMs));
      row.trainLoss.push(result.trainLoss);
      row.testAccuracy.push(result.testAccuracy);
      context.log(
        `${modelTag(context)}epoch: ${engine} run ${run}/${row.runs}: ${result.seconds.toFixed(2)} s/epoch, peak RSS ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB ` +
          `(${(result.peakRssAfterInferenceBytes / 2 ** 20).toFixed(0)} MiB after inference), ` +
          `inference ${median(result.inferenceMs).toFixed(1)} ms, loss ${result.trainLoss.toFixed(4)}, test accuracy ${result.testAccuracy.toFixed(4)}` +
          (result.fallbackReason ? ` (ran on the ${result.backend} kernels: ${result.fallbackReason})` : ''),
      );
    }
  }
  for (const row of rows) {
    if (!row.available) continue;
    row.secondsPerEpoch = summarize(row.seconds);
    row.peakRssMiB = max(row.peakRssMiBPerRun);
    row.inferenceMs = median(row.inferenceMsPerRun);
    if (row.inferenceFromBytesMsPerRun) row.inferenceFromBytesMs = median(row.inferenceFromBytesMsPerRun);
  }
  const baseline = rows.find((row) => row.engine === 'descent-wasm')?.secondsPerEpoch?.median;
  for (const row of rows) {
    if (row.secondsPerEpoch && baseline) row.ratioToDescentWasm = row.secondsPerEpoch.median / baseline;
  }
  return {
    trainSamples: context.trainSamples,
    testSamples: context.testSamples,
    batchSize: MODEL.batchSize,
    inferenceBatch: inferenceBatchOf(context.model),
    note: epochNote(context.testSamples, inferenceRuns, inferenceBatchOf(context.model)),
    engines: rows,
  };
}
