/**
 * `descent explain`: one training step on a tiny fixed example (two 4×4 Fashion-MNIST images, a
 * hidden layer of 4 units, 3 classes, Adam), printing every intermediate with its formula and
 * shape — the walk-through of docs/learn/one-step.md, computed by the engine itself.
 * `--model cnn`: the same for a small convolutional network (two 6×6 images, two 3×3 filters,
 * 2×2 max pooling): images, feature maps, pooled maps and every gradient.
 */
import { Option, type Command } from 'commander';
import { EXPLAIN_CNN_EXAMPLE, EXPLAIN_EXAMPLE, explainCnnStep, explainOneStep, formatExplanation, type BackendName } from '@descent/engine';
import { backendOption, jsonOption, useBackend } from '../common.js';
import { seed } from '../flags.js';
import type { CliModule } from '../module.js';
import { Output } from '../output.js';

interface ExplainFlags {
  model: 'mlp' | 'cnn';
  seed?: number;
  backend: BackendName;
  json?: boolean;
}

export const explainModule: CliModule = {
  register(program) {
    program
      .command('explain')
      .description('print every number of one training step on a tiny example, from pixels to updated weights')
      .addOption(new Option('--model <name>', 'mlp: a dense network; cnn: a small convolutional network').choices(['mlp', 'cnn']).default('mlp'))
      .addOption(new Option('--seed <n>', `seed for the initial weights (default: ${EXPLAIN_EXAMPLE.seed} for mlp, ${EXPLAIN_CNN_EXAMPLE.seed} for cnn, the ones the docs quote)`).argParser(seed))
      .addOption(backendOption().default('ts'))
      .addOption(jsonOption('one'))
      .action((flags: ExplainFlags, _cmd: Command) => explain(flags));
  },
};

function explain(flags: ExplainFlags): void {
  const output = new Output({ json: flags.json === true });
  useBackend(flags.backend, output);
  const explanation = flags.model === 'cnn' ? explainCnnStep({ seed: flags.seed }) : explainOneStep({ seed: flags.seed });
  if (output.json) {
    output.record({ ...explanation });
    return;
  }
  for (const line of formatExplanation(explanation).split('\n')) output.line(line);
}
