/**
 * The SQL store in the other commands:
 *
 *   descent train --db URL --dataset NAME ...   train on a dataset of the store; the model is recorded there too
 *   descent evaluate MODEL_DIR --db URL          test on the store's test split of the model's dataset
 *   descent evaluate MODEL_DIR --store           record the whole test set's predictions in the store
 *   descent predict MODEL_DIR ... --store        record the predictions in the store
 *
 * --db names the store (default ./descent.db); --store writes to it.
 *
 * A `train --db` run is a row of training_runs from its start: 'running', its history updated at
 * every epoch's end, then 'complete' (or 'stopped-early', 'terminated-nan') with its model,
 * 'interrupted' after Ctrl-C, or 'failed' with the error. `train --resume` continues the same row.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { DATASET_NAMES, TRAINING_FILE, UsageError, loadModelArtifacts, type TrainingMetadata } from '@descent/engine';
import { parseLocation, sha256, type RunStatus, type RunUpdate, type Store } from '@descent/store';
import type { CliModule, CommandData, TrainRun } from '../module.js';
import { count, type Output } from '../output.js';
import { currentUser, dbOption, withStore } from '../store.js';
import { commandLine } from '../invocation.js';

type Options = Record<string, unknown>;

export const storeModule: CliModule = {
  train: {
    options(command) {
      command.addOption(dbOption('train on --dataset from the store and record the model there'));
      allowStoreDatasets(command);
    },
    validate: (options) => checkDbFlags(options, { needsStore: false, readsData: true }),
    loadData: (options, dataset, output) => readFromStore(options.db, dataset, ['train', 'test'], output),
    async callbacks(run) {
      if (run.options.db === undefined) return [];
      await startRun(run);
      return [{
        async onEpochEnd() {
          const history = run.history();
          await updateRunInStore(run, { history, epochsDone: history.epoch.length });
        },
      }];
    },
    async finish(run, result) {
      if (run.options.db === undefined) return;
      await recordTraining(run, result.outDir, result.test);
    },
    async interrupted(run, where) {
      const history = run.history();
      const message = `interrupted ${where}; resume with: descent train --resume ${run.outDir}`;
      const db = await updateRunInStore(run, { status: 'interrupted', history, epochsDone: history.epoch.length, message, finished: true });
      if (db) run.output.note(`Recorded training run ${run.settings.trainingRun} as interrupted in ${db}`);
    },
    async failed(run, error) {
      const message = error instanceof Error ? error.message : String(error);
      await updateRunInStore(run, { status: 'failed', history: run.history(), epochsDone: run.history().epoch.length, message, finished: true });
    },
  },

  evaluate: {
    options(command) {
      command.addOption(dbOption('test on the store\'s test split of --dataset (default: the model\'s); with --store, record there'));
      command.option('--store', 'record the predictions for the whole test set in the store (--db, default ./descent.db), replacing the model\'s earlier ones');
      allowStoreDatasets(command);
    },
    validate: (options) => checkDbFlags(options, { needsStore: false, readsData: true }),
    loadData: (options, dataset, output) => readFromStore(options.db, dataset, ['test'], output),
    async finish(run) {
      if (run.options.store !== true) return;
      const started = performance.now();
      const classes = run.data.classNames.length;
      const test = run.data.test;
      const ids = (test as { ids?: Float64Array }).ids;
      const saved = await withStore(run.options.db as string | undefined, { create: true }, async (store) => {
        const model = await modelInStore(store, run.modelDir);
        const byHash = ids ? undefined : await imageIdsIfStored(store, run.data.name);
        const size = test.rows * test.cols;
        const predictions = Array.from({ length: test.count }, (_, i) => {
          const pixels = test.images.subarray(i * size, (i + 1) * size);
          const imageId = ids ? ids[i] : byHash?.get(sha256(pixels)) ?? null;
          return { imageId, pixels: imageId === null ? pixels : null, input: `test[${i}]`, probabilities: run.probabilities.subarray(i * classes, (i + 1) * classes), trueLabel: test.labels[i] };
        });
        const result = await store.savePredictions({ modelId: model.id, origin: 'evaluate', createdBy: currentUser(), replace: true, predictions });
        return { ...result, model: model.name, db: store.display };
      });
      const seconds = (performance.now() - started) / 1000;
      const replaced = saved.replaced ? `, replacing ${count(saved.replaced)} earlier ones` : '';
      run.output.note(`Stored ${count(saved.saved)} predictions of model ${saved.model} in ${saved.db}${replaced} (${seconds.toFixed(2)} s)`);
      run.output.record({ stored: saved.saved, replaced: saved.replaced, model: saved.model, db: saved.db, seconds });
    },
  },

  predict: {
    options(command) {
      command.addOption(dbOption('the store --store writes to'));
      command.option('--store', 'record the predictions in the store (--db, default ./descent.db)');
    },
    validate: (options) => checkDbFlags(options, { needsStore: true, readsData: false }),
    async finish(run) {
      if (run.options.store !== true) return;
      const saved = await withStore(run.options.db as string | undefined, { create: true }, async (store) => {
        const model = await modelInStore(store, run.modelDir);
        const byHash = model.dataset ? await imageIdsIfStored(store, model.dataset) : undefined;
        const predictions = run.predictions.map((p) => {
          const imageId = byHash?.get(sha256(p.pixels)) ?? null;
          return { imageId, pixels: imageId === null ? p.pixels : null, input: p.input, probabilities: p.probabilities, trueLabel: p.trueLabel ?? null };
        });
        const result = await store.savePredictions({ modelId: model.id, origin: 'predict', createdBy: currentUser(), predictions });
        return { ...result, model: model.name, db: store.display };
      });
      run.output.note(`Stored ${count(saved.saved)} prediction${saved.saved === 1 ? '' : 's'} of model ${saved.model} in ${saved.db}`);
    },
  },
};

/** --db and --store go together, --db and --data exclude each other; a bad --db fails before anything is loaded. */
function checkDbFlags(options: Options, { needsStore, readsData }: { needsStore: boolean; readsData: boolean }): void {
  if (typeof options.db === 'string') parseLocation(options.db);
  if (needsStore && options.db !== undefined && options.store !== true) throw new UsageError('--db names the store that --store writes to; add --store');
  if (readsData && options.db !== undefined && options.data !== undefined) throw new UsageError('give either --data (IDX files) or --db (the store), not both');
  const dataset = options.dataset;
  if (options.db === undefined && typeof dataset === 'string' && !(DATASET_NAMES as readonly string[]).includes(dataset)) {
    throw new UsageError(`option '--dataset <name>' argument '${dataset}' is invalid. Allowed choices are ${DATASET_NAMES.join(', ')} (any dataset of the store with --db)`);
  }
}

/** With --db, --dataset may name any dataset of the store, not only the built-in ones. */
function allowStoreDatasets(command: Command): void {
  const option = command.options.find((o) => o.long === '--dataset');
  if (!option) return;
  // .choices() installed both the list (for --help) and a parser that checks it: drop both.
  option.argChoices = undefined;
  option.parseArg = undefined;
}

/** The dataset's splits from the store named by --db; undefined without --db (the IDX files are read). */
async function readFromStore(db: unknown, dataset: string, splits: Array<'train' | 'test'>, output: Output): Promise<CommandData | undefined> {
  if (typeof db !== 'string') return undefined;
  return withStore(db, {}, async (store) => {
    const started = performance.now();
    const found = await store.requireDataset(dataset);
    for (const split of splits) {
      if (found.counts[split].every((n) => n === 0)) {
        throw new UsageError(`--dataset ${dataset}: has no ${split} images in ${store.display}; import some with \`${commandLine(`db import-images DIR --dataset ${dataset} --split ${split}`)}\``);
      }
    }
    const train = splits.includes('train') ? await store.loadSplit(dataset, 'train') : undefined;
    const test = await store.loadSplit(dataset, 'test');
    const seconds = (performance.now() - started) / 1000;
    output.note(`Read ${train ? `${count(train.count)} training and ` : ''}${count(test.count)} test images of ${dataset} from ${store.display} in ${seconds.toFixed(2)} s`);
    const empty = { images: new Uint8Array(0), labels: new Uint8Array(0), count: 0, rows: test.rows, cols: test.cols, classNames: test.classNames };
    return { name: dataset, dir: store.display, classNames: found.classNames, train: train ?? empty, test };
  });
}

/** The dataset's image ids by content hash, when the store holds that dataset. */
async function imageIdsIfStored(store: Store, dataset: string): Promise<Map<string, number> | undefined> {
  return (await store.getDataset(dataset)) ? store.imageIdsByHash(dataset) : undefined;
}

/** The store's record of the model in `dir`: found by its files' bytes, or added now. */
async function modelInStore(store: Store, dir: string): Promise<{ id: number; name: string; dataset: string | null }> {
  const loaded = await loadModelArtifacts(dir);
  const modelJson = readFileSync(loaded.modelFile, 'utf8');
  const weights = new Uint8Array(loaded.artifacts.weightData);
  const known = await store.findModelByFiles(modelJson, weights);
  if (known) return known;
  const metadata = loaded.metadata;
  const dataset = metadata?.dataset && (await store.getDataset(metadata.dataset)) ? metadata.dataset : null;
  const saved = await store.saveModel({
    name: basename(loaded.dir), dataset, architecture: JSON.stringify(loaded.artifacts.modelTopology ?? null), modelJson, weights,
    trainingJson: readOptional(join(loaded.dir, TRAINING_FILE)), dir: loaded.dir,
    testLoss: metadata?.test?.loss ?? null, testAccuracy: metadata?.test?.accuracy ?? null, createdBy: currentUser(),
  });
  return { ...saved, dataset };
}

/** Training runs whose row this process marked 'running' (so only those are marked failed or interrupted). */
const runsStarted = new WeakSet<TrainRun>();

/**
 * Before the first epoch: the run's row of training_runs, marked 'running'. A resumed run continues
 * its row when it is in this store; otherwise (or for a new run) a row is added. Its id is saved
 * with the run's settings, so a later --resume finds it.
 */
async function startRun(run: TrainRun): Promise<void> {
  await withStore(run.options.db as string, {}, async (store) => {
    const previous = run.settings.trainingRun;
    const history = run.history();
    if (previous != null && (await store.runStatus(previous)) !== undefined) {
      await store.updateRun(previous, { status: 'running', history, epochsDone: history.epoch.length, message: null, finished: false });
    } else {
      run.settings.trainingRun = await store.createRun({ dataset: run.data.name, settings: run.settings, status: 'running', createdBy: currentUser() });
      if (history.epoch.length > 0) await store.updateRun(run.settings.trainingRun, { history, epochsDone: history.epoch.length });
    }
  });
  runsStarted.add(run);
}

/**
 * Updates the run's row; a store that fails now costs a warning, never the training (the model is
 * saved in its folder whatever happens). Returns the store's name once the row is updated.
 */
async function updateRunInStore(run: TrainRun, update: RunUpdate): Promise<string | undefined> {
  const id = run.settings.trainingRun;
  if (!runsStarted.has(run) || id == null) return undefined;
  try {
    return await withStore(run.options.db as string, {}, async (store) => {
      await store.updateRun(id, update);
      return store.display;
    });
  } catch (error) {
    run.output.warn(`could not update training run ${id} in ${run.settings.db}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

/** After `train --db`: the model, recorded in the store, and the run's row finished with it. */
async function recordTraining(run: TrainRun, outDir: string, test: { loss: number; accuracy: number }): Promise<void> {
  const recorded = await withStore(run.options.db as string, {}, async (store) => {
    const model = await modelInStore(store, outDir);
    const metadata = JSON.parse(readOptional(join(outDir, TRAINING_FILE)) ?? '{}') as TrainingMetadata;
    const history = run.history();
    const runId = run.settings.trainingRun ?? (await store.createRun({ dataset: run.data.name, settings: run.settings, createdBy: currentUser() }));
    await store.updateRun(runId, { status: (metadata.status ?? 'complete') as RunStatus, history, epochsDone: history.epoch.length, modelId: model.id, message: null, finished: true });
    return { model: model.name, runId, db: store.display };
  });
  runsStarted.delete(run); // finished: a later failure elsewhere does not change its status
  run.output.note(`Recorded model ${recorded.model} (test accuracy ${test.accuracy.toFixed(4)}) and training run ${recorded.runId} in ${recorded.db}`);
  run.output.record({ stored_model: recorded.model, training_run: recorded.runId, db: recorded.db });
}

function readOptional(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
