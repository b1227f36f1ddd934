import type { DatasetFiles } from '@descent/engine';
import type { BenchModel } from '../types.js';

/** What every suite gets from the runner. */
export interface SuiteContext {
  quick: boolean;
  /** Runs per engine in the whole-epoch suite. */
  runs: number;
  /** The model every engine trains (the MLP unless a suite says otherwise). */
  model: BenchModel;
  files: DatasetFiles;
  trainSamples: number;
  testSamples: number;
  /** One progress line (the CLI prints it to stderr). */
  log: (line: string) => void;
}

/** Progress lines about a model other than the default MLP start with its name ('cnn '). */
export const modelTag = (context: Pick<SuiteContext, 'model'>): string => (context.model.name === 'mlp' ? '' : `${context.model.name} `);
