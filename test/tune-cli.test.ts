// `descent tune` end to end on the fixture: the same results whatever the number of worker
// threads, the best model saved as a normal model folder, Ctrl-C and --resume without redoing
// finished trials, --retrain-best, and bad input refused before anything is written.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../packages/store/dist/index.js';
import { FIXTURE, jsonLines, runCli, startCli, temporaryFolder, waitForOutput } from './cli-helpers.js';
import { resultsTable } from './tune-helpers.js';

const tmp = temporaryFolder('descent-tune-');
afterAll(tmp.remove);

// 6 trials (Hyperband, max_epochs 3, factor 3: 3 × 1 epoch → best 1 to 3; 2 × 3), 11 epochs.
const SEARCH = ['tune', '--data', FIXTURE, '--max-epochs', '3', '--units', '16:64:16', '--lr', '1e-2,1e-3', '--seed', '5', '--json'];


describe('descent tune', () => {
  let oneWorker: string;

  beforeAll(async () => {
    const run = await runCli([...SEARCH, '--workers', '1', '--out', join(tmp.dir, 'one')]);
    expect(run.code, run.stderr).toBe(0);
    oneWorker = run.stdout;
  });

  it('runs keras-tuner\'s schedule and saves the best model as a model folder', async () => {
    const table = resultsTable(oneWorker);
    expect(table.map((t) => [t.bracket, t.round, t.initial_epoch, t.epochs])).toEqual([
      [1, 0, 0, 1], [1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 3], [0, 0, 0, 3], [0, 0, 0, 3],
    ]);
    // The round-1 trial continues the best of round 0, with its hyperparameters.
    const round0 = table.slice(0, 3).sort((a, b) => Number(b.val_accuracy) - Number(a.val_accuracy));
    expect(table[3].parent).toBe(round0[0].trial);
    expect(table[3].units).toBe(round0[0].units);
    const summary = jsonLines(oneWorker).at(-1)!;
    const best = table.reduce((a, b) => (Number(b.val_accuracy) > Number(a.val_accuracy) ? b : a));
    expect(summary.best_trial).toBe(best.trial);
    expect(summary.score).toBe(best.val_accuracy);
    expect(summary.test_accuracy).toBeGreaterThan(0.6);
    const evaluate = await runCli(['evaluate', String(summary.model_dir), '--data', FIXTURE, '--json']);
    expect(evaluate.code, evaluate.stderr).toBe(0);
    expect(jsonLines(evaluate.stdout)[0].accuracy).toBe(summary.test_accuracy);
    const trials = readdirSync(join(tmp.dir, 'one', 'trials'));
    expect(trials.filter((f) => f.endsWith('.json'))).toHaveLength(6);
    // Only trials a later round may continue keep their weights (round 0 of bracket 1).
    expect(trials.filter((f) => f.endsWith('.weights')).sort()).toEqual(['0000.weights', '0001.weights', '0002.weights']);
  });

  it('draws the search in a report: the trials chart, then the best model\'s charts', async () => {
    const dir = join(tmp.dir, 'one');
    const run = await runCli(['report', dir, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const files = readdirSync(join(dir, 'report'));
    expect(files).toContain('search.png');
    expect(files).toContain('confusion.png');
    const html = readFileSync(join(dir, 'report', 'report.html'), 'utf8');
    expect(html).toContain('Search: hyperband, 6 trials, best val_accuracy');
    expect(html.indexOf('search.png')).toBeLessThan(html.indexOf('samples.png'));
  });

  it('gives the same results table with two worker threads, and records it in the SQL store with --db', async () => {
    const db = join(tmp.dir, 'tune.db');
    const run = await runCli([...SEARCH, '--workers', '2', '--out', join(tmp.dir, 'two'), '--db', db]);
    expect(run.code, run.stderr).toBe(0);
    expect(resultsTable(run.stdout)).toEqual(resultsTable(oneWorker));

    const store = await openStore(db);
    try {
      const runs = await store.driver.all<Record<string, unknown>>('SELECT status, settings, history, epochs_done, model_id FROM training_runs ORDER BY id');
      const trials = runs.map((r) => JSON.parse(String(r.settings)) as Record<string, unknown>).sort((a, b) => String(a.trial).localeCompare(String(b.trial)));
      const table = resultsTable(run.stdout);
      expect(trials.map((t) => [t.trial, t.units, t.lr, t.epochs, t.parent])).toEqual(table.map((t) => [t.trial, t.units, t.lr, t.epochs, t.parent]));
      expect(runs.every((r) => r.status === 'complete')).toBe(true);
      expect(runs.map((r) => Number(r.epochs_done)).reduce((a, b) => a + b)).toBe(11);
      const summary = jsonLines(run.stdout).at(-1)!;
      const models = await store.listModels();
      expect(models.map((m) => [m.name, m.testAccuracy])).toEqual([[summary.stored_model, summary.test_accuracy]]);
      const linked = runs.filter((r) => r.model_id !== null).map((r) => JSON.parse(String(r.settings)).trial);
      expect(linked).toEqual([summary.best_trial]);
    } finally {
      await store.close();
    }
  });

  it('stops on Ctrl-C and resumes without redoing finished trials, to the same table', async () => {
    const dir = join(tmp.dir, 'interrupted');
    const started = startCli([...SEARCH, '--workers', '1', '--out', dir]);
    await waitForOutput(started.child, started.stdout, (out) => resultsTable(out).length >= 2);
    started.child.kill('SIGINT');
    const stopped = await started.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stderr).toContain('interrupted');
    const finished = resultsTable(stopped.stdout).length;
    expect(finished).toBeLessThan(6);
    expect(jsonLines(stopped.stdout).at(-1)).toMatchObject({ interrupted: true, trials_finished: finished });

    const resumed = await runCli(['tune', '--resume', dir, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const records = jsonLines(resumed.stdout).filter((r) => typeof r.trial === 'string');
    expect(records.filter((r) => r.resumed === true)).toHaveLength(finished);
    expect(resultsTable(resumed.stdout)).toEqual(resultsTable(oneWorker));
  });

  it('--retrain-best trains the best hyperparameters again and saves the best epoch', async () => {
    const dir = join(tmp.dir, 'retrain');
    const run = await runCli(['tune', '--data', FIXTURE, '--max-epochs', '1', '--units', '32', '--lr', '1e-3', '--retrain-best', '4', '--early-stopping', '2', '--out', dir, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const records = jsonLines(run.stdout);
    const epochs = records.filter((r) => typeof r.retrain_epoch === 'number');
    const last = records.at(-1)!;
    expect(epochs.length).toBeGreaterThanOrEqual(3);
    const accuracies = epochs.map((r) => Number(r.val_accuracy));
    expect(last.retrained_best_epoch).toBe(accuracies.indexOf(Math.max(...accuracies)) + 1);
    const saved = JSON.parse(readFileSync(join(dir, 'retrained-model', 'descent-training.json'), 'utf8'));
    expect(saved.weightsFromEpoch).toBe(Number(last.retrained_best_epoch) - 1);
  });

  it('refuses to resume a folder with a different search', async () => {
    const dir = join(tmp.dir, 'one');
    const before = readdirSync(join(dir, 'trials')).sort();
    const run = await runCli(['tune', '--resume', dir, '--units', '32:512:32']);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`descent: --resume ${dir}: holds a different search (its --units is not 32:512:32); drop --units, or start a new search with --out`);
    expect(readdirSync(join(dir, 'trials')).sort()).toEqual(before);
    const notSearch = await runCli(['tune', '--resume', join(dir, 'trials')]);
    expect(notSearch.code).toBe(2);
    expect(notSearch.stderr.trim()).toBe(`descent: --resume ${join(dir, 'trials')}: not a search folder (no search.json)`);
  });
});

describe.concurrent('descent tune: bad input', () => {
  // Its own folder: these tests need nothing from the searches above.
  const bad = temporaryFolder('descent-tune-bad-');
  afterAll(bad.remove);
  const cases: Array<[string, string[], RegExp]> = [
    ['min > max', ['--units', '512:32:32'], /^descent: --units 512:32:32: min 512 is greater than max 32$/],
    ['step 0', ['--units', '32:512:0'], /^descent: --units 32:512:0: step must be positive, got 0$/],
    ['learning rate ≤ 0', ['--lr', '0.01,0'], /^descent: --lr 0\.01,0: a learning rate must be > 0, got 0$/],
    ['empty space', ['--lr', ''], /^descent: --lr: expected a value, got an empty one$/],
    ['unknown algorithm', ['--algorithm', 'bayesian'], /^descent: option '--algorithm <name>' argument 'bayesian' is invalid/],
    ['unknown optimizer', ['--optimizer', 'adam,lion'], /^descent: --optimizer adam,lion: unknown optimizer 'lion'/],
    ['factor 1', ['--factor', '1'], /^descent: --factor 1: must be a whole number ≥ 2$/],
    ['unknown objective', ['--objective', 'f1'], /^descent: option '--objective <metric>' argument 'f1' is invalid/],
    ['no validation', ['--validation-split', '0'], /^descent: --validation-split 0: trials are scored on validation data/],
    ['a kernel larger than the image', ['--layers', 'conv2d:{filters}:30:relu,flatten'], /^descent: --layers conv2d:\{filters\}:30:relu,flatten: .*a 30×30 window does not fit in a 28×28 input/],
    ['an unsupported --db', ['--db', 'ftp://host/db'], /^descent: --db ftp:\/\/host\/db: unsupported scheme "ftp:"/],
    ['units too many for any model', ['--units', '4000000'], /^descent: the search space's largest model \(units 4000000, .*\): the model would have 3,180,000,010 parameters, more than descent builds here/],
    ['a layer template too large at its largest units', ['--layers', 'flatten,dense:{units}:relu', '--units', '32:4000000:32'], /^descent: the search space's largest model \(units 32…4000000 step 32, .*layers flatten,dense:\{units\}:relu\): the model would have 3,180,000,010 parameters/],
  ];
  for (const [what, args, message] of cases) {
    it(`refuses ${what}`, async () => {
      const out = join(bad.dir, what.replace(/\W+/g, '-'));
      const run = await runCli(['tune', '--data', FIXTURE, ...args, '--out', out]);
      expect(run.code).toBe(2);
      expect(run.stderr.trim()).toMatch(message);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('refuses a space file with an unknown hyperparameter, naming the file', async () => {
    const file = join(bad.dir, 'space.json');
    writeFileSync(file, JSON.stringify({ units: { min: 32, max: 64, step: 32 }, momentum: [0.9] }));
    const out = join(bad.dir, 'bad-space');
    const run = await runCli(['tune', '--data', FIXTURE, '--space', file, '--out', out]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`descent: ${file}: unknown hyperparameter 'momentum' (known: units, lr, dropout, hidden_layers, optimizer, layers, filters, kernel_size)`);
    expect(existsSync(out)).toBe(false);
  });
});
