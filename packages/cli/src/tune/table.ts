/**
 * The live view of a search: one row per finished trial as it finishes (trial, hyperparameters,
 * epochs, objective, seconds) and, on a terminal, a line redrawn below them with the trials that
 * are running and how far each is. With --json, one object per finished trial instead.
 */
import { HYPERPARAMETERS, rankTrials, type HyperparameterName, type JobEvent, type SearchSettings, type Trial, type TrialResult } from '@descent/jobs';
import { metric, type Output } from '../output.js';

const REDRAW_MS = 100;

interface Column {
  title: string;
  width: number;
  cell(trial: TrialResult): string;
}

export class SearchTable {
  private readonly columns: Column[];
  private readonly running = new Map<string, string>();
  private lastDraw = 0;
  private finishedCount = 0;

  constructor(private readonly output: Output, private readonly settings: SearchSettings, private readonly planned: number) {
    const varying = HYPERPARAMETERS.filter((name) => {
      const domain = settings.space[name];
      return !(domain.kind === 'choice' && domain.values.length === 1);
    });
    const objective = settings.objective.name;
    this.columns = [
      { title: 'trial', width: 5, cell: (t) => t.id },
      ...(settings.algorithm === 'hyperband' ? [{ title: 'bracket', width: 7, cell: (t: TrialResult) => `${t.bracket}/${t.round}` }] : []),
      ...varying.map((name) => ({ title: name, width: Math.max(name.length, 7), cell: (t: TrialResult) => formatValue(name, t.values[name]) })),
      { title: 'epochs', width: 6, cell: (t) => (t.initialEpoch > 0 ? `${t.initialEpoch}→${t.epochs}` : String(t.epochs)) },
      { title: 'from', width: 5, cell: (t) => t.parent ?? '-' },
      { title: objective, width: Math.max(objective.length, 7), cell: (t) => metric(t.score) },
      { title: 'best', width: 4, cell: (t) => (t.bestEpoch === null ? '-' : String(t.bestEpoch + 1)) },
      { title: 'seconds', width: 7, cell: (t) => t.seconds.toFixed(1) },
      { title: 'status', width: 6, cell: (t) => (t.status === 'complete' ? '' : t.status) },
    ];
  }

  header(): void {
    this.output.line(this.output.bold(this.row(this.columns.map((c) => c.title))));
  }

  started(trial: Trial): void {
    this.running.set(trial.id, `${trial.id} starting`);
    this.redraw(true);
  }

  progress(trial: Trial, event: JobEvent): void {
    const total = trial.epochs;
    if (event.type === 'batch') this.running.set(trial.id, `${trial.id} epoch ${event.epoch + 1}/${total} ${Math.floor((100 * event.batch) / event.batches)}%`);
    else if (event.type === 'epoch') this.running.set(trial.id, `${trial.id} epoch ${event.epoch + 1}/${total} done`);
    this.redraw(false);
  }

  /** A finished trial's row (`resumed`: finished in an earlier run of the search). */
  finished(trial: TrialResult, resumed = false): void {
    this.running.delete(trial.id);
    this.finishedCount++;
    this.output.line(this.row(this.columns.map((c) => c.cell(trial))) + (resumed ? this.output.dim('  (earlier run)') : ''));
    this.output.record({
      trial: trial.id, bracket: trial.bracket, round: trial.round, ...trial.values, initial_epoch: trial.initialEpoch, epochs: trial.epochs,
      parent: trial.parent, [this.settings.objective.name]: trial.score, best_epoch: trial.bestEpoch === null ? null : trial.bestEpoch + 1,
      epochs_trained: trial.history.epoch.length, status: trial.status, seconds: trial.seconds, seed: trial.seed, resumed,
    });
    this.redraw(true);
  }

  done(): void {
    this.running.clear();
    this.output.finishLine();
  }

  /** keras-tuner's results summary: the best trials, best first. */
  summary(trials: readonly TrialResult[], top = 5): void {
    const ranked = rankTrials(this.settings.objective, trials).slice(0, top);
    if (ranked.length === 0) return;
    this.output.line();
    this.output.line(this.output.bold(`Best ${ranked.length} of ${trials.length} trials`));
    this.header();
    for (const trial of ranked) this.output.line(this.row(this.columns.map((c) => c.cell(trial))));
    this.output.line();
  }

  private row(cells: string[]): string {
    return cells.map((cell, i) => cell.padStart(this.columns[i].width)).join('  ').trimEnd();
  }

  private redraw(force: boolean): void {
    if (!this.output.interactive || this.output.json) return;
    const now = performance.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const runningText = [...this.running.values()].join(' · ');
    this.output.redraw(`${this.finishedCount}/${this.planned} trials done${runningText ? ` · running: ${runningText}` : ''}`);
  }
}

function formatValue(name: HyperparameterName, value: number | string): string {
  if (typeof value === 'string') return value;
  if (name === 'lr') return value >= 1e-3 ? String(Number(value.toPrecision(4))) : value.toExponential(1).replace('e-', 'e-');
  if (name === 'dropout') return String(Number(value.toPrecision(3)));
  return String(value);
}
