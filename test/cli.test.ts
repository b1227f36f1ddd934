// The `descent` CLI end to end on the fixture subset: train → evaluate → predict → summary → data.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareImage } from '../packages/cli/src/image.js';
import { loadDataset } from '../packages/engine/src/index.js';
import { FIXTURE, jsonLines, runCli, temporaryFolder } from './cli-helpers.js';

const fixture = await loadDataset('fashion-mnist', { dir: FIXTURE });
const tmp = temporaryFolder('descent-cli-');
const work = tmp.dir;
afterAll(tmp.remove);

// Small and quick; the numbers are checked for consistency between commands, not for quality.
const TRAIN = ['train', '--data', FIXTURE, '--epochs', '2', '--hidden', '16', '--backend', 'ts', '--seed', '3'];
let modelDir: string;
let trainJson: Array<Record<string, unknown>>;

beforeAll(async () => {
  modelDir = join(work, 'model');
  const run = await runCli([...TRAIN, '--validation-split', '0.1', '--out', modelDir, '--json', '--csv', join(work, 'log.csv')], { cwd: work });
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.code, run.stderr).toBe(0);
  trainJson = jsonLines(run.stdout);
});

describe('descent train', () => {
  it('--json prints one object per epoch and a final one, with exactly the documented keys', () => {
    expect(trainJson).toHaveLength(3);
    for (const [i, epoch] of trainJson.slice(0, 2).entries()) {
      expect(Object.keys(epoch)).toEqual(['epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'seconds']);
      expect(epoch.epoch).toBe(i + 1);
      for (const key of ['loss', 'accuracy', 'val_loss', 'val_accuracy', 'seconds']) expect(typeof epoch[key]).toBe('number');
    }
    expect(trainJson[1].loss as number).toBeLessThan(trainJson[0].loss as number);
    const final = trainJson[2];
    expect(Object.keys(final)).toEqual(['test_loss', 'test_accuracy', 'model_dir']);
    expect(final.model_dir).toBe(modelDir);
    expect(final.test_accuracy as number).toBeGreaterThan(0.3); // well above chance (0.1): it learned something
  });

  it('saves model.json, weights.bin and the training metadata, and the CSV log matches the JSON lines', () => {
    expect(readdirSync(modelDir).sort()).toEqual(['descent-optimizer.bin', 'descent-training.json', 'model.json', 'weights.bin']);
    const csv = readFileSync(join(work, 'log.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('epoch,loss,accuracy,val_loss,val_accuracy,seconds');
    expect(csv).toHaveLength(3);
    csv.slice(1).forEach((row, i) => {
      const [epoch, loss, accuracy, valLoss, valAccuracy] = row.split(',').map(Number);
      expect([epoch, loss, accuracy, valLoss, valAccuracy]).toEqual([i + 1, trainJson[i].loss, trainJson[i].accuracy, trainJson[i].val_loss, trainJson[i].val_accuracy]);
    });
    const training = JSON.parse(readFileSync(join(modelDir, 'descent-training.json'), 'utf8'));
    expect(training).toMatchObject({ status: 'complete', dataset: 'fashion-mnist', epochsCompleted: 2, seed: 3 });
    expect(training.hyperparameters).toMatchObject({ epochs: 2, batchSize: 32, optimizer: 'adam', lr: 0.001, hidden: [16], validationSplit: 0.1 });
  });

  it('without --json and off a terminal prints one line per epoch, the test result and where it saved', async () => {
    const out = join(work, 'plain');
    const run = await runCli([...TRAIN, '--out', out], { cwd: work });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('Epoch '))).toHaveLength(2);
    expect(lines.find((l) => l.startsWith('Epoch 1/2'))).toMatch(/^Epoch 1\/2 - \d+s \d+(ms|us|s)\/step - loss: \d\.\d{4} - accuracy: \d\.\d{4}$/);
    expect(run.stdout).toMatch(/Test loss: \d\.\d{4} - test accuracy: \d\.\d{4}/);
    expect(run.stdout).toContain('Saved model to plain');
    expect(run.stdout).not.toContain('\r'); // no redrawn progress bar in a log
  });

  it('--early-stopping stops when val_loss stops improving and keeps the best epoch\'s weights', async () => {
    const args = ['train', '--data', FIXTURE, '--hidden', '16', '--validation-split', '0.2', '--lr', '0.01', '--backend', 'ts'];
    const stopped = await runCli([...args, '--epochs', '15', '--early-stopping', '1', '--out', join(work, 'stopped')], { cwd: work });
    expect(stopped.code, stopped.stderr).toBe(0);
    const restored = /^Restoring model weights from the end of the best epoch: (\d+)\.$/m.exec(stopped.stdout);
    expect(restored, stopped.stdout).not.toBeNull();
    const best = Number(restored![1]);
    const epochs = stopped.stdout.split('\n').filter((line) => /^Epoch \d+\/15 - /.test(line)).length;
    expect(epochs).toBeLessThan(15);
    expect(stopped.stdout).toContain(`Epoch ${epochs}: early stopping`);
    // The same run cut at the best epoch ends with those very weights.
    const short = await runCli([...args, '--epochs', String(best), '--out', join(work, 'best')], { cwd: work });
    expect(short.code, short.stderr).toBe(0);
    expect(readFileSync(join(work, 'stopped', 'weights.bin')).equals(readFileSync(join(work, 'best', 'weights.bin')))).toBe(true);

    // --checkpoint with validation saves only improvements and keeps the best epoch at the end.
    const checkpointed = await runCli([...args, '--epochs', String(epochs), '--checkpoint', '--out', join(work, 'checkpointed')], { cwd: work });
    expect(checkpointed.code, checkpointed.stderr).toBe(0);
    expect(checkpointed.stdout).toContain(`Epoch ${epochs}: val_loss did not improve from`);
    expect(checkpointed.stdout).toContain(`Keeping the best checkpoint: epoch ${best} `);
    expect(readFileSync(join(work, 'checkpointed', 'weights.bin')).equals(readFileSync(join(work, 'best', 'weights.bin')))).toBe(true);

    // Early stopping that never stops still restores the best epoch when the run ends (Keras 3).
    const ranOut = await runCli([...args, '--epochs', String(epochs), '--early-stopping', '15', '--out', join(work, 'ran-out')], { cwd: work });
    expect(ranOut.code, ranOut.stderr).toBe(0);
    expect(ranOut.stdout).not.toContain('early stopping');
    expect(ranOut.stdout).toContain(`Restoring model weights from the end of the best epoch: ${best}.`);
    expect(readFileSync(join(work, 'ran-out', 'weights.bin')).equals(readFileSync(join(work, 'best', 'weights.bin')))).toBe(true);
  });

  it('the same seed gives the same weights, bit for bit', async () => {
    const out = join(work, 'again');
    const run = await runCli([...TRAIN, '--validation-split', '0.1', '--out', out, '--json'], { cwd: work });
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(join(out, 'weights.bin')).equals(readFileSync(join(modelDir, 'weights.bin')))).toBe(true);
  });
});

describe('descent evaluate', () => {
  it('--json gives loss, accuracy, a confusion matrix and per-class precision and recall that agree with each other and with train', async () => {
    const run = await runCli(['evaluate', modelDir, '--data', FIXTURE, '--backend', 'ts', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const [result] = jsonLines(run.stdout);
    expect(Object.keys(result)).toEqual(['loss', 'accuracy', 'confusion', 'per_class']);
    const confusion = result.confusion as number[][];
    const perClass = result.per_class as Array<{ class: string; precision: number; recall: number; support: number }>;
    expect(confusion).toHaveLength(10);
    // Row sums are the true counts of each class in the fixture test set.
    const counts = new Array(10).fill(0);
    for (const label of fixture.test.labels) counts[label]++;
    expect(confusion.map((row) => row.reduce((a, b) => a + b, 0))).toEqual(counts);
    const diagonal = confusion.reduce((sum, row, i) => sum + row[i], 0);
    expect(result.accuracy).toBe(diagonal / fixture.test.count);
    expect(result.accuracy).toBe(trainJson[2].test_accuracy);
    expect(result.loss).toBe(trainJson[2].test_loss);
    perClass.forEach((c, i) => {
      expect(c.class).toBe(fixture.classNames[i]);
      expect(c.support).toBe(counts[i]);
      expect(c.recall).toBeCloseTo(confusion[i][i] / counts[i], 12);
      const predicted = confusion.reduce((sum, row) => sum + row[i], 0);
      expect(c.precision).toBeCloseTo(predicted ? confusion[i][i] / predicted : 0, 12);
    });
  });

  it('prints a readable table with class names and the confusion matrix', async () => {
    const run = await runCli(['evaluate', modelDir, '--data', FIXTURE, '--backend', 'ts']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/loss: \d\.\d{4} - accuracy: \d\.\d{4}/);
    for (const name of fixture.classNames) expect(run.stdout).toContain(name);
    expect(run.stdout).toContain('Confusion matrix (rows: true class, columns: predicted class)');
    expect(run.stdout).toMatch(/^9 Ankle boot\s+\d+\.\d{4}\s+\d+\.\d{4}\s+50$/m);
  });
});

describe('descent predict', () => {
  it('--index gives one object per image with the predicted label, class name, ten probabilities and the true class', async () => {
    const run = await runCli(['predict', modelDir, '--data', FIXTURE, '--backend', 'ts', '--json', '--index', '0', '1', '2']);
    expect(run.code, run.stderr).toBe(0);
    const byIndex = jsonLines(run.stdout);
    expect(byIndex.map((p) => p.input)).toEqual(['test[0]', 'test[1]', 'test[2]']);
    byIndex.forEach((p, i) => {
      const probabilities = p.probabilities as number[];
      expect(probabilities).toHaveLength(10);
      expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      const best = probabilities.indexOf(Math.max(...probabilities));
      expect(p.label).toBe(best);
      expect(p.class).toBe(fixture.classNames[best]);
      expect(p.true_label).toBe(fixture.test.labels[i]);
      expect(p.true_class).toBe(fixture.classNames[fixture.test.labels[i]]);
    });
  });

  it('prints the top classes with percentages', async () => {
    const run = await runCli(['predict', modelDir, '--data', FIXTURE, '--backend', 'ts', '--index', '0', '--top', '2']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe(`test[0] (true class: ${fixture.classNames[fixture.test.labels[0]]})`);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^ {2}\S.*\s\d+\.\d%$/);
  });

  it('a photo-like PNG (dark item on a light background, with margins) is inverted, trimmed and classified like the item itself', async () => {
    // Test image 0 as a photo would show it: dark on white, scaled up 4×, off-centre on a larger white sheet.
    const original = fixture.test.images.subarray(0, 784);
    const photo = join(work, 'photo.png');
    await sharp(Buffer.from(original.map((v) => 255 - v)), { raw: { width: 28, height: 28, channels: 1 } })
      .resize(112, 112, { kernel: 'nearest' })
      .extend({ top: 30, bottom: 10, left: 20, right: 50, background: '#ffffff' })
      .png()
      .toFile(photo);
    // The same item light on black, as Fashion-MNIST stores it, at twice the size (a 28×28 one is taken as it is).
    const item = join(work, 'item.png');
    await sharp(Buffer.from(original), { raw: { width: 28, height: 28, channels: 1 } }).resize(56, 56, { kernel: 'nearest' }).png().toFile(item);
    const asStored = join(work, 'stored.png');
    await sharp(Buffer.from(original), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(asStored);
    expect(Array.from((await prepareImage(asStored)).pixels)).toEqual(Array.from(original));

    const fromPhoto = await prepareImage(photo);
    const fromItem = await prepareImage(item);
    expect(fromPhoto.inverted).toBe(true);
    expect(fromItem.inverted).toBe(false);
    const meanDifference = fromPhoto.pixels.reduce((sum, v, i) => sum + Math.abs(v - fromItem.pixels[i]), 0) / 784;
    expect(meanDifference).toBeLessThan(8); // the margins are gone and the item is light on dark again
    expect(fromPhoto.pixels.reduce((a, b) => a + b, 0) / 784).toBeGreaterThan(20); // and it is not blank

    const run = await runCli(['predict', modelDir, photo, item, '--backend', 'ts', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const [p1, p2] = jsonLines(run.stdout);
    expect(p1.input).toBe(photo);
    expect(p1.class).toBe(p2.class);
    const a = p1.probabilities as number[];
    const b = p2.probabilities as number[];
    expect(Math.max(...a.map((p, i) => Math.abs(p - b[i])))).toBeLessThan(0.05);

    const text = await runCli(['predict', modelDir, photo, '--backend', 'ts']);
    expect(text.stdout.split('\n')[0]).toBe(`${photo} (light background, inverted)`);
  });

  it('a wide image is fitted without distortion, padded with the background', async () => {
    // 60×20 white picture with a black 40×10 bar: trimmed to the bar and fitted, it is 28 wide and 7 high, light on dark.
    const wide = join(work, 'wide.png');
    const pixels = Buffer.alloc(60 * 20, 255);
    for (let y = 5; y < 15; y++) pixels.fill(0, y * 60 + 10, y * 60 + 50);
    await sharp(pixels, { raw: { width: 60, height: 20, channels: 1 } }).png().toFile(wide);
    const bar = await prepareImage(wide);
    expect(bar.inverted).toBe(true);
    const rowMeans = Array.from({ length: 28 }, (_, y) => bar.pixels.subarray(y * 28, y * 28 + 28).reduce((a, b) => a + b, 0) / 28);
    expect(rowMeans[0]).toBe(0); // padding above and below, black like the background
    expect(rowMeans[27]).toBe(0);
    const barRows = rowMeans.filter((mean) => mean > 200).length;
    expect(barRows).toBeGreaterThanOrEqual(6);
    expect(barRows).toBeLessThanOrEqual(8);
  });
});

describe('descent summary and data', () => {
  it('summary shows the Keras layer table and how the model was trained', async () => {
    const run = await runCli(['summary', modelDir]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/dense \(Dense\)\s+\(None, 16\)\s+12,560/);
    expect(run.stdout).toContain('Total params: 12,730');
    expect(run.stdout).toContain('Saved by descent 0.1.0');
    expect(run.stdout).toContain('Trained on fashion-mnist: 2 of 2 epochs (complete)');
  });

  it('data reports where the files are, their counts and that they are not the published files', async () => {
    const run = await runCli(['data', '--data', FIXTURE, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const [info] = jsonLines(run.stdout);
    expect(info).toMatchObject({ dataset: 'fashion-mnist', source: 'flag', dir: FIXTURE, train: 2000, test: 500 });
    expect((info.files as Array<{ matches_published: boolean }>).map((f) => f.matches_published)).toEqual([false, false, false, false]);
    const text = await runCli(['data', '--data', FIXTURE]);
    expect(text.stdout).toContain('2,000 training images and 500 test images of 28×28 pixels');
  });

  it('--help works on every command', async () => {
    for (const command of ['train', 'evaluate', 'predict', 'summary', 'data']) {
      const run = await runCli([command, '--help']);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`Usage: descent ${command}`);
    }
    expect(existsSync(join(work, 'models'))).toBe(false);
  });
});
