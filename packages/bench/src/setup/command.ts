/** What both setup commands share: flag parsing, one-line errors, and running them as scripts. */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SetupError } from './local-tensorflow.js';

export const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

/**
 * Parses `argv` (plus --verbose and --help), runs `body`, and turns a failure into one line on
 * stderr (a stack trace only with --verbose). Returns the exit code: 0, 1, or 2 for usage errors.
 */
export async function runSetupCommand(name: string, usage: string, argv: string[], options: Options, body: (values: Values) => Promise<void>): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    let values: Values;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: { ...options, verbose: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
      }) as { values: Values });
    } catch (error) {
      throw new SetupError((error as Error).message.split('\n')[0], 2);
    }
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    await body(values);
    return 0;
  } catch (error) {
    const err = error as Error;
    process.stderr.write(`${name}: ${err.message.split('\n')[0]}\n`);
    if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
    return err instanceof SetupError ? err.exitCode : 1;
  }
}

/** True when the module at `url` is the script node was started with. */
export function invokedDirectly(url: string): boolean {
  return process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(url);
}
