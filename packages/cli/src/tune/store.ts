/**
 * `descent tune --db URL`: every trial as a row of training_runs (created when it starts, updated
 * when it ends: status, history, epochs, score in its settings), and the best model in models,
 * linked from its trial's run. SQLite file or mariadb://..., as every --db flag takes.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { openStore, type Store } from '@descent/store';
import type { SearchSettings, Trial, TrialResult } from '@descent/jobs';

export class SearchRecorder {
  private readonly runs = new Map<string, Promise<number>>();
  private readonly unfinished = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();

  private constructor(readonly store: Store, private readonly searchId: string, private readonly settings: SearchSettings) {}

  /** Opens (creating if needed) the store; a bad --db fails here, before the search starts. */
  static async open(db: string, searchId: string, settings: SearchSettings): Promise<SearchRecorder> {
    return new SearchRecorder(await openStore(db, { create: true, flag: '--db' }), searchId, settings);
  }

  started(trial: Trial): void {
    this.unfinished.add(trial.id);
    this.runs.set(trial.id, this.track(this.store.createRun({ dataset: this.settings.data.dataset, settings: this.runSettings(trial), status: 'running' })));
  }

  async finished(trial: TrialResult): Promise<void> {
    this.unfinished.delete(trial.id);
    const id = await (this.runs.get(trial.id) ?? this.store.createRun({ dataset: this.settings.data.dataset, settings: this.runSettings(trial) }));
    await this.store.updateRun(id, {
      status: trial.status,
      history: trial.history,
      epochsDone: trial.history.epoch.length,
      message: `${this.settings.objective.name} ${trial.score ?? 'none'} at epoch ${trial.bestEpoch === null ? '-' : trial.bestEpoch + 1}`,
      finished: true,
    });
  }

  /** Marks the trials that were running when the search stopped. */
  async interrupted(): Promise<void> {
    for (const id of this.unfinished) {
      const run = this.runs.get(id);
      if (run) await this.store.updateRun(await run, { status: 'interrupted', finished: true });
    }
    this.unfinished.clear();
  }

  /** Stores a saved model folder and links it to the run of the trial it came from. */
  async model(dir: string, name: string, trial: TrialResult, test: { loss: number; accuracy: number }): Promise<{ id: number; name: string }> {
    const modelJson = readFileSync(join(dir, 'model.json'), 'utf8');
    const topology = (JSON.parse(modelJson) as { modelTopology?: unknown }).modelTopology ?? null;
    const saved = await this.store.saveModel({
      name,
      dataset: this.settings.data.dataset,
      architecture: JSON.stringify(topology),
      modelJson,
      weights: readFileSync(join(dir, 'weights.bin')),
      trainingJson: readFileSync(join(dir, 'descent-training.json'), 'utf8'),
      dir,
      testLoss: test.loss,
      testAccuracy: test.accuracy,
    });
    const run = this.runs.get(trial.id);
    if (run) await this.store.updateRun(await run, { modelId: saved.id });
    return saved;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.store.close();
  }

  static modelName(outDir: string, what: string): string {
    return `${basename(outDir)}-${what}`;
  }

  private runSettings(trial: Trial | TrialResult): Record<string, unknown> {
    const result = 'score' in trial ? { score: trial.score, best_epoch: trial.bestEpoch === null ? null : trial.bestEpoch + 1 } : {};
    return {
      kind: 'tune-trial', search: this.searchId, trial: trial.id, bracket: trial.bracket, round: trial.round, parent: trial.parent,
      ...trial.values, initial_epoch: trial.initialEpoch, epochs: trial.epochs, seed: trial.seed, objective: this.settings.objective.name,
      batch_size: this.settings.batchSize, validation_split: this.settings.validationSplit, ...result,
    };
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise)).catch(() => {});
    return promise;
  }
}
