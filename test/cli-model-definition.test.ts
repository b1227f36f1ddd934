// `descent train --model FILE.json` end to end: the Keras tutorial CNN's JSON trains and saves, and
// a definition descent cannot train stops the command with one line and exit code 2 before any
// data is read (--data points at a folder that does not exist). The definitions themselves are
// tested in packages/cli/test/model-definition.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE, ROOT, jsonLines, runCli, temporaryFolder } from './cli-helpers.js';

const tmp = temporaryFolder('descent-model-definition-');
afterAll(tmp.remove);
const MODELS = join(ROOT, 'test/fixtures/model-definitions');
const NO_DATA = join(ROOT, 'test/fixtures/no-such-folder');

describe('descent train --model FILE.json and --layers', () => {
  it('the JSON Keras model.to_json() writes for the tutorial CNN trains, saves and summarises', async () => {
    const out = join(tmp.dir, 'keras-cnn');
    const run = await runCli(['train', '--data', FIXTURE, '--epochs', '1', '--model', join(MODELS, 'keras-cnn.json'), '--out', out, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(jsonLines(run.stdout).at(-1)!.test_accuracy).toBeGreaterThan(0.5);
    const saved = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(saved.modelTopology.config.layers.map((l: { class_name: string }) => l.class_name))
      .toEqual(['Conv2D', 'MaxPooling2D', 'Conv2D', 'MaxPooling2D', 'Flatten', 'Dense', 'Dense']);
    expect(saved.modelTopology.config.layers[0].config.batch_input_shape).toEqual([null, 28, 28, 1]);
    const training = JSON.parse(readFileSync(join(out, 'descent-training.json'), 'utf8'));
    expect(training.hyperparameters).toMatchObject({ model: 'json', definition: join(MODELS, 'keras-cnn.json') });
    const summary = await runCli(['summary', out]);
    expect(summary.stdout).toContain('Total params: 225,034');
  });

  it.each([
    [['--layers', 'conv2d:32:3:relu,maxpool:2,dense:128:relu'], /^descent: --layers "conv2d:32:3:relu,maxpool:2,dense:128:relu": layer 3 \(dense 128 relu\): needs flat inputs but gets 13×13×32 per sample; put flatten before it$/],
    [['--model', join(ROOT, 'test/fixtures/model-definitions/missing.json')], /^descent: --model: '.*missing\.json' is neither mlp nor cnn, and there is no such file$/],
  ])('a definition it cannot train: %j', async (args, message) => {
    const run = await runCli(['train', '--data', NO_DATA, '--out', join(tmp.dir, 'never'), ...args]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd()).toMatch(message);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});
