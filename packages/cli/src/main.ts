#!/usr/bin/env node
/**
 * The `descent` command. Each command lives in src/commands/ and is listed once in MODULES; a
 * module can also add flags and training callbacks to `descent train` (see module.ts).
 *
 * Errors: anything the user can cause is a DescentError (or a commander usage error) and is shown
 * as one line, `descent: <message>`, on stderr; the exit code is the error's (2 for usage errors,
 * 1 otherwise). Stack traces only with --verbose.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { DESCENT_VERSION, DescentError, UsageError } from '@descent/engine';
import { dataModule } from './commands/data.js';
import { dbModule } from './commands/db.js';
import { evaluateModule } from './commands/evaluate.js';
import { explainModule } from './commands/explain.js';
import { predictModule } from './commands/predict.js';
import { reportModule } from './commands/report.js';
import { serveModule } from './commands/serve.js';
import { storeModule } from './commands/store-options.js';
import { summaryModule } from './commands/summary.js';
import { trainModule } from './commands/train.js';
import { traceModule } from './commands/trace-options.js';
import { tuneModule } from './commands/tune.js';
import { workerModule } from './commands/worker.js';
import { callerDirectory } from './invocation.js';
import type { CliContext, CliModule, EvaluateExtension, PredictExtension, TrainExtension } from './module.js';
import { stdoutPipe } from './output.js';

/** Every command and extension of the CLI: adding one is adding a line here. */
const MODULES: readonly CliModule[] = [
  trainModule,
  evaluateModule,
  predictModule,
  summaryModule,
  dataModule,
  reportModule,
  explainModule,
  traceModule,
  tuneModule,
  workerModule,
  dbModule,
  storeModule,
  serveModule,
];

export function buildProgram(modules: readonly CliModule[] = MODULES): Command {
  const program = new Command('descent')
    .description('Train, test and inspect Fashion-MNIST classifiers with descent, a small autodiff engine')
    .version(`descent ${DESCENT_VERSION}`, '-V, --version')
    .option('--verbose', 'show stack traces for errors')
    .exitOverride()
    .configureOutput({ outputError: () => {} }) // main() prints errors itself, on one line
    .showSuggestionAfterError(true)
    // An empty path would mean the current folder (`--out ""` would save a model among its files): no option takes an empty value.
    .hook('preAction', (_program, action) => {
      for (const option of action.options) {
        if (action.getOptionValue(option.attributeName()) === '') throw new UsageError(`${option.long ?? option.flags}: expected a value, got an empty one`);
      }
    });
  const context: CliContext = {
    trainExtensions: modules.flatMap((m): TrainExtension[] => (m.train ? [m.train] : [])),
    evaluateExtensions: modules.flatMap((m): EvaluateExtension[] => (m.evaluate ? [m.evaluate] : [])),
    predictExtensions: modules.flatMap((m): PredictExtension[] => (m.predict ? [m.predict] : [])),
  };
  for (const module of modules) module.register?.(program, context);
  return program;
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err, verbose);
  }
}

function reportError(err: unknown, verbose: boolean): number {
  if (err instanceof CommanderError) {
    // Help and version were printed already; everything else is a usage error.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    if (err.code === 'commander.help' || err.code === 'commander.executeSubCommandAsync') return 2;
    process.stderr.write(`descent: ${err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')}\n`);
    return 2;
  }
  const message = err instanceof Error ? err.message : String(err);
  const expected = err instanceof DescentError;
  process.stderr.write(`descent: ${expected ? message : `unexpected error: ${message}`}${!expected && !verbose ? ' (run with --verbose for details)' : ''}\n`);
  if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return expected ? (err as DescentError).exitCode : 1;
}

/** Whether this module is the program being run (rather than imported, e.g. by a test). */
function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/** Runs descent as the program: the command line from process.argv, the exit code on the process. */
export async function runProgram(): Promise<void> {
  // A closed pipe (`descent explain | head`) ends the output quietly, as other command-line tools do;
  // a training run carries on to save its model, writing nothing more to stdout.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && !stdoutPipe.closed) throw error;
    if (!stdoutPipe.keepRunning) process.exit(0);
    if (!stdoutPipe.closed) process.stderr.write('descent: stdout was closed; training goes on, and the model will be saved\n');
    stdoutPipe.closed = true;
  });
  // Under `npm run descent -- ...`, paths are relative to the folder the user ran npm from.
  const caller = callerDirectory();
  if (caller) process.chdir(caller);
  process.exitCode = await main(process.argv.slice(2));
}

if (isEntryPoint()) await runProgram();
