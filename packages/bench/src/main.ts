#!/usr/bin/env node
/**
 * descent's benchmark and parity runs against TensorFlow (Keras, tfjs-node) and TensorFlow.js.
 *
 *   npm run bench                          all suites on full Fashion-MNIST (about an hour and a quarter); a full run
 *                                          also rewrites results/latest.md and the README's benchmark block
 *   npm run bench -- --quick               everything on the fixture subset, in a minute or two
 *   npm run bench -- --suites epoch,steps --runs 5 --out /tmp/bench
 *
 * Importing this module runs nothing; it re-exports the runner for other tools (e.g. charts).
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, parseArgs } from 'node:util';
import { runBench, updateReadme, writeResults, type BenchOptions } from './runner.js';
import { renderMarkdown, renderReadmeBlock } from './report.js';
import { SUITES, type SuiteName } from './types.js';

export { runBench, writeResults, secondsPerEpoch, readBenchResult, latestResultFile, checkTargets, updateReadme, README_MARKERS } from './runner.js';
export type { BenchOptions, EpochTiming, WrittenFiles } from './runner.js';
export { renderMarkdown, renderReadmeBlock, headlineTable } from './report.js';
export * from './types.js';

export const DEFAULT_RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));
/** The repository's README, whose benchmark block a full run into DEFAULT_RESULTS_DIR rewrites. */
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

const USAGE = `Usage: npm run bench -- [options]

Options:
  --quick            run every suite on the fixture subset (2,000 images), fewer runs and steps
  --suites LIST      comma-separated suites to run: ${SUITES.join(',')} (default: all)
  --runs N           runs per engine in the epoch suite (default 3, or 1 with --quick)
  --out DIR          folder for the results (default packages/bench/results)
  --verbose          print stack traces on failure
  -h, --help         show this help

The Keras and tfjs-node rows need \`npm run setup:keras\` and \`npm run setup:tfjs-node\` first;
without them those rows say "not available" and why.`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseOptions(argv: string[]): (Omit<BenchOptions, 'command' | 'log'> & { verbose: boolean }) | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean', default: false },
        suites: { type: 'string' },
        runs: { type: 'string' },
        out: { type: 'string' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]);
  }
  if (values.help) return 'help';

  let suites: SuiteName[] = [...SUITES];
  if (values.suites !== undefined) {
    const names = values.suites.split(',').map((name) => name.trim()).filter(Boolean);
    if (names.length === 0) throw new UsageError(`--suites: expected a comma-separated list of ${SUITES.join(', ')}`);
    for (const name of names) {
      if (!(SUITES as readonly string[]).includes(name)) throw new UsageError(`--suites: unknown suite '${name}'; expected ${SUITES.join(', ')}`);
    }
    suites = names as SuiteName[];
  }

  let runs = values.quick ? 1 : 3;
  if (values.runs !== undefined) {
    runs = Number(values.runs);
    if (!/^\d+$/.test(values.runs) || !Number.isSafeInteger(runs) || runs < 1) throw new UsageError(`--runs: expected a positive whole number, got '${values.runs}'`);
  }

  const outDir = resolve(values.out ?? DEFAULT_RESULTS_DIR);
  return { quick: values.quick, suites, runs, outDir, verbose: values.verbose };
}

/** Fails before hours of measuring if the results could not be written. */
function checkOutDir(outDir: string): void {
  try {
    mkdirSync(outDir, { recursive: true });
    if (!statSync(outDir).isDirectory()) throw new Error('not a folder');
    accessSync(outDir, constants.W_OK);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'EEXIST' ? 'exists and is not a folder' : (error as Error).message;
    throw new UsageError(`--out ${outDir}: cannot write results there (${reason})`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    const options = parseOptions(argv);
    if (options === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    checkOutDir(options.outDir);
    // benny and tfjs report progress through console.log; stdout is kept for the summary.
    console.log = (...args: unknown[]) => process.stderr.write(`${format(...args)}\n`);
    const script = relative(process.cwd(), fileURLToPath(import.meta.url)) || 'main.js';
    const result = await runBench({
      ...options,
      command: ['node', script, ...argv].join(' '),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const written = writeResults(result, options.outDir);
    process.stdout.write(`\n${renderMarkdown(result)}`);
    for (const file of Object.values(written)) process.stderr.write(`wrote ${file}\n`);
    if (!written.latest) process.stderr.write('latest.md is left as it was: only a full run of every suite replaces it\n');
    else if (resolve(options.outDir) === resolve(DEFAULT_RESULTS_DIR)) {
      const block = renderReadmeBlock(result, relative(dirname(README), written.latest));
      process.stderr.write(updateReadme(README, block) ? `updated the benchmark block of ${README}\n` : `${README} has no benchmark markers: left as it was\n`);
    }
    return 0;
  } catch (error) {
    const err = error as Error & { details?: string; exitCode?: number };
    process.stderr.write(`bench: ${err.message}\n`);
    if (verbose) process.stderr.write(`${err.details ? `${err.details}\n` : ''}${err.stack ?? ''}\n`);
    return err instanceof UsageError ? 2 : typeof err.exitCode === 'number' ? err.exitCode : 1;
  }
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) process.exitCode = await main(process.argv.slice(2));
