// The search space (flags and JSON, sampled as keras-tuner samples) and the search driver: the
// same seed gives the same trials whatever the number of workers and the order they finish in.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DescentError, Random, UsageError } from '@descent/engine';
import {
  defaultSpace, parseDomain, sampleDomain, spaceFromJson, spaceSize, valueCount, type SearchSpace,
} from '../src/search/space.js';
import { planSearch, rankTrials, runSearch, trialSeed, type SearchSettings, type TrialResult } from '../src/search/search.js';
import type { JobRunner, RunOptions } from '../src/runner.js';
import type { JobResult, TrainingJobSpec } from '../src/spec.js';

describe('search space', () => {
  it('parses ranges, lists and single values from flags', () => {
    expect(parseDomain('units', '32:512:32')).toEqual({ kind: 'int', min: 32, max: 512, step: 32, sampling: 'linear' });
    expect(parseDomain('lr', '1e-2,1e-3,1e-4')).toEqual({ kind: 'choice', values: [0.01, 0.001, 0.0001] });
    expect(parseDomain('lr', '1e-4:1e-2:log')).toEqual({ kind: 'float', min: 1e-4, max: 1e-2, step: null, sampling: 'log' });
    expect(parseDomain('dropout', '0.2')).toEqual({ kind: 'choice', values: [0.2] });
    expect(parseDomain('optimizer', 'adam,sgd')).toEqual({ kind: 'choice', values: ['adam', 'sgd'] });
    expect(valueCount(parseDomain('units', '32:512:32'))).toBe(16);
    expect(spaceSize(defaultSpace())).toBe(48);
  });

  it('refuses bad spaces with one line naming the flag', () => {
    const cases: Array<[Parameters<typeof parseDomain>[0], string, RegExp]> = [
      ['units', '512:32:32', /^--units 512:32:32: min 512 is greater than max 32$/],
      ['units', '32:512:0', /^--units 32:512:0: step must be positive, got 0$/],
      ['units', '0:64:32', /units must be whole numbers ≥ 1/],
      ['units', '32.5:64', /whole numbers/],
      ['lr', '0,1e-3', /^--lr 0,1e-3: a learning rate must be > 0, got 0$/],
      ['lr', '-1e-3:1e-2', /learning rate must be > 0/],
      ['lr', '', /empty/],
      ['lr', 'fast', /'fast' is not a number/],
      ['dropout', '0:1:0.1', /dropout must be in \[0, 1\)/],
      ['optimizer', 'adam,rmsprop', /unknown optimizer 'rmsprop'/],
      ['lr', '0:1e-2:log', /log sampling needs min > 0/],
    ];
    for (const [name, text, message] of cases) {
      let error: unknown;
      try {
        parseDomain(name, text);
      } catch (e) {
        error = e;
      }
      expect(error, `${name} ${text}`).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('\n');
    }
  });

  it('reads a JSON space and names the file and key when it is wrong', () => {
    const space = spaceFromJson({ units: { min: 64, max: 256, step: 64 }, lr: [0.01, 0.001], dropout: 0.2, hidden_layers: { min: 1, max: 3 } }, 'space.json');
    expect(space.units).toEqual({ kind: 'int', min: 64, max: 256, step: 64, sampling: 'linear' });
    expect(space.hidden_layers).toEqual({ kind: 'int', min: 1, max: 3, step: null, sampling: 'linear' });
    expect(space.dropout).toEqual({ kind: 'choice', values: [0.2] });
    expect(space.optimizer).toEqual(defaultSpace().optimizer);
    expect(() => spaceFromJson({ momentum: [0.9] }, 'space.json')).toThrow(/^space\.json: unknown hyperparameter 'momentum' \(known: units, lr, dropout, hidden_layers, optimizer, layers, filters, kernel_size\)$/);
    expect(() => spaceFromJson({ units: { min: 64, max: 32 } }, 'space.json')).toThrow(/^space\.json: units: min 64 is greater than max 32$/);
    expect(() => spaceFromJson({ units: { min: 32, max: 64, stride: 2 } }, 'space.json')).toThrow(/unknown key 'stride'/);
    expect(() => spaceFromJson([1, 2], 'space.json')).toThrow(/a search space is a JSON object/);
    expect(() => spaceFromJson({ lr: [] }, 's.json')).toThrow(/^s\.json: lr: empty/);
  });

  it('any JSON either gives a space whose samples are valid or a one-line UsageError (property)', () => {
    const value = fc.oneof(fc.double(), fc.integer({ min: -600, max: 600 }), fc.string(), fc.constant(null), fc.boolean());
    const domain = fc.oneof(value, fc.array(value, { maxLength: 4 }), fc.record({ min: value, max: value, step: fc.option(value), sampling: fc.constantFrom('linear', 'log', 'cubic') }, { requiredKeys: [] }));
    const json = fc.oneof(fc.dictionary(fc.constantFrom('units', 'lr', 'dropout', 'hidden_layers', 'optimizer', 'other'), domain), value, fc.array(value));
    fc.assert(
      fc.property(json, fc.integer(), (input, seed) => {
        let space: SearchSpace;
        try {
          space = spaceFromJson(input, 'space.json');
        } catch (error) {
          expect(error).toBeInstanceOf(DescentError);
          expect((error as Error).message.startsWith('space.json')).toBe(true);
          expect((error as Error).message).not.toContain('\n');
          return;
        }
        const random = new Random(seed);
        for (let i = 0; i < 5; i++) {
          const units = sampleDomain(space.units, random.next()) as number;
          const lr = sampleDomain(space.lr, random.next()) as number;
          const dropout = sampleDomain(space.dropout, random.next()) as number;
          expect(Number.isInteger(units) && units >= 1).toBe(true);
          expect(lr > 0).toBe(true);
          expect(dropout >= 0 && dropout < 1).toBe(true);
        }
      }),
      { seed: 16, numRuns: 400 },
    );
  });

  it('samples as keras-tuner: floor(p·n) over the values, max included', () => {
    const units = parseDomain('units', '32:512:32');
    expect(sampleDomain(units, 0)).toBe(32);
    expect(sampleDomain(units, 0.999999)).toBe(512);
    expect(sampleDomain(units, 0.5)).toBe(32 + 8 * 32);
    const lr = parseDomain('lr', '1e-4:1e-2:log');
    expect(sampleDomain(lr, 0)).toBeCloseTo(1e-4, 12);
    expect(sampleDomain(lr, 0.5)).toBeCloseTo(1e-3, 12);
    expect(sampleDomain(parseDomain('lr', '1e-2,1e-3,1e-4'), 0.4)).toBe(1e-3);
  });
});

const SETTINGS: SearchSettings = {
  algorithm: 'hyperband', maxEpochs: 10, factor: 3, iterations: 1, trials: 0,
  objective: { name: 'val_accuracy', direction: 'max' }, seed: 7, space: defaultSpace(),
  data: { dataset: 'fashion-mnist', dir: null }, batchSize: 32, validationSplit: 0.2, patience: 5,
};

/**
 * Stands in for training: a trial's "accuracy" is a fixed function of its spec (values, seed,
 * starting weights, epochs), and trials finish in an order set by `order` (not the order started).
 */
class ScriptedRunner implements JobRunner {
  readonly started: string[] = [];
  private readonly waiting: Array<() => void> = [];
  constructor(readonly capacity: number, private readonly random: Random) {}

  run(spec: TrainingJobSpec, _options?: RunOptions): Promise<JobResult> {
    this.started.push(spec.id);
    const inherited = spec.initialWeights ? Number(spec.initialWeights.values[0]) : 0;
    const score = inherited + ((spec.model.hidden[0] * 7919 + spec.optimizer.learningRate * 1e6 + spec.seed) % 1000) / 1e4 + spec.epochs / 100;
    const result: JobResult = {
      id: spec.id, status: 'complete', best: { epoch: spec.epochs - 1, value: score }, seconds: 0, checkpoint: null,
      history: { epoch: [spec.epochs - 1], loss: [1], accuracy: [score], val_loss: [1], val_accuracy: [score], seconds: [0] },
      weights: { shapes: [[1]], values: [String(score)] },
    };
    return new Promise((resolve) => {
      this.waiting.push(() => resolve(result));
      // Finish a random one of the running trials, later.
      setImmediate(() => {
        const [finish] = this.waiting.splice(this.random.nextInt(this.waiting.length), 1);
        finish?.();
      });
    });
  }

  async close(): Promise<void> {}
}

function table(trials: readonly TrialResult[]): unknown[] {
  return trials.map(({ id, bracket, round, parent, values, epochs, initialEpoch, score, seed }) => ({ id, bracket, round, parent, values, epochs, initialEpoch, score, seed }));
}

describe('search driver', () => {
  it('gives the same results table for 1, 2 and 5 workers and any finishing order', async () => {
    const tables = [];
    for (const [capacity, order] of [[1, 1], [2, 2], [2, 3], [5, 4], [30, 5]]) {
      const outcome = await runSearch(SETTINGS, new ScriptedRunner(capacity, new Random(order)));
      expect(outcome.interrupted).toBe(false);
      tables.push(table(outcome.trials));
    }
    expect(tables[0]).toHaveLength(30);
    for (const other of tables.slice(1)) expect(other).toEqual(tables[0]);
  });

  it('continues the best of each round from their weights, best first', async () => {
    const outcome = await runSearch(SETTINGS, new ScriptedRunner(3, new Random(1)));
    const byId = new Map(outcome.trials.map((t) => [t.id, t]));
    const round0 = outcome.trials.filter((t) => t.bracket === 2 && t.round === 0);
    const round1 = outcome.trials.filter((t) => t.bracket === 2 && t.round === 1);
    expect(round0).toHaveLength(12);
    expect(round1.map((t) => t.parent)).toEqual(rankTrials(SETTINGS.objective, round0).slice(0, 4).map((t) => t.id));
    for (const trial of round1) {
      const parent = byId.get(trial.parent!)!;
      expect(trial.values).toEqual(parent.values);
      expect([trial.initialEpoch, trial.epochs]).toEqual([2, 4]);
      // The scripted score adds the parent's "weights": the continued trial really started from them.
      expect(trial.score!).toBeGreaterThan(parent.score!);
    }
    expect(outcome.best).toEqual(rankTrials(SETTINGS.objective, outcome.trials)[0]);
  });

  it('draws distinct values from one seed and derives a seed per trial', () => {
    const plan = planSearch(SETTINGS);
    const fresh = plan.slots.filter((s) => s.round === 0).map((s) => JSON.stringify(s.values));
    expect(new Set(fresh).size).toBe(fresh.length);
    expect(planSearch(SETTINGS)).toEqual(plan);
    expect(planSearch({ ...SETTINGS, seed: 8 }).slots.map((s) => s.values)).not.toEqual(plan.slots.map((s) => s.values));
    expect(new Set(Array.from({ length: 100 }, (_, i) => trialSeed(7, i))).size).toBe(100);
  });

  it('stops when the space runs out of new values, as keras-tuner does', () => {
    const small = { ...SETTINGS, space: { ...defaultSpace(), units: parseDomain('units', '32,64'), lr: parseDomain('lr', '1e-3') } };
    const plan = planSearch(small);
    expect(plan.exhausted).toBe(true);
    expect(plan.slots).toHaveLength(2);
  });

  it('does not rerun finished trials when resumed, and ends with the same table', async () => {
    const full = await runSearch(SETTINGS, new ScriptedRunner(2, new Random(3)));
    const firstHalf = full.trials.filter((t) => t.index % 2 === 0 || t.index < 12);
    const runner = new ScriptedRunner(2, new Random(9));
    const resumed = await runSearch(SETTINGS, runner, { completed: firstHalf });
    expect(runner.started).toHaveLength(30 - firstHalf.length);
    expect(table(resumed.trials)).toEqual(table(full.trials));
  });

  it('stops starting trials when aborted', async () => {
    const controller = new AbortController();
    const runner = new ScriptedRunner(2, new Random(3));
    let finished = 0;
    const outcome = await runSearch(SETTINGS, runner, {
      signal: controller.signal,
      hooks: { onTrialEnd: () => void (++finished === 5 && controller.abort()) },
    });
    expect(outcome.interrupted).toBe(true);
    expect(runner.started.length).toBeLessThan(8);
    expect(outcome.trials.length).toBeGreaterThanOrEqual(5);
  });
});
