// What a new user trips over with the `descent` CLI: folders claimed by one run, advice in the form
// the user ran, paths from the caller's folder under npm, output paths checked first, a closed
// stdout pipe, NaN, argument order, and warnings about inputs that make a prediction meaningless.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../packages/engine/src/index.js';
import { CLI, FIXTURE, NOT_UNDER_NPM, ROOT, jsonLines, runCli, runCommand, runInProcess, temporaryFolder, type CliResult } from './cli-helpers.js';

// Child processes where the process is the point (two runs at once, npx, npm run, a pipe, the
// command line as typed); everything else runs the same main() in this process.

const tmp = temporaryFolder('descent-ux-');
const work = tmp.dir;
afterAll(tmp.remove);

// Tiny and quick: one epoch of a 4-unit hidden layer on the reference kernels.
const TRAIN = ['train', '--data', FIXTURE, '--epochs', '1', '--hidden', '4', '--backend', 'ts'];

let modelDir: string;
beforeAll(async () => {
  modelDir = join(work, 'model');
  const run = await runInProcess([...TRAIN, '--out', modelDir, '--json'], { cwd: work });
  expect(run.code, run.stderr).toBe(0);
});

function oneLineError(run: CliResult): string {
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^descent: /);
  return lines[0];
}

describe('2. a model folder belongs to one run', () => {
  it('two runs given the same --out at once: one saves, the other fails at once with one line', async () => {
    const out = join(work, 'same');
    const runs = await Promise.all([0, 1].map(() => runCli([...TRAIN, '--out', out], { cwd: work })));
    const ok = runs.filter((run) => run.code === 0);
    const failed = runs.filter((run) => run.code !== 0);
    expect(ok, runs.map((r) => r.stderr).join('\n')).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(oneLineError(failed[0])).toMatch(/--out .*same: (is in use by another descent run|already holds a model)/);
    expect(failed[0].stdout).not.toContain('Saved model');
    expect(readdirSync(out).sort()).toEqual(['descent-optimizer.bin', 'descent-training.json', 'model.json', 'weights.bin']);
  });

  it('runs started together without --out get different default folders', async () => {
    // The default name changes once a second: runs started at once share a second.
    const cwd = join(work, 'defaults');
    mkdirSync(cwd);
    const runs = await Promise.all([0, 1].map(() => runCli([...TRAIN, '--json'], { cwd })));
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    const dirs = runs.map((run) => jsonLines(run.stdout).at(-1)!.model_dir as string);
    expect(new Set(dirs).size).toBe(2);
    expect(readdirSync(join(cwd, 'models'))).toHaveLength(2);
    for (const dir of dirs) expect(readdirSync(dir).sort()).toEqual(['descent-optimizer.bin', 'descent-training.json', 'model.json', 'weights.bin']);
  });
});

describe('2. … and a search folder to one search', () => {
  it('descent tune --out a folder another run holds fails at once, before any data is read, and leaves the folder as it was', async () => {
    const out = join(work, 'search');
    mkdirSync(out);
    writeFileSync(join(out, '.descent-train.lock'), `${process.pid} ${hostname()}\n`); // this process: alive
    const run = await runInProcess(['tune', '--data', join(work, 'no-such-data'), '--out', out], { cwd: work });
    expect(oneLineError(run)).toMatch(/^descent: --out .*search: is in use by another descent run \(pid \d+\)/);
    expect(run.code).toBe(1);
    expect(readdirSync(out)).toEqual(['.descent-train.lock']);
  });
});

describe('3. the descent command, and advice in the form the user ran', () => {
  it('`npx descent` runs the CLI from anywhere in the repository after npm ci', async () => {
    const run = await runCommand('npx', ['descent', '--version'], { cwd: join(ROOT, 'docs'), env: { npm_config_yes: 'false' } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toMatch(/^descent \d+\.\d+\.\d+$/);
  });

  it('advice names the command as it was run: node …/main.js, npm run descent --, npx descent', async () => {
    const args = [...TRAIN, '--out', modelDir];
    const asNode = oneLineError(await runCli(args, { cwd: work }));
    // From a folder outside the repository, the script's absolute path (a ../../ path would only work from here).
    expect(relative(work, CLI).startsWith('..')).toBe(true);
    expect(asNode).toContain(`continue that run with: node ${CLI} train --resume ${modelDir}`);
    const asNpx = oneLineError(await runInProcess(args, { cwd: work, env: { npm_command: 'exec', npm_lifecycle_event: 'npx' } }));
    expect(asNpx).toContain(`continue that run with: npx descent train --resume ${modelDir}`);
    const npmRun = { npm_command: 'run', npm_lifecycle_event: 'descent', npm_lifecycle_script: 'node packages/cli/dist/main.js', INIT_CWD: work };
    const asNpmRun = oneLineError(await runInProcess(args, { cwd: ROOT, env: npmRun }));
    expect(asNpmRun).toContain(`continue that run with: npm run descent -- train --resume ${modelDir}`);
  });
});

describe('4. under npm run, paths are the caller\'s', () => {
  it('`npm run descent -- …` from another folder reads and writes relative to that folder', async () => {
    const caller = join(work, 'caller');
    mkdirSync(caller);
    const run = await runCommand('npm', ['--prefix', ROOT, 'run', '--silent', 'descent', '--', ...TRAIN, '--out', 'here', '--json'], { cwd: caller });
    expect(run.code, run.stderr).toBe(0);
    expect(jsonLines(run.stdout).at(-1)!.model_dir).toBe(join(caller, 'here'));
    expect(existsSync(join(caller, 'here', 'model.json'))).toBe(true);
    expect(existsSync(join(ROOT, 'here'))).toBe(false);
  });
});

describe('5. output destinations are checked before any work, and their folders made', () => {
  it('--csv in a folder that does not exist yet: the folder is made and the log written', async () => {
    const csv = join(work, 'logs', 'run-1', 'log.csv');
    const run = await runInProcess([...TRAIN, '--csv', csv, '--out', join(work, 'with-log')], { cwd: work });
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(csv, 'utf8').split('\n')[0]).toBe('epoch,loss,accuracy,val_loss,val_accuracy,seconds');
  });

  it('a --csv that cannot be written fails before the data is read, and leaves nothing behind', async () => {
    const out = join(work, 'never');
    const run = await runInProcess(['train', '--data', join(work, 'no-such-data'), '--csv', '/proc/no-such-folder/log.csv', '--out', out], { cwd: work });
    expect(oneLineError(run)).toMatch(/^descent: --csv \/proc\/no-such-folder\/log\.csv: cannot write there/);
    expect(run.code).toBe(1);
    expect(existsSync(out)).toBe(false);
  });

  it('predict --plot into a folder that does not exist yet makes it', async () => {
    const plot = join(work, 'plots', 'bars.png');
    const run = await runInProcess(['predict', modelDir, '--index', '0', '--plot', plot, '--data', FIXTURE, '--backend', 'ts']);
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(plot).subarray(1, 4).toString()).toBe('PNG');
  });
});

describe('6. a closed stdout pipe', () => {
  it('`descent train … | head -1` keeps training and saves the model', async () => {
    const out = join(work, 'piped');
    const command = `set -o pipefail; node ${CLI} ${TRAIN.join(' ')} --epochs 3 --out ${out} | head -1`;
    const run = await runCommand('bash', ['-c', command], { cwd: work, env: Object.fromEntries(Object.keys(NOT_UNDER_NPM).map((k) => [k, ''])) });
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    expect(run.code, run.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['descent-optimizer.bin', 'descent-training.json', 'model.json', 'weights.bin']);
    expect(run.stderr).toContain('Saved model to piped');
  });
});

describe('7. NaN', () => {
  it('a loss that is NaN from the first epoch on: stops, says where (1-based), saves nothing, exits non-zero', async () => {
    const out = join(work, 'diverged');
    const run = await runInProcess([...TRAIN, '--epochs', '2', '--optimizer', 'sgd', '--lr', '1e30', '--out', out], { cwd: work });
    expect(run.stdout).toMatch(/^Epoch 1\/2, batch ([1-9]\d*)\/63: invalid loss NaN, terminating training$/m);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^descent: no finite model to save: the loss became NaN in epoch 1, batch \d+\/63, .*try a smaller --lr\)$/m);
    expect(run.stdout).not.toContain('Saved model');
    expect(existsSync(out)).toBe(false);
  });
});

describe('8. argument order', () => {
  it('`predict --index 0 MODEL` works like `predict MODEL --index 0`', async () => {
    const natural = await runInProcess(['predict', '--index', '0', '2', modelDir, '--data', FIXTURE, '--backend', 'ts', '--json'], {});
    const documented = await runInProcess(['predict', modelDir, '--data', FIXTURE, '--backend', 'ts', '--json', '--index', '0', '2'], {});
    expect(natural.code, natural.stderr).toBe(0);
    expect(natural.stdout).toBe(documented.stdout);
    expect(jsonLines(natural.stdout).map((p) => p.input)).toEqual(['test[0]', 'test[2]']);
  });
});

describe('9. warnings that a result means little', () => {
  it('evaluating on another dataset than the model was trained on warns on stderr, in one line', async () => {
    const mnist = await runInProcess(['evaluate', modelDir, '--dataset', 'mnist', '--backend', 'ts', '--json'], {});
    expect(mnist.code, mnist.stderr).toBe(0);
    expect(mnist.stderr).toMatch(/^descent: warning: the model was trained on fashion-mnist, not mnist: its classes mean other things there$/m);
    const same = await runInProcess(['evaluate', modelDir, '--data', FIXTURE, '--backend', 'ts', '--json'], {});
    expect(same.stderr).toBe('');
  });

  it('an image with almost no contrast gets a warning', async () => {
    const { default: sharp } = await import('sharp');
    const blank = join(work, 'blank.png');
    await sharp({ create: { width: 40, height: 40, channels: 3, background: '#808080' } }).png().toFile(blank);
    const run = await runInProcess(['predict', modelDir, blank, '--backend', 'ts'], {});
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^descent: warning: .*blank\.png: the image has almost no contrast .*the prediction means little$/m);
  });
});

describe('bulk predictions and evaluate --batch-size', () => {
  it('predict --all --csv writes one row per test image, with every probability, and prints the accuracy', async () => {
    const csv = join(work, 'all.csv');
    const run = await runInProcess(['predict', modelDir, '--all', '--csv', csv, '--data', FIXTURE, '--backend', 'ts']);
    expect(run.code, run.stderr).toBe(0);
    const rows = readFileSync(csv, 'utf8').trim().split('\n').map((line) => line.split(','));
    expect(rows[0]).toEqual(['input', 'label', 'class', 'true_label', 'true_class', 'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
    expect(rows).toHaveLength(501);
    expect(rows[1][0]).toBe('test[0]');
    expect(rows[500][0]).toBe('test[499]');
    const right = rows.slice(1).filter((row) => row[1] === row[3]).length;
    for (const row of rows.slice(1, 20)) {
      const probabilities = row.slice(5).map(Number);
      expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(probabilities.indexOf(Math.max(...probabilities))).toBe(Number(row[1]));
    }
    expect(run.stdout).toBe(`Wrote 500 predictions to ${csv}\naccuracy: ${(right / 500).toFixed(4)} (${right} of 500 right)\n`);
    const evaluation = jsonLines((await runInProcess(['evaluate', modelDir, '--data', FIXTURE, '--backend', 'ts', '--json', '--batch-size', '7'])).stdout)[0];
    expect(evaluation.accuracy).toBe(right / 500);
  });

  it('on a terminal, predict --all draws a progress bar within the width', async () => {
    const run = await runInProcess(['predict', modelDir, '--all', '--csv', join(work, 'all-tty.csv'), '--data', FIXTURE, '--backend', 'ts'], { terminal: { columns: 60 } });
    expect(run.code, run.stderr).toBe(0);
    const drawn = run.stdout.split('\n')[0].split('\r').filter((line) => line !== '');
    expect(drawn.at(-1)).toMatch(/^500\/500 \[=+\]/);
    for (const line of drawn) expect(line.trimEnd().length).toBeLessThan(60);
    expect(run.stdout).toContain('Wrote 500 predictions to');
  });

  it('evaluate --batch-size gives the same numbers whatever the batch size', async () => {
    const runs = [];
    for (const size of ['1', '500']) runs.push(await runInProcess(['evaluate', modelDir, '--data', FIXTURE, '--backend', 'ts', '--json', '--batch-size', size]));
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    expect(runs[0].stdout).toBe(runs[1].stdout);
  });

  it('a folder stands for the image files in it, in name order', async () => {
    const { default: sharp } = await import('sharp');
    const folder = join(work, 'photos');
    mkdirSync(folder);
    const fixtureData = await loadDataset('fashion-mnist', { dir: FIXTURE });
    for (const [name, index] of [['b.png', 1], ['a.png', 0]] as const) {
      await sharp(Buffer.from(fixtureData.test.images.subarray(index * 784, (index + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(join(folder, name));
    }
    writeFileSync(join(folder, 'notes.txt'), 'not an image');
    const run = await runInProcess(['predict', modelDir, folder, '--backend', 'ts', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(jsonLines(run.stdout).map((p) => p.input)).toEqual([join(folder, 'a.png'), join(folder, 'b.png')]);
  });
});

describe('10. output and docs', () => {
  it('a --validation-split that leaves no training images is a usage error, found before the data is loaded', async () => {
    const out = join(work, 'split');
    const run = await runInProcess([...TRAIN, '--validation-split', '0.9999', '--out', out], { cwd: work });
    expect(oneLineError(run)).toBe('descent: --validation-split 0.9999: leaves no training images (the fashion-mnist training set has 2,000: 0 to train on, 2,000 to validate on)');
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('the missing-files message names each file once', async () => {
    const empty = join(work, 'empty-data');
    mkdirSync(empty);
    const message = oneLineError(await runInProcess(['data', '--data', empty]));
    for (const name of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      expect(message.split(name)).toHaveLength(2);
    }
  });
});

describe('Keras\'s optimizers, schedules and metrics from the command line', () => {
  it('refuses flags that mean nothing with the optimizer or each other (exit 2, one line)', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--nesterov'], /--nesterov applies to --optimizer sgd only/],
      [['--optimizer', 'sgd', '--rho', '0.8'], /--rho applies to --optimizer rmsprop only/],
      [['--decay-rate', '0.9'], /--decay-rate and --decay-steps go together/],
      [['--decay-rate', '0.9', '--decay-steps', '10', '--reduce-lr-on-plateau'], /--reduce-lr-on-plateau cannot lower a learning rate that follows --decay-rate/],
      [['--min-lr', '0.001'], /--min-lr applies to --reduce-lr-on-plateau only/],
    ];
    const runs = [];
    for (const [args] of cases) runs.push(await runInProcess([...TRAIN, '--data', join(work, 'no-such-data'), ...args], { cwd: work }));
    runs.forEach((run, i) => {
      expect(oneLineError(run)).toMatch(cases[i][1]);
      expect(run.code).toBe(2);
    });
  });

  it('RMSprop with a decaying rate and top-k accuracy: logged, saved under Keras\'s names, resumed exactly', async () => {
    const args = [...TRAIN, '--optimizer', 'rmsprop', '--momentum', '0.5', '--centered', '--decay-rate', '0.5', '--decay-steps', '20', '--top-k-accuracy', '3', '--validation-split', '0.2', '--json'];
    const whole = await runInProcess([...args, '--epochs', '3', '--out', join(work, 'rms-whole'), '--csv', join(work, 'rms.csv')], { cwd: work });
    const part = await runInProcess([...args, '--epochs', '2', '--out', join(work, 'rms-part')], { cwd: work });
    expect(whole.code, whole.stderr).toBe(0);
    expect(part.code, part.stderr).toBe(0);
    const epochs = jsonLines(whole.stdout).slice(0, 3);
    for (const epoch of epochs) {
      expect(Object.keys(epoch)).toEqual(['epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'sparse_top_k_categorical_accuracy', 'val_sparse_top_k_categorical_accuracy', 'seconds']);
      expect(epoch.sparse_top_k_categorical_accuracy as number).toBeGreaterThanOrEqual(epoch.accuracy as number);
    }
    expect(readFileSync(join(work, 'rms.csv'), 'utf8').split('\n')[0]).toBe('epoch,loss,accuracy,val_loss,val_accuracy,seconds,sparse_top_k_categorical_accuracy,val_sparse_top_k_categorical_accuracy');
    const saved = JSON.parse(readFileSync(join(work, 'rms-whole', 'descent-training.json'), 'utf8'));
    expect(saved.optimizer.name).toBe('rmsprop');
    expect(saved.optimizer.config).toEqual({
      learning_rate: { class_name: 'ExponentialDecay', config: { initial_learning_rate: 0.001, decay_steps: 20, decay_rate: 0.5, staircase: false, name: 'ExponentialDecay' } },
      rho: 0.9, momentum: 0.5, epsilon: 1e-7, centered: true,
    });
    expect(Object.keys(saved.optimizer.state.slots)).toEqual(['velocity', 'average_gradient', 'momentum']);

    const resumed = await runInProcess(['train', '--resume', join(work, 'rms-part'), '--epochs', '3', '--json'], { cwd: work });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(readFileSync(join(work, 'rms-part', 'weights.bin')).equals(readFileSync(join(work, 'rms-whole', 'weights.bin')))).toBe(true);
  });

  it('SGD with Nesterov momentum and ReduceLROnPlateau: the rate saved is the one reduced, its state is kept for --resume', async () => {
    const out = join(work, 'nesterov');
    const run = await runInProcess([...TRAIN, '--optimizer', 'sgd', '--lr', '0.5', '--momentum', '0.9', '--nesterov', '--reduce-lr-on-plateau', '0', '--reduce-lr-factor', '0.5',
      '--validation-split', '0.2', '--epochs', '4', '--out', out], { cwd: work });
    expect(run.code, run.stderr).toBe(0);
    const reductions = run.stdout.split('\n').filter((line) => /^Epoch \d: ReduceLROnPlateau reducing learning rate to [\d.e-]+\.$/.test(line)).length;
    const saved = JSON.parse(readFileSync(join(out, 'descent-training.json'), 'utf8'));
    expect(saved.optimizer.config).toEqual({ learning_rate: 0.5 * 0.5 ** reductions, momentum: 0.9, nesterov: true });
    expect(saved.callbacks.reduceLrOnPlateau).toMatchObject({ wait: 0, cooldownCounter: 0 });
    expect(saved.history.val_loss).toContain(saved.callbacks.reduceLrOnPlateau.best);
  });

  it('evaluate --top-k-accuracy: k 1 is the accuracy, k 10 of 10 classes is 1', async () => {
    const one = await runInProcess(['evaluate', modelDir, '--data', FIXTURE, '--backend', 'ts', '--json', '--top-k-accuracy', '1']);
    const ten = await runInProcess(['evaluate', modelDir, '--data', FIXTURE, '--backend', 'ts', '--json', '--top-k-accuracy', '10']);
    const [a, b] = [jsonLines(one.stdout)[0], jsonLines(ten.stdout)[0]];
    expect(Object.keys(a).slice(0, 3)).toEqual(['loss', 'accuracy', 'sparse_top_k_categorical_accuracy']);
    expect(a.sparse_top_k_categorical_accuracy).toBe(a.accuracy);
    expect(b.sparse_top_k_categorical_accuracy).toBe(1);
  });
});
