/**
 * A search folder, written as the search goes so that `descent tune --resume DIR` can continue it:
 *   search.json            the settings (space, schedule, seed, data), written before any trial
 *   trials/0007.json       one finished trial: values, history, score (written when it finishes)
 *   trials/0007.weights    its best epoch's weights, for a trial that a later round may continue
 *   best-model/            the best trial's model, a normal model folder (at the end)
 *   retrained-model/       the best hyperparameters trained again (with --retrain-best)
 * Every file is written atomically: a search killed at any moment leaves whole files only.
 */
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DescentError, UsageError } from '@descent/engine';
import type { EncodedWeights, SearchSettings, TrialResult } from '@descent/jobs';
import { writeFileAtomic } from '../report/files.js';
import { statOrUndefined } from '../common.js';

export const SEARCH_FILE = 'search.json';
const FORMAT = 'descent-search';
const VERSION = 1;

export interface SavedSearch {
  format: typeof FORMAT;
  version: number;
  /** Prefix of the search's job ids, unique per search. */
  id: string;
  created: string;
  settings: SearchSettings;
}

export function isSearchFolder(dir: string): boolean {
  return statOrUndefined(join(dir, SEARCH_FILE))?.isFile() === true;
}

export async function writeSearch(dir: string, search: SavedSearch): Promise<void> {
  mkdirSync(join(dir, 'trials'), { recursive: true });
  await writeFileAtomic(join(dir, SEARCH_FILE), `${JSON.stringify(search, null, 2)}\n`);
}

export function readSearch(dir: string, label: string): SavedSearch {
  const file = join(dir, SEARCH_FILE);
  if (!statOrUndefined(dir)?.isDirectory()) throw new UsageError(`${label}: no such folder`);
  if (!statOrUndefined(file)) throw new UsageError(`${label}: not a search folder (no ${SEARCH_FILE})`);
  let saved: SavedSearch;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8')) as SavedSearch;
  } catch (error) {
    throw new DescentError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  if (saved?.format !== FORMAT || typeof saved.settings !== 'object' || saved.settings === null) throw new DescentError(`${file}: not a descent search file`);
  if (saved.version > VERSION) throw new DescentError(`${file}: written by a newer descent (format version ${saved.version})`);
  return saved;
}

/** A finished trial, and its weights when a later round may continue it. */
export async function writeTrial(dir: string, trial: TrialResult, keepWeights: boolean): Promise<void> {
  const { weights, ...rest } = trial;
  if (keepWeights) await writeFileAtomic(join(dir, 'trials', `${trial.id}.weights`), JSON.stringify(weights));
  await writeFileAtomic(join(dir, 'trials', `${trial.id}.json`), `${JSON.stringify(rest, null, 2)}\n`);
}

/** The finished trials of a search folder, with the weights that were kept. */
export function readTrials(dir: string): TrialResult[] {
  const folder = join(dir, 'trials');
  const names = statOrUndefined(folder) ? readdirSync(folder).filter((name) => /^\d{4,}\.json$/.test(name)).sort() : [];
  return names.map((name) => {
    const file = join(folder, name);
    let trial: TrialResult;
    try {
      trial = JSON.parse(readFileSync(file, 'utf8')) as TrialResult;
    } catch (error) {
      throw new DescentError(`${file}: not valid JSON (${(error as Error).message})`);
    }
    if (typeof trial !== 'object' || trial === null || typeof trial.index !== 'number' || trial.id !== name.slice(0, -5)) throw new DescentError(`${file}: not a trial of this search`);
    const weightsFile = join(folder, `${trial.id}.weights`);
    trial.weights = statOrUndefined(weightsFile) ? (JSON.parse(readFileSync(weightsFile, 'utf8')) as EncodedWeights) : { shapes: [], values: [] };
    return trial;
  });
}
