// Bad input to the `descent` CLI: one line on stderr naming the file or flag, exit 1 (2 for usage
// errors), no stack trace, and nothing written.
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, runCli, temporaryFolder } from './cli-helpers.js';

const tmp = temporaryFolder('descent-errors-');
const work = tmp.dir;
afterAll(tmp.remove);

const FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
let modelDir: string;

/** A copy of the fixture folder with `change` applied to the uncompressed files. */
function dataVariant(name: string, change: (dir: string) => void): string {
  const dir = join(work, 'data', name);
  mkdirSync(dir, { recursive: true });
  for (const file of FILES) writeFileSync(join(dir, file), gunzipSync(readFileSync(join(FIXTURE, `${file}.gz`))));
  change(dir);
  return dir;
}

/** A copy of the trained model folder with `change` applied. */
function modelVariant(name: string, change: (dir: string) => void): string {
  const dir = join(work, 'models-bad', name);
  mkdirSync(dir, { recursive: true });
  for (const file of readdirSync(modelDir)) copyFileSync(join(modelDir, file), join(dir, file));
  change(dir);
  return dir;
}

beforeAll(async () => {
  modelDir = join(work, 'model');
  const run = await runCli(['train', '--data', FIXTURE, '--epochs', '1', '--hidden', '8', '--backend', 'ts', '--out', modelDir, '--json'], { cwd: work });
  expect(run.code, run.stderr).toBe(0);
  writeFileSync(join(work, 'not-an-image.png'), 'this is text, not a PNG');
  writeFileSync(join(work, 'a-file'), 'x');
});

let runs = 0;

/** Runs the CLI in a fresh empty folder and checks that it failed cleanly and wrote nothing there. */
async function expectFailure(args: string[], code: 1 | 2, message: RegExp): Promise<void> {
  const cwd = join(work, 'runs', String(++runs));
  mkdirSync(cwd, { recursive: true });
  const run = await runCli(args, { cwd });
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, `stderr of ${args.join(' ')}`).toHaveLength(1);
  expect(lines[0]).toMatch(/^descent: /);
  expect(lines[0]).toMatch(message);
  expect(run.code, args.join(' ')).toBe(code);
  expect(run.stdout, 'nothing on stdout').toBe('');
  expect(readdirSync(cwd), `files left by ${args.join(' ')}`).toEqual([]);
}

const train = (...args: string[]) => ['train', '--data', FIXTURE, '--epochs', '1', '--hidden', '8', '--backend', 'ts', ...args];

describe.concurrent('flag values that make no sense are usage errors (exit 2) naming the flag', () => {
  const cases: Array<[string[], RegExp]> = [
    [train('--batch-size', '0'), /'--batch-size <n>' argument '0' is invalid/],
    [train('--lr', '-0.1'), /'--lr <x>' argument '-0.1' is invalid/],
    [train('--lr', 'fast'), /'--lr <x>' argument 'fast' is invalid/],
    [train('--epochs', '2.5'), /'--epochs <n>' argument '2.5' is invalid/],
    [train('--epochs', '0'), /'--epochs <n>' argument '0' is invalid/],
    [train('--dropout', '1'), /'--dropout <p>' argument '1' is invalid/],
    [train('--dropout', '-0.2'), /'--dropout <p>' argument '-0.2' is invalid/],
    [train('--validation-split', '1.5'), /'--validation-split <f>' argument '1.5' is invalid/],
    [train('--hidden', '64,0'), /'--hidden <sizes>' argument '64,0' is invalid/],
    [train('--seed', '-1'), /'--seed <n>' argument '-1' is invalid/],
    [train('--optimizer', 'adagrad'), /'--optimizer <name>' argument 'adagrad' is invalid. Allowed choices are adam, sgd, rmsprop/],
    [train('--dataset', 'cifar10'), /'--dataset <name>' argument 'cifar10' is invalid. Allowed choices are fashion-mnist, mnist/],
    [train('--backend', 'gpu'), /'--backend <name>' argument 'gpu' is invalid/],
    [train('--momentum', '0.9'), /--momentum applies to --optimizer sgd or rmsprop only/],
    [train('--epochz', '3'), /unknown option '--epochz'/],
    [train('--out', ''), /^descent: --out: expected a value, got an empty one$/],
    [train('--data', ''), /^descent: --data: expected a value, got an empty one$/],
    [train('--hidden', '350000'), /^descent: --hidden 350000: the model would have 278,250,010 parameters, more than descent builds here \(67,108,864\)$/],
    [['evaluate'], /missing required argument 'model_dir'/],
    [['predict', 'some-model'], /nothing to predict/],
    [['fly'], /unknown command 'fly'/],
  ];
  it.each(cases)('%j', async (args, message) => expectFailure(args, 2, message));

  it('a model folder that already holds a model is not overwritten', async () => {
    await expectFailure(train('--out', modelDir), 2, /--out .*model: already holds a model; .*--resume/);
  });

  it('--index outside the test set', async () => {
    await expectFailure(['predict', modelDir, '--data', FIXTURE, '--backend', 'ts', '--index', '500'], 2, /--index 500: the fashion-mnist test set has 500 images \(0 to 499\)/);
  });
});

describe.concurrent('missing, truncated or corrupt data files (exit 1, naming the file)', () => {
  it('a --data folder that does not exist', async () => {
    await expectFailure(train('--data', join(work, 'nowhere')), 1, /nowhere: folder given by --data does not exist/);
  });

  it('a --data that names a file, not a folder', async () => {
    await expectFailure(train('--data', join(work, 'a-file')), 1, /a-file: given by --data is not a folder \(it names the folder holding the four IDX files\)$/);
  });

  it('a --data folder missing a file', async () => {
    const dir = dataVariant('partial', (d) => rmSync(join(d, 't10k-labels-idx1-ubyte')));
    await expectFailure(train('--data', dir), 1, /partial: folder given by --data is missing t10k-labels-idx1-ubyte/);
  });

  it('a truncated images file', async () => {
    const dir = dataVariant('truncated', (d) => {
      const file = join(d, 'train-images-idx3-ubyte');
      writeFileSync(file, readFileSync(file).subarray(0, 5000));
    });
    await expectFailure(train('--data', dir), 1, /truncated\/train-images-idx3-ubyte: /);
  });

  it('a file with the wrong magic number', async () => {
    const dir = dataVariant('magic', (d) => {
      const file = join(d, 't10k-images-idx3-ubyte');
      const bytes = readFileSync(file);
      bytes[3] = 0x01;
      writeFileSync(file, bytes);
    });
    await expectFailure(train('--data', dir), 1, /magic\/t10k-images-idx3-ubyte: .*magic/i);
  });

  it('images and labels that disagree in count', async () => {
    const dir = dataVariant('count', (d) => {
      const file = join(d, 'train-labels-idx1-ubyte');
      const bytes = readFileSync(file);
      bytes.writeUInt32BE(1999, 4);
      writeFileSync(file, bytes.subarray(0, 8 + 1999));
    });
    await expectFailure(train('--data', dir), 1, /count\/train-(images|labels)-idx[13]-ubyte.*2000.*1999|1999.*2000/);
  });
});

describe.concurrent('broken model folders and images (exit 1, naming the file)', () => {
  it('a model folder that does not exist', async () => {
    await expectFailure(['evaluate', join(work, 'no-model'), '--data', FIXTURE, '--backend', 'ts'], 1, /no-model: model folder does not exist/);
  });

  it('a folder without model.json', async () => {
    await expectFailure(['summary', FIXTURE], 1, /fashion-mnist\/model\.json: is missing/);
  });

  it('malformed JSON', async () => {
    const dir = modelVariant('malformed', (d) => writeFileSync(join(d, 'model.json'), '{"format": "layers-model", "modelTopology": '));
    await expectFailure(['evaluate', dir, '--data', FIXTURE, '--backend', 'ts'], 1, /malformed\/model\.json: is not valid JSON/);
  });

  it('a model.json of another format', async () => {
    const dir = modelVariant('graph', (d) => writeFileSync(join(d, 'model.json'), JSON.stringify({ format: 'graph-model', modelTopology: { node: [] } })));
    await expectFailure(['predict', dir, '--index', '0', '--data', FIXTURE, '--backend', 'ts'], 1, /graph\/model\.json: format "graph-model" is not supported/);
  });

  it('a weights.bin of the wrong size', async () => {
    const dir = modelVariant('short', (d) => writeFileSync(join(d, 'weights.bin'), readFileSync(join(d, 'weights.bin')).subarray(0, 4096)));
    await expectFailure(['summary', dir], 1, /short\/weights\.bin: has 4096 bytes but the weightsManifest in .*short\/model\.json describes/);
  });

  it('an unsupported layer', async () => {
    const dir = modelVariant('lstm', (d) => {
      const json = JSON.parse(readFileSync(join(d, 'model.json'), 'utf8'));
      json.modelTopology.config.layers[1].class_name = 'LSTM';
      writeFileSync(join(d, 'model.json'), JSON.stringify(json));
    });
    await expectFailure(['summary', dir], 1, /lstm\/model\.json: layer 'dense' \(LSTM\): layer class "LSTM" is not supported/);
  });

  it('an image that cannot be decoded, and one that does not exist', async () => {
    await expectFailure(['predict', modelDir, join(work, 'not-an-image.png'), '--backend', 'ts'], 1, /not-an-image\.png: cannot decode the image/);
    await expectFailure(['predict', modelDir, join(work, 'missing.png'), '--backend', 'ts'], 1, /missing\.png: no such image file/);
  });

  it('--resume of a folder without training state', async () => {
    const dir = modelVariant('no-state', (d) => writeFileSync(join(d, 'descent-training.json'), '{}'));
    await expectFailure(['train', '--resume', dir, '--epochs', '3'], 1, /--resume .*no-state: holds no training state/);
  });

  it.each([
    ['lr', 'abc', /hyperparameters\.lr: expected a number, got "abc"$/],
    ['lr', -1, /hyperparameters\.lr: must be greater than 0|hyperparameters\.lr: .*got -1$/],
    ['validationSplit', 5, /hyperparameters\.validationSplit: .*got 5$/],
    ['optimizer', 'adagrad', /hyperparameters\.optimizer: must be "adam" or "sgd" or "rmsprop", got "adagrad"$/],
  ])('--resume of a run whose saved %s was edited to %j', async (key, value, message) => {
    const dir = modelVariant(`edited-${key}-${String(value)}`, (d) => {
      const file = join(d, 'descent-training.json');
      const saved = JSON.parse(readFileSync(file, 'utf8'));
      saved.hyperparameters[key] = value;
      writeFileSync(file, JSON.stringify(saved));
    });
    await expectFailure(['train', '--resume', dir, '--epochs', '3'], 1, new RegExp(`^descent: --resume: .*edited-${key}-${String(value)}/descent-training\\.json: ${message.source}`));
  });
});

describe.concurrent('output that cannot be written is detected before training (exit 1)', () => {
  it('an --out folder under a file', async () => {
    await expectFailure(train('--out', join(work, 'a-file', 'model')), 1, /--out .*a-file\/model: cannot create it, .*a-file is a file/);
  });

  it('an --out folder where nothing can be created', async () => {
    await expectFailure(train('--out', '/proc/descent-model'), 1, /--out \/proc\/descent-model: cannot write there/);
  });

  it('a --csv file in a folder that cannot be created', async () => {
    await expectFailure(train('--out', join(work, 'runs', 'never'), '--csv', join(work, 'a-file', 'log.csv')), 1, /--csv .*a-file\/log\.csv: cannot create it/);
  });
});

it('--verbose adds the stack trace', async () => {
  const run = await runCli(['--verbose', 'summary', join(work, 'no-model')]);
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(/^descent: .*no-model: model folder does not exist\n/);
  expect(run.stderr).toMatch(/\n\s+at /);
});
