/**
 * The search chart: every trial's score against the epochs it was given (its epoch budget), one
 * colour per Hyperband bracket, and a line from each continued trial back to the trial whose
 * weights it started from. Successive halving shows as fewer, higher points further right.
 */
import type { SearchSettings, TrialResult } from '@descent/jobs';
import type { TopLevelSpec } from '../report/render.js';

export function searchChartSpec(trials: readonly TrialResult[], settings: SearchSettings, bestId: string | null): TopLevelSpec {
  const objective = settings.objective.name;
  const group = (t: TrialResult): string => (t.bracket === null ? 'random search' : `bracket ${t.bracket}${settings.iterations > 1 ? ` (iteration ${t.iteration! + 1})` : ''}`);
  const scored = trials.filter((t) => t.score !== null);
  const points = scored.map((t) => ({
    trial: t.id, group: group(t), epochs: t.epochs, score: t.score, best: t.id === bestId ? 'best' : '',
    hyperparameters: Object.entries(t.values).map(([k, v]) => `${k} ${v}`).join(', '),
  }));
  const byId = new Map(scored.map((t) => [t.id, t]));
  const links = scored.flatMap((t) => {
    const parent = t.parent === null ? undefined : byId.get(t.parent);
    return parent ? [{ link: t.id, group: group(t), epochs: parent.epochs, score: parent.score }, { link: t.id, group: group(t), epochs: t.epochs, score: t.score }] : [];
  });
  const budgets = [...new Set(trials.map((t) => t.epochs))].sort((a, b) => a - b);
  return {
    title: { text: `${objective} of every trial against its epoch budget`, subtitle: `${trials.length} trials; lines join a continued trial to the one it started from` },
    width: 460,
    height: 300,
    encoding: {
      x: { field: 'epochs', type: 'quantitative', title: 'Epoch budget (epochs trained up to)', scale: { type: 'log', domain: [budgets[0] / 1.3, budgets[budgets.length - 1] * 1.3] }, axis: { values: budgets, format: 'd' } },
      y: { field: 'score', type: 'quantitative', title: objective, scale: { zero: false } },
      color: { field: 'group', type: 'nominal', title: null },
    },
    layer: [
      { data: { values: links }, mark: { type: 'line', opacity: 0.5 }, encoding: { detail: { field: 'link' } } },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 60, opacity: 0.85 },
        encoding: { tooltip: [{ field: 'trial' }, { field: 'score', format: '.4f' }, { field: 'hyperparameters' }] },
      },
      {
        data: { values: points.filter((p) => p.best) },
        mark: { type: 'text', dx: 8, align: 'left', fontWeight: 'bold' },
        encoding: { text: { value: 'best' }, color: { value: 'black' } },
      },
    ],
  } as TopLevelSpec;
}
