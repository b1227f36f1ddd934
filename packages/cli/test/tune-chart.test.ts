// The search chart's data: one point per scored trial, one line per continued trial joining it to
// the trial whose weights it started from, and the best trial marked.
import { describe, expect, it } from 'vitest';
import { defaultSpace, type SearchSettings, type TrialResult } from '@descent/jobs';
import { searchChartSpec } from '../src/tune/chart.js';

const settings: SearchSettings = {
  algorithm: 'hyperband', maxEpochs: 3, factor: 3, iterations: 1, trials: 0, objective: { name: 'val_accuracy', direction: 'max' },
  seed: 1, space: defaultSpace(), data: { dataset: 'fashion-mnist', dir: null }, batchSize: 32, validationSplit: 0.2, patience: 5,
};

function trial(index: number, bracket: number, round: number, epochs: number, score: number | null, parent: string | null = null): TrialResult {
  return {
    id: String(index).padStart(4, '0'), index, iteration: 0, bracket, round, epochs, initialEpoch: parent ? 1 : 0, parent, seed: index,
    values: { units: 32 * (index + 1), lr: 0.001, dropout: 0, hidden_layers: 1, optimizer: 'adam' }, status: 'complete', score,
    bestEpoch: 0, history: { epoch: [], loss: [], accuracy: [], val_loss: [], val_accuracy: [], seconds: [] }, seconds: 1, weights: { shapes: [], values: [] },
  };
}

describe('search chart', () => {
  it('plots every scored trial at its epoch budget and links continued trials to their parents', () => {
    const trials = [trial(0, 1, 0, 1, 0.7), trial(1, 1, 0, 1, 0.75), trial(2, 1, 0, 1, null), trial(3, 1, 1, 3, 0.8, '0001'), trial(4, 0, 0, 3, 0.78)];
    const spec = searchChartSpec(trials, settings, '0003') as unknown as { layer: Array<{ data: { values: Array<Record<string, unknown>> } }> };
    const [links, points, best] = spec.layer.map((layer) => layer.data.values);
    expect(points.map((p) => [p.trial, p.epochs, p.score, p.group])).toEqual([
      ['0000', 1, 0.7, 'bracket 1'], ['0001', 1, 0.75, 'bracket 1'], ['0003', 3, 0.8, 'bracket 1'], ['0004', 3, 0.78, 'bracket 0'],
    ]);
    expect(links).toEqual([
      { link: '0003', group: 'bracket 1', epochs: 1, score: 0.75 },
      { link: '0003', group: 'bracket 1', epochs: 3, score: 0.8 },
    ]);
    expect(best.map((p) => p.trial)).toEqual(['0003']);
  });
});
