/**
 * `descent explain`: one training step on a tiny fixed example (two 4×4 Fashion-MNIST images, a
 * hidden layer of 4 units, 3 classes, Adam), printing every intermediate with its formula and
 * shape — the walk-through of docs/learn/one-step.md, computed by the engine itself.
 */
import { Option, type Command } from 'commander';
import { EXPLAIN_EXAMPLE, explainOneStep, formatExplanation, type BackendName } from '@descent/engine';
import { backendOption, jsonOption, useBackend } from '../common.js';
import { seed } from '../flags.js';
import type { CliModule } from '../module.js';
import { Output } from '../output.js';

interface ExplainFlags {
  seed: number;
  backend: BackendName;
  json?: boolean;
}

export const explainModule: CliModule = {
  register(program) {
    program
      .command('explain')
      .description('print every number of one training step on a tiny example, from pixels to updated weights')
      .addOption(new Option('--seed <n>', 'seed for the initial weights (the docs quote the default)').argParser(seed).default(EXPLAIN_EXAMPLE.seed))
      .addOption(backendOption().default('ts'))
      .addOption(jsonOption())
      .action((flags: ExplainFlags, _cmd: Command) => explain(flags));
  },
};

function explain(flags: ExplainFlags): void {
  const output = new Output({ json: flags.json === true });
  useBackend(flags.backend, output);
  const explanation = explainOneStep({ seed: flags.seed });
  if (output.json) {
    output.record({ ...explanation });
    return;
  }
  for (const line of formatExplanation(explanation).split('\n')) output.line(line);
}
