import type { DatasetFiles } from '@descent/engine';

/** What every suite gets from the runner. */
export interface SuiteContext {
  quick: boolean;
  /** Runs per engine in the whole-epoch suite. */
  runs: number;
  files: DatasetFiles;
  trainSamples: number;
  testSamples: number;
  /** One progress line (the CLI prints it to stderr). */
  log: (line: string) => void;
}
