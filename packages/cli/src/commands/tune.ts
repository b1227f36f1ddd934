/**
 * `descent tune`: hyperparameter search, Hyperband as keras-tuner runs it (or random search),
 * with trials in parallel on worker threads (one per core) or on `descent worker` processes
 * through a BullMQ queue (--queue redis://HOST:PORT).
 *
 *   descent tune --units 32:512:32 --lr 1e-2,1e-3,1e-4 --max-epochs 10 --factor 3
 *
 * Every finished trial is saved in the search folder at once, so Ctrl-C (or a crash) loses only
 * the trials that were running: `descent tune --resume DIR` continues without redoing the others.
 * At the end the best trial's model is saved as a normal model folder (DIR/best-model).
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import {
  UsageError, saveModel, type BackendName, type DatasetName, type LoadedDataset,
} from '@descent/engine';
import {
  FLAG_OF, HYPERPARAMETERS, LocalRunner, modelOf, QueueRunner, parseRedisUrl, buildClassifier, decodeWeights, checkSpaceModels, defaultSpace, describeSpace, hyperbandPlan, objectiveOf, parseDomain,
  planSearch, plannedEpochs, readSpaceFile, runSearch, spaceSize, trainingJob,
  type HyperparameterName, type JobRunner, type MetricName, type SearchSettings, type SearchSpace, type Trial, type TrialResult,
} from '@descent/jobs';
import { backendOption, checkWritableFolder, dataOption, datasetOption, jsonOption, prepareForTraining, readDataset, statOrUndefined, useBackend } from '../common.js';
import { evaluateClassifier } from '../evaluation.js';
import { fraction, nonNegativeInteger, positiveInteger, seed } from '../flags.js';
import type { CliModule } from '../module.js';
import { Output, metric, shortPath } from '../output.js';
import { searchReport } from './report.js';
import { commandLine, shellWord } from '../invocation.js';
import { claimModelFolder, claimNewFolder } from '../model-folder.js';
import { isSearchFolder, readSearch, readTrials, writeSearch, writeTrial, type SavedSearch } from '../tune/folder.js';
import { parseLocation } from '@descent/store';
import { SearchRecorder } from '../tune/store.js';
import { SearchTable } from '../tune/table.js';
import { kernelThreadsText, trialThreads, trialThreadsOption } from '../tune/threads.js';

interface TuneFlags {
  algorithm: 'hyperband' | 'random';
  maxEpochs: number;
  factor: number;
  iterations: number;
  trials: number;
  objective: MetricName;
  units?: string;
  lr?: string;
  dropout?: string;
  hiddenLayers?: string;
  optimizer?: string;
  layers?: string;
  filters?: string;
  kernelSize?: string;
  space?: string;
  dataset: DatasetName;
  data?: string;
  batchSize: number;
  validationSplit: number;
  earlyStopping: number;
  seed: number;
  workers: number;
  threads: number | 'auto';
  queue?: string;
  backend: BackendName;
  out?: string;
  resume?: string;
  retrainBest?: number;
  report?: boolean;
  db?: string;
  json?: boolean;
}

/** Flags that define the search; with --resume they may only repeat the saved values. */
const SEARCH_FLAGS: ReadonlyArray<[keyof TuneFlags, string]> = [
  ['algorithm', '--algorithm'], ['maxEpochs', '--max-epochs'], ['factor', '--factor'], ['iterations', '--iterations'], ['trials', '--trials'],
  ['objective', '--objective'], ['units', '--units'], ['lr', '--lr'], ['dropout', '--dropout'], ['hiddenLayers', '--hidden-layers'],
  ['optimizer', '--optimizer'], ['layers', '--layers'], ['filters', '--filters'], ['kernelSize', '--kernel-size'], ['space', '--space'], ['dataset', '--dataset'], ['batchSize', '--batch-size'],
  ['validationSplit', '--validation-split'], ['earlyStopping', '--early-stopping'], ['seed', '--seed'],
];

export const tuneModule: CliModule = {
  register(program) {
    program
      .command('tune')
      .description('search hyperparameters with Hyperband (as keras-tuner) or random search, trials in parallel on every core')
      .addOption(new Option('--algorithm <name>', 'search algorithm').choices(['hyperband', 'random']).default('hyperband'))
      .option('--max-epochs <n>', 'Hyperband: most epochs one model trains (random search: epochs per trial)', positiveInteger, 10)
      .option('--factor <n>', 'Hyperband: reduction factor between rounds (≥ 2)', factorValue, 3)
      .option('--iterations <n>', 'Hyperband: times to run all brackets', positiveInteger, 1)
      .option('--trials <n>', 'random search: number of trials', positiveInteger, 10)
      .addOption(new Option('--objective <metric>', 'what the search maximises (accuracy) or minimises (loss)').choices(['val_accuracy', 'val_loss']).default('val_accuracy'))
      .option('--units <space>', 'units per hidden layer: min:max:step, a list or a value (default 32:512:32)')
      .option('--lr <space>', 'learning rate: a list, min:max:log or a value (default 1e-2,1e-3,1e-4)')
      .option('--dropout <space>', 'dropout after each hidden layer (default 0)')
      .option('--hidden-layers <space>', 'number of hidden layers (default 1)')
      .option('--optimizer <list>', 'optimizers to try: adam, sgd or adam,sgd (default adam)')
      .option('--layers <definitions>', 'layer definitions to try, separated by |, with {units} {filters} {kernel_size} {dropout} for the trial\'s values, or cnn (default: the dense model)')
      .option('--filters <space>', 'filters, for {filters} in --layers (default 32)')
      .option('--kernel-size <space>', 'kernel sizes, for {kernel_size} in --layers (default 3)')
      .option('--space <file>', 'search space as JSON, e.g. {"units": {"min": 32, "max": 512, "step": 32}, "lr": [0.01, 0.001]}; flags override it')
      .addOption(datasetOption('dataset to search on').default('fashion-mnist'))
      .addOption(dataOption())
      .option('--batch-size <n>', 'images per gradient step', positiveInteger, 32)
      .option('--validation-split <f>', 'fraction of training images held out to score trials (the last ones)', validationFraction, 0.2)
      .option('--early-stopping <patience>', 'stop a trial after this many epochs without val_loss improving (0: off)', nonNegativeInteger, 5)
      .option('--seed <n>', 'seed of the search: the same seed gives the same results, whatever the number of workers', seed, 42)
      .option('--workers <n>', 'trials run at once on worker threads (default: one per core)', positiveInteger, availableParallelism())
      .addOption(trialThreadsOption())
      .option('--queue <url>', 'send trials through a BullMQ queue in Redis to `descent worker` processes, e.g. redis://127.0.0.1:6379')
      .addOption(backendOption().default('wasm'))
      .option('--out <dir>', 'folder for the search (default: ./searches/<dataset>-<date>-<time>)')
      .option('--resume <dir>', 'continue an interrupted search, without redoing its finished trials')
      .option('--retrain-best <epochs>', 'then train the best hyperparameters for this many epochs with early stopping, report the best epoch, save that model', positiveInteger)
      .option('--db <url>', 'also record every trial (training_runs) and the best model (models) in the SQL store: a SQLite file or mariadb://user:pass@host:port/db')
      .option('--report', 'write report.html and PNG charts (the search chart, then the best model\'s) into DIR/report at the end')
      .addOption(jsonOption())
      .action(async (flags: TuneFlags, command: Command) => tune(flags, command));
  },
};

function factorValue(value: string): number {
  const n = positiveInteger(value);
  if (n < 2) throw new UsageError(`--factor ${value}: must be a whole number ≥ 2`);
  return n;
}

function validationFraction(value: string): number {
  const n = fraction(value);
  if (n === 0) throw new UsageError('--validation-split 0: trials are scored on validation data; give a fraction above 0, e.g. 0.2');
  return n;
}

async function tune(flags: TuneFlags, command: Command): Promise<void> {
  const output = new Output({ json: flags.json === true });
  const given = (key: string): boolean => command.getOptionValueSource(key) === 'cli';

  // Everything is checked before anything is loaded or written.
  let search: SavedSearch;
  let completed: TrialResult[] = [];
  let outDir: string;
  if (flags.resume) {
    outDir = resolve(flags.resume);
    search = readSearch(outDir, `--resume ${flags.resume}`);
    const fresh = searchSettings(flags);
    for (const [key, flag] of SEARCH_FLAGS) {
      if (given(key) && JSON.stringify(fresh[settingOf(key)]) !== JSON.stringify(search.settings[settingOf(key)])) {
        throw new UsageError(`--resume ${flags.resume}: holds a different search (its ${flag} is not ${String(flags[key])}); drop ${flag}, or start a new search with --out`);
      }
    }
    if (given('data')) search.settings.data.dir = fresh.data.dir;
    completed = readTrials(outDir);
    checkTrialsFit(search.settings, completed, flags.resume);
    if (flags.out) throw new UsageError('--out: not with --resume (the search continues in its own folder)');
  } else {
    const settings = searchSettings(flags);
    outDir = resolve(flags.out ?? defaultOutDir(settings.data.dataset));
    if (isSearchFolder(outDir)) throw new UsageError(`--out ${flags.out ?? shortPath(outDir)}: already holds a search; continue it with ${commandLine(`tune --resume ${shellWord(flags.out ?? shortPath(outDir))}`)}, or choose another folder`);
    checkWritableFolder(outDir, `--out ${flags.out ?? shortPath(outDir)}`);
    search = { format: 'descent-search', version: 1, id: randomBytes(6).toString('hex'), created: new Date().toISOString(), settings };
  }
  const settings = search.settings;

  if (flags.queue) parseRedisUrl(flags.queue);
  if (flags.db !== undefined) parseLocation(flags.db, { flag: '--db' });
  if (flags.queue && given('workers')) throw new UsageError('--workers: with --queue, each `descent worker` sets its own (--workers there)');
  if (flags.queue && given('threads')) throw new UsageError('--threads: with --queue, each `descent worker` sets its own (--threads there)');

  // One run per search folder: a second `descent tune` with the same --out or --resume fails at once.
  const label = flags.resume ? `--resume ${flags.resume}` : `--out ${flags.out ?? shortPath(outDir)}`;
  const claim = flags.resume || flags.out ? claimModelFolder(outDir, { label, resuming: true }) : claimNewFolder(outDir, label);
  outDir = claim.dir;
  try {
    if (!flags.queue) prepareForTraining(flags.backend); // the trials train in this process's threads
    // An unreachable queue fails here (exit 1), before anything is loaded or written.
    const runner: JobRunner = flags.queue ? await QueueRunner.connect(flags.queue) : new LocalRunner({ workers: flags.workers, backend: flags.backend, threads: trialThreads(flags) });
    let data: LoadedDataset;
    try {
      useBackend(flags.backend, output);
      data = await readDataset(settings.data.dataset as DatasetName, settings.data.dir ?? undefined, output);
    } catch (error) {
      await runner.close();
      throw error;
    }
    settings.data.dir ??= data.dir;
    let recorder: SearchRecorder | undefined;
    try {
      if (flags.db !== undefined) recorder = await SearchRecorder.open(flags.db, search.id, settings);
    } catch (error) {
      await runner.close();
      throw error;
    }
    if (!flags.resume) await writeSearch(outDir, search);

    const plan = planSearch(settings);
    const where = flags.queue ? `the workers of ${flags.queue}` : `${flags.workers} worker thread${flags.workers === 1 ? '' : 's'}${kernelThreadsText(flags)}`;
    describeSearch(output, settings, plan.slots.length, where, completed.length, outDir);
    const table = new SearchTable(output, settings, plan.slots.length);
    table.header();
    for (const trial of completed) table.finished(trial, true);

    // Ctrl-C: cancel the running trials (their batches end) and keep what is finished; a second one quits at once.
    const controller = new AbortController();
    let interrupted = false;
    const onInterrupt = (): void => {
      if (interrupted) {
        output.error('descent: interrupted again; quitting now (finished trials are saved)');
        process.exit(130);
      }
      interrupted = true;
      output.error('descent: interrupted; stopping the running trials (press Ctrl-C again to quit at once)');
      controller.abort();
    };
    process.on('SIGINT', onInterrupt);
    const lastRounds = new Set(plan.slots.filter((s) => s.round === s.bracket).map((s) => s.index));
    const started = performance.now();
    try {
      const outcome = await runSearch(settings, runner, {
        completed,
        signal: controller.signal,
        // Unique per run, so jobs left in a queue by an interrupted run never answer for this one.
        jobPrefix: `${search.id}-${randomBytes(3).toString('hex')}-`,
        progressEvery: 50,
        hooks: {
          onTrialStart: (trial: Trial) => {
            recorder?.started(trial);
            table.started(trial);
          },
          onTrialEvent: (trial, event) => table.progress(trial, event),
          onTrialEnd: async (trial) => {
            // A trial that a later round may continue keeps its best weights on disk (for --resume).
            await writeTrial(outDir, trial, settings.algorithm === 'hyperband' && !lastRounds.has(trial.index));
            await recorder?.finished(trial);
            table.finished(trial);
          },
        },
      });
      const seconds = (performance.now() - started) / 1000;
      table.done();
      if (outcome.interrupted && (interrupted || outcome.trials.length < outcome.planned)) {
        output.note(`Interrupted after ${outcome.trials.length} of ${outcome.planned} trials (${seconds.toFixed(1)} s); finished trials are saved in ${shortPath(outDir)}`);
        output.note(`Resume with: ${commandLine(`tune --resume ${shellWord(shortPath(outDir))}`)}`);
        await recorder?.interrupted();
        output.record({ interrupted: true, trials_finished: outcome.trials.length, trials_planned: outcome.planned, search_dir: outDir });
        process.exitCode = 130;
        return;
      }
      if (outcome.exhausted) output.note(`The search space has only ${spaceSize(settings.space)} combinations: the search stopped after ${outcome.planned} trials, as keras-tuner does when it runs out of new values.`);
      table.summary(outcome.trials);
      const best = outcome.best;
      if (!best) throw new UsageError('no trial finished with a score: nothing to save');
      const bestDir = join(outDir, 'best-model');
      const test = await saveTrialModel(bestDir, best, data, settings);
      const stored = await recorder?.model(bestDir, SearchRecorder.modelName(outDir, 'best'), best, test);
      output.line(`Best trial ${best.id}: ${settings.objective.name} ${metric(best.score)} (epoch ${(best.bestEpoch ?? 0) + 1}) with ${valuesText(best, settings.space)}`);
      output.line(`Search: ${outcome.trials.length} trials, ${trainedEpochs(outcome.trials)} epochs in ${seconds.toFixed(1)} s`);
      output.line(`Best model: test loss ${metric(test.loss)} - test accuracy ${metric(test.accuracy)}; saved to ${output.green(shortPath(bestDir))}`);
      output.record({
        best_trial: best.id, objective: settings.objective.name, score: best.score, best_epoch: best.bestEpoch === null ? null : best.bestEpoch + 1,
        hyperparameters: best.values, test_loss: test.loss, test_accuracy: test.accuracy, trials: outcome.trials.length,
        epochs: trainedEpochs(outcome.trials), seconds, model_dir: bestDir, search_dir: outDir, stored_model: stored?.name ?? null,
      });
      if (stored) output.note(`Recorded ${outcome.trials.length} trials and the model '${stored.name}' in ${flags.db}`);
      if (flags.report) await searchReport(outDir, { backend: flags.backend, json: flags.json }, output);
      if (flags.retrainBest !== undefined && !controller.signal.aborted) await retrainBest(flags.retrainBest, best, settings, runner, data, outDir, output, controller.signal, recorder);
    } finally {
      process.off('SIGINT', onInterrupt);
      await runner.close();
      await recorder?.close();
    }
  } finally {
    claim.release();
  }
}

/** The seed's follow-up: train the best hyperparameters longer with early stopping, keep the best epoch. */
async function retrainBest(
  epochs: number, best: TrialResult, settings: SearchSettings, runner: JobRunner, data: LoadedDataset, outDir: string, output: Output, signal: AbortSignal,
  recorder: SearchRecorder | undefined,
): Promise<void> {
  output.note(`Retraining the best hyperparameters for up to ${epochs} epochs${settings.patience !== null ? ` (early stopping on val_loss, patience ${settings.patience})` : ''}`);
  const trial: Trial = { ...best, id: 'retrain', index: -1, iteration: null, bracket: null, round: null, epochs, initialEpoch: 0, parent: null };
  const spec = trainingJob({
    id: `retrain-${best.id}-${Date.now().toString(36)}`,
    data: settings.data,
    model: modelOf(best.values),
    optimizer: { name: best.values.optimizer, learningRate: best.values.lr },
    epochs,
    batchSize: settings.batchSize,
    validationSplit: settings.validationSplit,
    seed: settings.seed,
    earlyStopping: settings.patience === null ? null : { monitor: 'val_loss', patience: settings.patience, restoreBestWeights: false },
    keepBest: settings.objective,
  });
  const result = await runner.run(spec, {
    signal,
    onEvent: (event) => {
      if (event.type !== 'epoch') return;
      output.note(`Epoch ${event.epoch + 1}/${epochs} - ${event.seconds.toFixed(0)}s - loss: ${metric(event.loss)} - accuracy: ${metric(event.accuracy)} - val_loss: ${metric(event.val_loss)} - val_accuracy: ${metric(event.val_accuracy)}`);
      output.record({ retrain_epoch: event.epoch + 1, loss: event.loss, accuracy: event.accuracy, val_loss: event.val_loss, val_accuracy: event.val_accuracy, seconds: event.seconds });
    },
  });
  if (result.status === 'cancelled') {
    output.note('Retraining interrupted; the search results above are saved');
    process.exitCode = 130;
    return;
  }
  const bestEpoch = result.best?.epoch ?? result.history.epoch[result.history.epoch.length - 1];
  const retrained: TrialResult = { ...trial, status: result.status, score: result.best?.value ?? null, bestEpoch, history: result.history, seconds: result.seconds, weights: result.weights };
  const dir = join(outDir, 'retrained-model');
  const test = await saveTrialModel(dir, retrained, data, settings);
  await recorder?.model(dir, SearchRecorder.modelName(outDir, 'retrained'), retrained, test);
  output.line(`Best epoch: ${bestEpoch + 1} of ${result.history.epoch.length}${result.status === 'stopped-early' ? ' (stopped early)' : ''}, ${settings.objective.name} ${metric(result.best?.value)}`);
  output.line(`Retrained model (weights of epoch ${bestEpoch + 1}): test loss ${metric(test.loss)} - test accuracy ${metric(test.accuracy)}; saved to ${output.green(shortPath(dir))}`);
  output.record({ retrained_best_epoch: bestEpoch + 1, score: result.best?.value ?? null, test_loss: test.loss, test_accuracy: test.accuracy, model_dir: dir });
}

/** Saves a trial's kept weights as a model folder (as `descent train` saves), after testing them. */
async function saveTrialModel(dir: string, trial: TrialResult, data: LoadedDataset, settings: SearchSettings): Promise<{ loss: number; accuracy: number }> {
  const { values } = trial;
  const model = buildClassifier(modelOf(values), [data.train.rows, data.train.cols], data.classNames.length, trial.seed);
  try {
    model.setWeights(decodeWeights(trial.weights));
    const test = evaluateClassifier(model, data.test);
    await saveModel(dir, model, {
      status: 'complete',
      dataset: settings.data.dataset,
      classNames: data.classNames,
      seed: trial.seed,
      epochs: trial.epochs,
      epochsCompleted: trial.history.epoch.length > 0 ? trial.history.epoch[trial.history.epoch.length - 1] + 1 : trial.epochs,
      hyperparameters: {
        dataset: settings.data.dataset, hidden: modelOf(values).hidden, dropout: values.dropout, layers: modelOf(values).layers ?? null,
        optimizer: values.optimizer, lr: values.lr, batchSize: settings.batchSize, validationSplit: settings.validationSplit, seed: trial.seed,
        trial: trial.id, objective: settings.objective.name, score: trial.score,
      },
      history: trial.history,
      ...(trial.bestEpoch !== null ? { weightsFromEpoch: trial.bestEpoch } : {}),
      test: { loss: test.loss, accuracy: test.accuracy },
    });
    return test;
  } finally {
    model.dispose();
  }
}

/** The search's settings from the flags (and --space); throws a UsageError naming the flag or file. */
function searchSettings(flags: TuneFlags): SearchSettings {
  let space: SearchSpace = defaultSpace();
  if (flags.space) space = readSpaceFile(flags.space, space);
  const fromFlags: Record<HyperparameterName, string | undefined> = {
    units: flags.units, lr: flags.lr, dropout: flags.dropout, hidden_layers: flags.hiddenLayers, optimizer: flags.optimizer,
    layers: flags.layers, filters: flags.filters, kernel_size: flags.kernelSize,
  };
  for (const name of HYPERPARAMETERS) {
    const text = fromFlags[name];
    if (text !== undefined) space[name] = parseDomain(name, text, `${FLAG_OF[name]} ${text}`);
  }
  // Both datasets are 28×28 images of 10 classes.
  checkSpaceModels(space, [28, 28], 10);
  return {
    algorithm: flags.algorithm,
    maxEpochs: flags.maxEpochs,
    factor: flags.factor,
    iterations: flags.iterations,
    trials: flags.trials,
    objective: objectiveOf(flags.objective),
    seed: flags.seed,
    space,
    data: { dataset: flags.dataset, dir: flags.data ? resolve(flags.data) : null },
    batchSize: flags.batchSize,
    validationSplit: flags.validationSplit,
    patience: flags.earlyStopping > 0 ? flags.earlyStopping : null,
  };
}

/** Which part of the settings a flag sets (to compare a resumed search's). */
function settingOf(key: keyof TuneFlags): keyof SearchSettings {
  const map: Partial<Record<keyof TuneFlags, keyof SearchSettings>> = {
    units: 'space', lr: 'space', dropout: 'space', hiddenLayers: 'space', optimizer: 'space', space: 'space',
    layers: 'space', filters: 'space', kernelSize: 'space',
    dataset: 'data', earlyStopping: 'patience',
  };
  return map[key] ?? (key as keyof SearchSettings);
}

/** Trials found in a resume folder must be the ones this search would run. */
function checkTrialsFit(settings: SearchSettings, trials: readonly TrialResult[], dir: string): void {
  const { slots } = planSearch(settings);
  for (const trial of trials) {
    const slot = slots[trial.index];
    const fits = slot && slot.epochs === trial.epochs && slot.initialEpoch === trial.initialEpoch && (slot.values === null || JSON.stringify(slot.values) === JSON.stringify(trial.values));
    if (!fits) throw new UsageError(`--resume ${dir}: trials/${trial.id}.json belongs to a different search`);
  }
}

function describeSearch(output: Output, settings: SearchSettings, trials: number, where: string, finished: number, outDir: string): void {
  const schedule = settings.algorithm === 'hyperband'
    ? `Hyperband, max_epochs ${settings.maxEpochs}, factor ${settings.factor}${settings.iterations > 1 ? `, ${settings.iterations} iterations` : ''}: ${trials} trials, ${plannedEpochs(hyperbandPlan(settings).slice(0, trials))} epochs at most`
    : `random search: ${trials} trials of ${settings.maxEpochs} epochs`;
  output.note(`Search: ${schedule}, objective ${settings.objective.name}, seed ${settings.seed}, on ${where}`);
  output.note(`Space: ${describeSpace(settings.space)} (${spaceSize(settings.space)} combinations)`);
  output.note(`Each trial: batch ${settings.batchSize}, validation split ${settings.validationSplit}${settings.patience !== null ? `, early stopping on val_loss (patience ${settings.patience})` : ''}; folder ${shortPath(outDir)}`);
  if (finished > 0) output.note(`Resuming: ${finished} of ${trials} trials already finished`);
}

export function valuesText(trial: Pick<TrialResult, 'values'>, space: SearchSpace): string {
  return HYPERPARAMETERS.filter((name) => !(space[name].kind === 'choice' && (space[name] as { values: unknown[] }).values.length === 1))
    .map((name) => `${name} ${String(trial.values[name])}`)
    .join(', ');
}

function trainedEpochs(trials: readonly TrialResult[]): number {
  return trials.reduce((sum, t) => sum + t.history.epoch.length, 0);
}

function defaultOutDir(dataset: string): string {
  const now = new Date();
  const pad = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const base = resolve('searches', `${dataset}-${stamp}`);
  let dir = base;
  for (let n = 2; statOrUndefined(dir); n++) dir = `${base}-${n}`;
  return dir;
}

