/**
 * `descent train`: build the model (Flatten → Dense(h, relu) [→ Dropout] … → Dense(classes, softmax)
 * by default; --model cnn, --layers or a Keras/tfjs JSON definition: see model-definition.ts), train it
 * with sparse categorical cross-entropy, show Keras-style progress, test it, save it.
 *
 * Never lose work: Ctrl-C stops after the current batch and saves a checkpoint with everything
 * needed to continue exactly (weights, optimizer moments, generator state, position in the epoch);
 * `--resume DIR` continues it and ends with the same weights, bit for bit, as an uninterrupted run.
 * A second Ctrl-C quits at once; saves are atomic, so the files on disk stay whole either way.
 */
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import {
  DescentError, EarlyStopping, ModelCheckpoint, CsvLogger, ReduceLROnPlateau, TerminateOnNaN, UsageError,
  backendName, base64ToFloat32, captureTrainingState, emptyHistoryData, float32ToBase64,
  loadModelArtifacts, modelFromArtifacts, readIdxLabels, resolveDataset, restoreOptimizer, saveModel,
  type BackendName, type Callback, type DatasetName, type EarlyStoppingState, type EpochLogs, type FitOptions,
  type HistoryData, type LoadedArtifacts, type LoadedDataset, type ModelCheckpointState, type ReduceLROnPlateauState, type Sequential,
  type ThreadCount, type TrainingMetadata, threadCount,
} from '@descent/engine';
import {
  backendOption, checkWritableFile, checkWritableFolder, classNamesOf, createFolderFor, dataOption, datasetOption, jsonOption, openModel, readDataset,
  threadsOption, prepareForTraining, useBackend,
} from '../common.js';
import { evaluateClassifier } from '../evaluation.js';
import { IMAGE_SIZE } from '../image.js';
import { buildTrainingModel, modelChoice, type ModelKind } from '../model-definition.js';
import { fraction, layerSizes, nonNegativeInteger, positiveInteger, seed } from '../flags.js';
import type { CliContext, CliModule, CommandData, TrainRun } from '../module.js';
import {
  OPTIMIZER_DEFAULTS, OPTIMIZER_FIXED_ON_RESUME, addOptimizerOptions, buildOptimizer, describeOptimizer, optimizerSettings, topKMetric, trainingMetrics,
  type OptimizerChoice, type OptimizerSettings,
} from './optimizer-options.js';
import { commandLine, shellWord } from '../invocation.js';
import { claimModelFolder, claimNewFolder, type ModelFolderClaim } from '../model-folder.js';
import { Output, count, metric, shortPath, stdoutPipe } from '../output.js';
import { resumedDbLocation, savedDbLocation } from '../store.js';
import { checkSavedSettings } from '../saved-settings.js';
import { KerasProgress } from '../progress.js';

/** A run's settings, saved in descent-training.json so `--resume` continues with the same ones. */
export interface TrainSettings extends OptimizerSettings {
  dataset: DatasetName;
  /** Absolute folder given with --data, if any. */
  data: string | null;
  epochs: number;
  batchSize: number;
  hidden: number[];
  dropout: number;
  /** mlp (from hidden and dropout), cnn, layers or json; runs saved before these existed are mlp. */
  model: ModelKind;
  /** The --layers text or the --model JSON file (absolute), null for mlp and cnn. */
  definition: string | null;
  validationSplit: number;
  seed: number;
  backend: BackendName;
  /** Patience, or null without early stopping. */
  earlyStopping: number | null;
  checkpoint: boolean;
  /** Absolute path of the CSV log, or null. */
  csv: string | null;
  /** The store the run is recorded in (--db): a SQLite file's absolute path or a MariaDB URL without its password; null without --db. */
  db?: string | null;
  /** The run's row of training_runs in that store, once recorded (a resumed run continues it). */
  trainingRun?: number | null;
}

interface TrainFlags {
  dataset: DatasetName;
  data?: string;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerChoice;
  lr?: number;
  momentum?: number;
  hidden: number[];
  dropout: number;
  model?: string;
  layers?: string;
  validationSplit: number;
  seed: number;
  backend: BackendName;
  threads: ThreadCount;
  out?: string;
  earlyStopping?: number;
  checkpoint?: boolean;
  csv?: string;
  resume?: string;
  json?: boolean;
  [extension: string]: unknown;
}

/** Settings a resumed run must keep (changing them would make it a different run). */
const FIXED_ON_RESUME: ReadonlyArray<[keyof TrainSettings, string]> = [
  ['dataset', '--dataset'], ['batchSize', '--batch-size'], ...OPTIMIZER_FIXED_ON_RESUME,
  ['hidden', '--hidden'], ['dropout', '--dropout'], ['model', '--model'], ['definition', '--layers/--model'], ['validationSplit', '--validation-split'], ['seed', '--seed'],
];

export const trainModule: CliModule = {
  register(program, context) {
    const command = program
      .command('train')
      .description('train a classifier on Fashion-MNIST (or MNIST), show progress, test it and save it')
      .addOption(datasetOption('dataset to train on').default('fashion-mnist'))
      .addOption(dataOption())
      .option('--epochs <n>', 'passes over the training set', positiveInteger, 5)
      .option('--batch-size <n>', 'images per gradient step', positiveInteger, 32);
    addOptimizerOptions(command);
    command
      .option('--model <name>', 'mlp (dense layers from --hidden), cnn (the tutorial CNN), or a Keras/TensorFlow.js model JSON file (default: mlp)')
      .option('--layers <spec>', 'the layers in one line, e.g. "conv2d:32:3:relu,maxpool:2,flatten,dense:128:relu" (grammar: docs/cli.md)')
      .addOption(new Option('--hidden <sizes>', 'hidden layer sizes, comma-separated (--model mlp)').argParser(layerSizes).default([128], '128'))
      .option('--dropout <p>', 'dropout rate after each hidden layer, in [0, 1) (--model mlp)', fraction, 0)
      .option('--validation-split <f>', 'fraction of training images held out for validation (the last ones)', fraction, 0)
      .option('--seed <n>', 'seed for initial weights, shuffling and dropout', seed, 42)
      .addOption(backendOption().default('wasm'))
      .addOption(threadsOption())
      .option('--out <dir>', 'folder to save the model in (default: ./models/<dataset>-<date>-<time>)')
      .option('--early-stopping <patience>', 'stop after this many epochs without improvement (val_loss, or loss without validation) and restore the best weights', nonNegativeInteger)
      .option('--checkpoint', 'save the model after every epoch (with validation: only when val_loss improves)')
      .option('--csv <file>', 'write per-epoch metrics to a CSV file')
      .option('--resume <dir>', 'continue an interrupted run saved in this folder')
      .addOption(jsonOption());
    for (const extension of context.trainExtensions) extension.options?.(command);
    command.action(async (flags: TrainFlags, cmd: Command) => train(flags, cmd, context));
  },
};

async function train(flags: TrainFlags, command: Command, context: CliContext): Promise<void> {
  const output = new Output({ json: flags.json === true });
  const given = (key: string): boolean => command.getOptionValueSource(key) === 'cli';
  for (const extension of context.trainExtensions) extension.validate?.(flags);

  // Settings, and for --resume the saved run; all checked before anything is loaded or written.
  const resumed = flags.resume ? await openRun(flags.resume, output) : undefined;
  const settings = resumed ? resumedSettings(flags, given, resumed.settings, flags.resume!) : freshSettings(flags, given);
  // A run started with --db keeps recording into that store when resumed without it.
  if (resumed && flags.db === undefined && settings.db) flags.db = resumedDbLocation(settings.db, `--resume ${flags.resume}`);
  if (settings.csv) checkWritableFile(settings.csv, `--csv ${flags.csv ?? settings.csv}`);
  if (resumed) checkResumable(resumed.metadata, settings, flags.resume!);
  else if (flags.db === undefined) await checkValidationSplit(settings); // with --db the store says how many images there are
  const claim = claimOutput(flags, settings, resumed !== undefined);
  // From here on a closed stdout (`descent train | head`) must not cost the model: keep going, write nothing more there.
  stdoutPipe.keepRunning = true;
  try {
    await runTraining(flags, settings, resumed, claim.dir, output, context);
  } finally {
    claim.release();
  }
}

/**
 * Claims the model folder for this run: --out (or the --resume folder), or a new default one.
 * Checked before any data is read, so a clash costs nothing.
 */
function claimOutput(flags: TrainFlags, settings: TrainSettings, resuming: boolean): ModelFolderClaim {
  const given = flags.out ?? flags.resume;
  if (given === undefined) {
    const base = resolve('models', `${settings.dataset}-${timestamp(new Date())}`);
    checkWritableFolder(base, `--out ${shortPath(base)} (the default)`);
    return claimNewFolder(base, `--out ${shortPath(base)} (the default)`);
  }
  const dir = resolve(given);
  const label = flags.out !== undefined ? `--out ${flags.out}` : `--resume ${flags.resume}`;
  checkWritableFolder(dir, label);
  return claimModelFolder(dir, {
    label,
    resuming: resuming && resolve(flags.resume!) === dir,
    holdsModelAdvice: `continue that run with: ${commandLine(`train --resume ${shellWord(given)}`)}`,
  });
}

async function runTraining(
  flags: TrainFlags, settings: TrainSettings, resumed: SavedRun | undefined, outDir: string, output: Output, context: CliContext,
): Promise<void> {
  if (resumed && resumed.metadata.backend && resumed.metadata.backend !== settings.backend) {
    output.warn(`the run in ${flags.resume} used the ${resumed.metadata.backend} backend; resuming on ${settings.backend} continues it, but not bit for bit`);
  }

  prepareForTraining(settings.backend);
  useBackend(settings.backend, output, flags.threads);
  // Data from an extension (the SQL store with --db) comes first: its number of classes sizes the model.
  const extensionData = await dataFromExtensions(context, flags, settings.dataset, output);
  // A new model is built (and its definition checked) before the IDX files are read.
  const classes = extensionData?.classNames.length ?? classNamesOf(settings.dataset).length;
  const fresh = resumed ? undefined : buildTrainingModel(settings, settings, [IMAGE_SIZE, IMAGE_SIZE], classes);
  const data = extensionData ?? (await readDataset(settings.dataset, settings.data ?? undefined, output));
  if (!resumed) await checkValidationSplit(settings, data.train.count);
  const model = fresh ?? modelFromArtifacts(resumed!.loaded.artifacts, { modelFile: resumed!.loaded.modelFile, weightsFile: resumed!.loaded.weightsFiles[0], seed: settings.seed });
  if (resumed) {
    const loadedInputs = model.perSampleInputShape.reduce((a, b) => a * b, 1);
    if (loadedInputs !== data.train.rows * data.train.cols) throw new DescentError(`${flags.resume}: the model takes ${loadedInputs} inputs but ${data.name} images have ${data.train.rows * data.train.cols} pixels`);
    model.random.setState(resumed.metadata.random!);
  }
  const optimizer = resumed ? restoreOptimizer(model, resumed.metadata.optimizer!) : buildOptimizer(settings);
  model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: trainingMetrics(settings) });

  const trainCount = settings.validationSplit > 0 ? Math.floor(data.train.count * (1 - settings.validationSplit)) : data.train.count;
  const steps = Math.ceil(trainCount / settings.batchSize);
  describeRun(output, settings, data, model, trainCount, resumed ? { dir: flags.resume!, metadata: resumed.metadata, steps } : undefined);

  // Callbacks, in the order they see each epoch's end: history, progress, CSV, stopping rules, checkpoint, extensions.
  const history = resumed?.metadata.history ?? emptyHistoryData();
  const log = (message: string) => output.note(message);
  const callbacks: Callback[] = [historyRecorder(history)];
  callbacks.push(output.json ? jsonLines(output, extraMetricKeys(settings)) : new KerasProgress({ output, epochs: settings.epochs, steps }));
  if (settings.csv) {
    createFolderFor(settings.csv, `--csv ${flags.csv ?? settings.csv}`);
    callbacks.push(new CsvLogger(settings.csv, { keepEpochs: resumed ? history.epoch.length : 0, extraColumns: extraMetricKeys(settings) }));
  }
  const terminateOnNaN = new TerminateOnNaN({ log });
  callbacks.push(terminateOnNaN);
  const monitor = settings.validationSplit > 0 ? 'val_loss' : 'loss';
  let earlyStopping: EarlyStopping | undefined;
  if (settings.earlyStopping !== null) {
    earlyStopping = new EarlyStopping({ monitor, patience: settings.earlyStopping, restoreBestWeights: true, log });
    const saved = resumed?.metadata.callbacks?.earlyStopping as EncodedEarlyStopping | undefined;
    if (saved) earlyStopping.setState(decodeEarlyStopping(saved));
    callbacks.push(earlyStopping);
  }
  let reduceLr: ReduceLROnPlateau | undefined;
  if (settings.reduceLrOnPlateau !== null) {
    reduceLr = new ReduceLROnPlateau({ monitor, patience: settings.reduceLrOnPlateau, factor: settings.reduceLrFactor, minLr: settings.minLr, log });
    const saved = resumed?.metadata.callbacks?.reduceLrOnPlateau as ReduceLROnPlateauState | undefined;
    if (saved) reduceLr.setState(saved);
    callbacks.push(reduceLr);
  }
  let checkpoint: ModelCheckpoint | undefined;
  // What every save records besides the weights; the checkpoint callback calls it at each epoch's end.
  const metadata = (extra: TrainingMetadata): TrainingMetadata => ({
    dataset: settings.dataset,
    classNames: data.classNames,
    seed: settings.seed,
    backend: backendName(),
    epochs: settings.epochs,
    stepsCompleted: model.optimizer?.iterations,
    stepsPerEpoch: steps,
    hyperparameters: { ...settings },
    history: copyHistory(history),
    callbacks: {
      ...(earlyStopping ? { earlyStopping: encodeEarlyStopping(earlyStopping.getState()) } : {}),
      ...(reduceLr ? { reduceLrOnPlateau: reduceLr.getState() } : {}),
      ...(checkpoint ? { checkpoint: checkpoint.getState() } : {}),
    },
    ...extra,
  });
  if (settings.checkpoint) {
    checkpoint = new ModelCheckpoint({ dir: shortPath(outDir), monitor: 'val_loss', saveBestOnly: settings.validationSplit > 0, log, metadata: () => metadata({}) });
    const saved = resumed?.metadata.callbacks?.checkpoint as ModelCheckpointState | undefined;
    if (saved) checkpoint.setState(saved);
    callbacks.push(checkpoint);
  }
  const run: TrainRun = { options: flags, settings, model, data, outDir, output, history: () => copyHistory(history) };
  for (const extension of context.trainExtensions) callbacks.push(...((await extension.callbacks?.(run)) ?? []));

  // Ctrl-C: stop after this batch and save; a second one quits at once.
  let interrupted = false;
  const onInterrupt = (): void => {
    if (interrupted) {
      output.error('descent: interrupted again; quitting without saving (files already on disk are intact)');
      process.exit(130);
    }
    interrupted = true;
    model.stopTraining = true;
    output.error('descent: interrupted; finishing the current batch, then saving a checkpoint (press Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onInterrupt);
  try {
    const fitOptions: FitOptions = { epochs: settings.epochs, batchSize: settings.batchSize, validationSplit: settings.validationSplit, callbacks };
    if (resumed?.metadata.position) fitOptions.resume = resumed.metadata.position;
    else if (resumed) fitOptions.initialEpoch = resumed.metadata.epochsCompleted ?? 0;
    const result = await model.fit(data.train, data.train.labels, fitOptions);
    const stoppedAt = result.stoppedAt;

    // Ctrl-C while an epoch ended (e.g. during a callback) stops training between two epochs.
    const stoppedBetweenEpochs = interrupted && !stoppedAt && !earlyStopping?.stoppedEpoch && history.epoch.length < settings.epochs;
    if ((stoppedAt || stoppedBetweenEpochs) && terminateOnNaN.terminatedAt === undefined) {
      // Interrupted: save where it stopped, say how to continue.
      const epochsCompleted = stoppedAt?.epoch ?? history.epoch.length;
      await saveModel(outDir, model, metadata({ ...captureTrainingState(model), status: 'interrupted', epochsCompleted, ...(stoppedAt ? { position: stoppedAt } : {}) }));
      const where = stoppedAt ? `in epoch ${stoppedAt.epoch + 1}/${settings.epochs} after batch ${stoppedAt.batch}/${steps}` : `after epoch ${epochsCompleted}/${settings.epochs}`;
      output.note(`Interrupted ${where}; saved a checkpoint to ${shortPath(outDir)}`);
      for (const extension of context.trainExtensions) await extension.interrupted?.(run, where);
      output.note(`Resume with: ${commandLine(`train --resume ${shellWord(shortPath(outDir))}`)}`);
      output.record({ interrupted: true, epoch: stoppedAt ? stoppedAt.epoch + 1 : epochsCompleted, batch: stoppedAt?.batch ?? steps, model_dir: outDir });
      process.exitCode = 130;
      return;
    }

    let finalMetadata = captureTrainingState(model) as TrainingMetadata;
    const lastEpoch = history.epoch[history.epoch.length - 1];
    if (earlyStopping?.restoredEpoch !== undefined && earlyStopping.restoredEpoch !== lastEpoch) finalMetadata.weightsFromEpoch = earlyStopping.restoredEpoch;
    if (checkpoint?.saveBestOnly && checkpoint.saved.length > 0 && checkpoint.bestEpoch !== lastEpoch) {
      // The folder holds the best epoch's checkpoint: that is the model this run keeps, with the
      // optimizer and generator state of that epoch (early stopping restored only its weights).
      const best = await openModel(outDir, output);
      model.setWeights(best.model.getWeights().map((w) => w.values));
      best.model.dispose();
      finalMetadata = { optimizer: best.metadata?.optimizer, random: best.metadata?.random, weightsFromEpoch: checkpoint.bestEpoch };
      output.note(`Keeping the best checkpoint: epoch ${(checkpoint.bestEpoch ?? 0) + 1} (val_loss ${metric(checkpoint.best)})`);
    }
    let test = evaluateClassifier(model, data.test);
    let position = stoppedAt;
    const nan = terminateOnNaN.terminatedAt;
    if (nan && !isFiniteModel(model, test.loss)) {
      // The weights from before the bad batch are unusable too: fall back to the last epoch that ended finite.
      const last = terminateOnNaN.lastFinite;
      const where = `epoch ${nan.epoch + 1}, batch ${nan.batch + 1}/${steps}`;
      if (!last) throw new DescentError(`no finite model to save: the loss became ${nan.loss} in ${where}, before any epoch ended with finite weights; nothing was saved (try a smaller --lr)`);
      model.setWeights(last.weights);
      test = evaluateClassifier(model, data.test);
      if (!isFiniteModel(model, test.loss)) throw new DescentError(`no finite model to save: the loss became ${nan.loss} in ${where}, and the weights of epoch ${last.epoch + 1} give a test loss of ${test.loss}; nothing was saved (try a smaller --lr)`);
      finalMetadata = { ...finalMetadata, weightsFromEpoch: last.epoch };
      position = undefined;
      output.note(`Keeping the weights from the end of epoch ${last.epoch + 1}, the last with finite metrics (the weights from before that batch give a non-finite loss)`);
    } else if (nan) {
      output.note('Keeping the weights from before that batch: they are finite and give a finite test loss');
    }
    const status = nan ? 'terminated-nan' : earlyStopping?.stoppedEpoch ? 'stopped-early' : 'complete';
    await saveModel(outDir, model, metadata({
      ...finalMetadata,
      status,
      epochsCompleted: history.epoch.length,
      ...(position ? { position } : {}),
      test: { loss: test.loss, accuracy: test.accuracy },
    }));
    output.line(`Test loss: ${metric(test.loss)} - test accuracy: ${metric(test.accuracy)} (${count(data.test.count)} images)`);
    output.line(`Saved model to ${output.green(shortPath(outDir))}`);
    if (stdoutPipe.closed) output.error(`Saved model to ${shortPath(outDir)}`);
    output.record({ test_loss: test.loss, test_accuracy: test.accuracy, model_dir: outDir });
    if (interrupted) process.exitCode = 130;
    for (const extension of context.trainExtensions) {
      await extension.finish?.(run, { test: { loss: test.loss, accuracy: test.accuracy }, history: copyHistory(history), outDir });
    }
  } catch (error) {
    for (const extension of context.trainExtensions) await extension.failed?.(run, error);
    throw error;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

/** The data an extension reads instead of the IDX files (e.g. from the SQL store with --db), if any. */
async function dataFromExtensions(context: CliContext, flags: TrainFlags, dataset: string, output: Output): Promise<CommandData | undefined> {
  for (const extension of context.trainExtensions) {
    const data = await extension.loadData?.(flags, dataset, output);
    if (data) return data;
  }
  return undefined;
}

/**
 * A validation split must leave images on both sides. The training set's size is read from its
 * label file (a few kilobytes), before the images are loaded; when the data is not on disk yet
 * (it would be downloaded), the same check runs once it is loaded.
 */
async function checkValidationSplit(settings: TrainSettings, knownTotal?: number): Promise<void> {
  if (settings.validationSplit === 0) return;
  let total = knownTotal;
  if (total === undefined) {
    try {
      const found = await resolveDataset(settings.dataset, { dir: settings.data ?? undefined, download: false });
      total = readIdxLabels(found.files.trainLabels).length;
    } catch {
      return; // not found without a download, or unreadable: reading the data says what is wrong
    }
  }
  const trained = Math.floor(total * (1 - settings.validationSplit));
  const side = trained === 0 ? 'no training images' : trained === total ? 'no validation images' : undefined;
  if (side) {
    throw new UsageError(`--validation-split ${settings.validationSplit}: leaves ${side} (the ${settings.dataset} training set has ${count(total)}: ${count(trained)} to train on, ${count(total - trained)} to validate on)`);
  }
}

/** Every weight and the test loss are finite numbers. */
function isFiniteModel(model: Sequential, testLoss: number): boolean {
  return Number.isFinite(testLoss) && model.getWeights().every((w) => w.values.every(Number.isFinite));
}

function freshSettings(flags: TrainFlags, given: (key: string) => boolean): TrainSettings {
  const { model, definition } = modelChoice(flags, given);
  return {
    dataset: flags.dataset,
    data: flags.data ? resolve(flags.data) : null,
    epochs: flags.epochs,
    batchSize: flags.batchSize,
    ...optimizerSettings(flags),
    hidden: flags.hidden,
    dropout: flags.dropout,
    model,
    definition,
    validationSplit: flags.validationSplit,
    seed: flags.seed,
    backend: flags.backend,
    earlyStopping: flags.earlyStopping ?? null,
    checkpoint: flags.checkpoint === true,
    csv: flags.csv ? resolve(flags.csv) : null,
    db: typeof flags.db === 'string' ? savedDbLocation(flags.db) : null,
    trainingRun: null,
  };
}

/** The saved run's settings; flags may extend the epochs or change outputs, not the training itself. */
function resumedSettings(flags: TrainFlags, given: (key: string) => boolean, savedSettings: TrainSettings, dir: string): TrainSettings {
  const saved: TrainSettings = { ...savedSettings, model: savedSettings.model ?? 'mlp', definition: savedSettings.definition ?? null };
  const fresh = freshSettings(flags, given);
  // The definition comes from --layers or --model; either one given must name the saved model.
  const givenOnResume = (key: string): boolean => (key === 'definition' ? given('layers') || given('model') : key === 'model' ? given('model') || given('layers') : given(key));
  for (const [key, flag] of FIXED_ON_RESUME) {
    if (givenOnResume(key) && JSON.stringify(fresh[key]) !== JSON.stringify(saved[key])) {
      throw new UsageError(`${flag} cannot change when resuming: the run in ${dir} uses ${String(saved[key])}`);
    }
  }
  return {
    ...OPTIMIZER_DEFAULTS,
    ...saved,
    data: given('data') ? fresh.data : saved.data,
    epochs: given('epochs') ? fresh.epochs : saved.epochs,
    backend: given('backend') ? fresh.backend : saved.backend,
    earlyStopping: given('earlyStopping') ? fresh.earlyStopping : saved.earlyStopping,
    checkpoint: given('checkpoint') ? true : saved.checkpoint,
    csv: given('csv') ? fresh.csv : saved.csv,
    // Another store given with --db on resume gets a row of its own.
    db: given('db') ? fresh.db : saved.db ?? null,
    trainingRun: given('db') && fresh.db !== saved.db ? null : saved.trainingRun ?? null,
  };
}

interface SavedRun {
  loaded: LoadedArtifacts;
  settings: TrainSettings;
  metadata: TrainingMetadata;
}

/** The saved run's files and settings. Its model is built later, once the backend is chosen: tensors live in the backend's memory. */
async function openRun(dir: string, output: Output): Promise<SavedRun> {
  const loaded = await loadModelArtifacts(dir);
  const metadata = loaded.metadata;
  const settings = metadata?.hyperparameters as TrainSettings | undefined;
  if (!metadata || !settings || !Array.isArray(settings.hidden) || !metadata.optimizer?.state || !metadata.random) {
    const why = loaded.warnings[0] ?? (metadata ? 'descent-training.json lacks the optimizer or generator state' : 'descent-training.json is missing');
    throw new DescentError(`--resume ${dir}: holds no training state to resume from (${why})`);
  }
  checkSavedSettings(settings, join(dir, 'descent-training.json'), (problem) => new DescentError(`--resume: ${problem}`));
  for (const warning of loaded.warnings) output.warn(warning);
  if (loaded.recovered) output.warn(`${loaded.modelFile}: the last save was interrupted after writing the weights; using the model.json it left under a temporary name`);
  return { loaded, settings, metadata };
}

function checkResumable(metadata: TrainingMetadata, settings: TrainSettings, dir: string): void {
  const start = metadata.position?.epoch ?? metadata.epochsCompleted ?? 0;
  const finishedAll = !metadata.position && start >= settings.epochs;
  if (finishedAll || (metadata.position && metadata.position.epoch >= settings.epochs)) {
    throw new UsageError(`--resume ${dir}: the run already trained ${start} of ${settings.epochs} epochs; pass --epochs N with N > ${start} to train further`);
  }
}

/** 20261130-072706: the default folder's name changes every second; claimNewFolder makes it unique. */
function timestamp(now: Date): string {
  return `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
}

function describeRun(
  output: Output, settings: TrainSettings, data: CommandData, model: Sequential, trainCount: number,
  resumed?: { dir: string; metadata: TrainingMetadata; steps: number },
): void {
  const validation = data.train.count - trainCount;
  const split = validation > 0 ? ` (${count(trainCount)} train / ${count(validation)} validation)` : '';
  output.note(`Training on ${data.name}: ${count(data.train.count)} images${split}, ${count(data.test.count)} test, from ${shortPath(data.dir)}`);
  const layers = model.layers.map((layer) => layer.describe()).join(' → ');
  const optimizer = describeOptimizer({ ...OPTIMIZER_DEFAULTS, ...settings });
  output.note(`Model: ${layers} (${count(model.countParameters())} parameters); ${optimizer}, batch ${settings.batchSize}, seed ${settings.seed}, backend ${backendName()}${backendName() === 'wasm' ? ` (${count(threadCount())} thread${threadCount() === 1 ? '' : 's'})` : ''}`);
  if (resumed) {
    const { position, epochsCompleted = 0 } = resumed.metadata;
    output.note(
      position
        ? `Resuming ${shortPath(resumed.dir)} in epoch ${position.epoch + 1}/${settings.epochs} after batch ${position.batch}/${resumed.steps}`
        : `Resuming ${shortPath(resumed.dir)} after epoch ${epochsCompleted}/${settings.epochs}`,
    );
  }
}

/** Appends each finished epoch to `history` (which may already hold a resumed run's epochs). */
function historyRecorder(history: HistoryData): Callback {
  return {
    onEpochEnd(epoch: number, logs: EpochLogs) {
      history.epoch.push(epoch);
      history.loss.push(logs.loss);
      if (logs.accuracy !== undefined) history.accuracy.push(logs.accuracy);
      if (logs.val_loss !== undefined) history.val_loss.push(logs.val_loss);
      if (logs.val_accuracy !== undefined) history.val_accuracy.push(logs.val_accuracy);
      history.seconds.push(logs.seconds);
      for (const [key, value] of Object.entries(logs)) {
        if (value !== undefined && !(key in STANDARD_HISTORY)) (history[key] ??= []).push(value);
      }
    },
  };
}

const STANDARD_HISTORY = { epoch: 0, loss: 0, accuracy: 0, val_loss: 0, val_accuracy: 0, seconds: 0 };

/** Logged keys beyond loss and accuracy: the top-k metric and its validation value. */
function extraMetricKeys(settings: OptimizerSettings): string[] {
  if (settings.topK === null) return [];
  const name = topKMetric(settings.topK).name;
  return [name, `val_${name}`];
}

/** --json: one object per epoch, with every key always present (null when there is no validation). */
function jsonLines(output: Output, extraKeys: readonly string[]): Callback {
  return {
    onEpochEnd(epoch: number, logs: EpochLogs) {
      output.record({
        epoch: epoch + 1,
        loss: logs.loss,
        accuracy: logs.accuracy ?? null,
        val_loss: logs.val_loss ?? null,
        val_accuracy: logs.val_accuracy ?? null,
        ...Object.fromEntries(extraKeys.map((key) => [key, logs[key] ?? null])),
        seconds: logs.seconds,
      });
    },
  };
}

function copyHistory(history: HistoryData): HistoryData {
  return JSON.parse(JSON.stringify(history)) as HistoryData;
}

interface EncodedEarlyStopping extends Omit<EarlyStoppingState, 'best' | 'bestWeights'> {
  best: number | null;
  bestWeights: string[] | null;
}

function encodeEarlyStopping(state: EarlyStoppingState): EncodedEarlyStopping {
  return {
    ...state,
    best: Number.isFinite(state.best) ? state.best : null,
    bestWeights: state.bestWeights ? state.bestWeights.map(float32ToBase64) : null,
  };
}

function decodeEarlyStopping(state: EncodedEarlyStopping): EarlyStoppingState {
  return {
    ...state,
    best: state.best ?? Infinity,
    bestWeights: state.bestWeights ? state.bestWeights.map(base64ToFloat32) : undefined,
  };
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
