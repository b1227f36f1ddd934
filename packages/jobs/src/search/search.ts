/**
 * A hyperparameter search over training jobs: Hyperband (keras-tuner's schedule, hyperband.ts)
 * or random search, run on any JobRunner (worker threads here, or a queue of remote workers).
 *
 * Same seed, same results table, whatever the number of workers and the order trials finish in:
 *   - the whole plan is fixed up front: trial numbers follow the order one keras-tuner worker
 *     creates trials in, and every round-0 trial's values are drawn from one seeded generator in
 *     that order (skipping repeats, as keras-tuner does);
 *   - each trial trains with its own seed, derived from the search's seed and its number;
 *   - round r+1 of a bracket is chosen when all of round r has finished (what one keras-tuner
 *     worker does), ranking by score, ties broken by trial number.
 * Meanwhile other brackets' trials keep the workers busy: a trial starts as soon as its inputs are
 * known, lowest number first.
 */
import { setMaxListeners } from 'node:events';
import { Random, type HistoryData } from '@descent/engine';
import type { JobRunner } from '../runner.js';
import {
  better, trainingJob, type DataRef, type ModelDefinition, type EncodedWeights, type JobEvent, type JobResult, type JobStatus, type Objective, type TrainingJobSpec,
} from '../spec.js';
import { hyperbandPlan, type HyperbandSettings } from './hyperband.js';
import { layersOf, sampleValues, type HyperparameterValues, type SearchSpace } from './space.js';

/** keras-tuner's Oracle gives up drawing new values after this many repeats in a row. */
export const MAX_COLLISIONS = 20;

export interface SearchSettings extends HyperbandSettings {
  algorithm: 'hyperband' | 'random';
  /** Random search: number of trials. */
  trials: number;
  objective: Objective;
  seed: number;
  space: SearchSpace;
  data: DataRef;
  batchSize: number;
  validationSplit: number;
  /** Early stopping on val_loss with this patience (the tutorial: 5), or null. */
  patience: number | null;
}

export interface Trial {
  /** keras-tuner's style of trial id: "0000", "0001", … */
  id: string;
  index: number;
  /** Hyperband's place of the trial; null for random search. */
  iteration: number | null;
  bracket: number | null;
  round: number | null;
  epochs: number;
  initialEpoch: number;
  /** The trial whose best weights this one continues. */
  parent: string | null;
  values: HyperparameterValues;
  seed: number;
}

export interface TrialResult extends Trial {
  status: JobStatus;
  /** Best value of the objective over the trial's epochs (keras-tuner's trial score); null if it never had one. */
  score: number | null;
  /** 0-based epoch of the score. */
  bestEpoch: number | null;
  history: HistoryData;
  seconds: number;
  /** The weights of the best epoch, which a trial of the next round continues from. */
  weights: EncodedWeights;
}

export interface SearchHooks {
  onTrialStart?(trial: Trial): void;
  onTrialEvent?(trial: Trial, event: JobEvent): void;
  /** Called (and awaited) for every finished trial, before the next one is chosen: persist it here. */
  onTrialEnd?(result: TrialResult): void | Promise<void>;
}

export interface SearchRun {
  /** Trials finished before (a resumed search): they are not run again. */
  completed?: readonly TrialResult[];
  hooks?: SearchHooks;
  /** Aborting stops the search: running trials are cancelled and not recorded. */
  signal?: AbortSignal;
  /** Prefix of job ids (unique per search, so queued jobs of two searches never mix). */
  jobPrefix?: string;
  /** Progress event every this many batches. */
  progressEvery?: number;
}

export interface SearchOutcome {
  /** Finished trials, by number. */
  trials: TrialResult[];
  best: TrialResult | null;
  /** Trials the plan has (fewer than the schedule asks when the space ran out of new values). */
  planned: number;
  interrupted: boolean;
  /** The space had no new values left for a round-0 trial, so the plan stops there (keras-tuner stops too). */
  exhausted: boolean;
}

interface Slot {
  index: number;
  iteration: number | null;
  bracket: number | null;
  round: number | null;
  rank: number;
  epochs: number;
  initialEpoch: number;
  /** Known from the start for round 0 (and random search); chosen by promotion otherwise. */
  values: HyperparameterValues | null;
  parent: string | null;
}

export interface SearchPlan {
  slots: Slot[];
  exhausted: boolean;
}

export function trialId(index: number): string {
  return String(index).padStart(4, '0');
}

/** The seed a trial trains with: the search's seed and the trial's number, mixed (splitmix32's finaliser). */
export function trialSeed(seed: number, index: number): number {
  let z = (seed + Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** Every trial of the search, with the values of those that start from scratch. */
export function planSearch(settings: SearchSettings): SearchPlan {
  const random = new Random(settings.seed);
  const seen = new Set<string>();
  const fresh = (): HyperparameterValues | null => {
    for (let collisions = 0; collisions <= MAX_COLLISIONS; collisions++) {
      const values = sampleValues(settings.space, random);
      const key = JSON.stringify(values);
      if (!seen.has(key)) {
        seen.add(key);
        return values;
      }
    }
    return null;
  };
  const slots: Slot[] = [];
  const base = settings.algorithm === 'hyperband'
    ? hyperbandPlan(settings)
    : Array.from({ length: settings.trials }, (_, index) => ({ index, iteration: null, bracket: null, round: null, rank: index, epochs: settings.maxEpochs, initialEpoch: 0 }));
  for (const slot of base) {
    const values = slot.round === null || slot.round === 0 ? fresh() : null;
    if ((slot.round === null || slot.round === 0) && values === null) return { slots, exhausted: true };
    slots.push({ ...slot, values, parent: null });
  }
  return { slots, exhausted: false };
}

/** The job that trains one trial. */
export function trialJob(settings: SearchSettings, trial: Trial, parentWeights: EncodedWeights | null, jobPrefix: string, progressEvery: number): TrainingJobSpec {
  const { values } = trial;
  return trainingJob({
    id: `${jobPrefix}${trial.id}`,
    data: settings.data,
    model: modelOf(values),
    optimizer: { name: values.optimizer, learningRate: values.lr },
    epochs: trial.epochs,
    initialEpoch: trial.initialEpoch,
    batchSize: settings.batchSize,
    validationSplit: settings.validationSplit,
    seed: trial.seed,
    earlyStopping: settings.patience === null ? null : { monitor: 'val_loss', patience: settings.patience, restoreBestWeights: false },
    keepBest: settings.objective,
    initialWeights: parentWeights,
    progressEvery,
  });
}

/** The model a trial's values describe. */
export function modelOf(values: HyperparameterValues): ModelDefinition {
  return { hidden: Array.from({ length: values.hidden_layers }, () => values.units), dropout: values.dropout, layers: layersOf(values) };
}

/** Orders trials best first: by score (a missing score last), ties by trial number. */
export function rankTrials(objective: Objective, trials: readonly TrialResult[]): TrialResult[] {
  return [...trials].sort((a, b) => {
    if (a.score === null || b.score === null) return a.score === b.score ? a.index - b.index : a.score === null ? 1 : -1;
    if (better(objective, a.score, b.score)) return -1;
    if (better(objective, b.score, a.score)) return 1;
    return a.index - b.index;
  });
}

export async function runSearch(settings: SearchSettings, runner: JobRunner, run: SearchRun = {}): Promise<SearchOutcome> {
  const { hooks = {}, signal, jobPrefix = '', progressEvery = 0 } = run;
  const plan = planSearch(settings);
  const { slots } = plan;
  const done = new Map<number, TrialResult>();
  for (const result of run.completed ?? []) if (result.index < slots.length) done.set(result.index, result);
  const running = new Map<number, Promise<void>>();
  const controller = new AbortController();
  // Every running trial listens to it (all of them at once with a queue).
  setMaxListeners(0, controller.signal);
  const stop = (): void => controller.abort();
  signal?.addEventListener('abort', stop, { once: true });
  let failure: unknown;

  // Chooses round r+1 of a bracket once all of round r is done (and re-derives it on resume).
  const promote = (): void => {
    for (const slot of slots) {
      if (slot.values !== null || slot.round === null || slot.round === 0) continue;
      const previous = slots.filter((s) => s.iteration === slot.iteration && s.bracket === slot.bracket && s.round === slot.round! - 1);
      if (!previous.every((s) => done.has(s.index))) continue;
      const ranked = rankTrials(settings.objective, previous.map((s) => done.get(s.index)!).filter((r) => r.status !== 'cancelled'));
      const parent = ranked[slot.rank];
      if (!parent) continue;
      slot.values = parent.values;
      slot.parent = parent.id;
    }
  };
  const trialOf = (slot: Slot): Trial => ({
    id: trialId(slot.index), index: slot.index, iteration: slot.iteration, bracket: slot.bracket, round: slot.round,
    epochs: slot.epochs, initialEpoch: slot.initialEpoch, parent: slot.parent, values: slot.values!, seed: trialSeed(settings.seed, slot.index),
  });
  const start = (slot: Slot): void => {
    const trial = trialOf(slot);
    const parentWeights = trial.parent === null ? null : done.get(Number(trial.parent))!.weights;
    const spec = trialJob(settings, trial, parentWeights, jobPrefix, progressEvery);
    hooks.onTrialStart?.(trial);
    const task = runner
      .run(spec, { signal: controller.signal, onEvent: (event) => hooks.onTrialEvent?.(trial, event) })
      .then(async (result: JobResult) => {
        if (result.status === 'cancelled') return;
        const finished: TrialResult = {
          ...trial, status: result.status, score: result.best && Number.isFinite(result.best.value) ? result.best.value : null,
          bestEpoch: result.best?.epoch ?? null, history: result.history, seconds: result.seconds, weights: result.weights,
        };
        await hooks.onTrialEnd?.(finished);
        done.set(slot.index, finished);
      })
      .catch((error: unknown) => {
        failure ??= error;
        controller.abort();
      })
      .finally(() => running.delete(slot.index));
    running.set(slot.index, task);
  };

  try {
    for (;;) {
      promote();
      if (!controller.signal.aborted) {
        for (const slot of slots) {
          if (running.size >= runner.capacity) break;
          if (slot.values !== null && !done.has(slot.index) && !running.has(slot.index)) start(slot);
        }
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
  } finally {
    signal?.removeEventListener('abort', stop);
  }
  if (failure !== undefined) throw failure;
  const trials = [...done.values()].sort((a, b) => a.index - b.index);
  const interrupted = controller.signal.aborted || trials.length < slots.length;
  return { trials, best: rankTrials(settings.objective, trials)[0] ?? null, planned: slots.length, interrupted, exhausted: plan.exhausted };
}
