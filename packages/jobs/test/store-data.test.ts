// Jobs that read their dataset from a descent store (spec.data.store) and test the kept weights on
// its test split (spec.evaluate): the worker thread opens the store itself; the same images from a
// store or from IDX files train to the same weights, and the evaluation matches the engine's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FASHION_MNIST_CLASS_NAMES, evaluateClassifier, loadDataset, sequential, flatten, dense, type LoadedDataset } from '@descent/engine';
import { openStore } from '@descent/store';
import { LocalRunner, decodeWeights, trainingJob, type TrainingJobSpec } from '../dist/index.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/fashion-mnist', import.meta.url));
const runner = new LocalRunner({ workers: 2 });
let dir: string;
let db: string;
let data: LoadedDataset;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jobs-store-'));
  db = join(dir, 'descent.db');
  data = await loadDataset('fashion-mnist', { dir: FIXTURE, download: false });
  const store = await openStore(db, { create: true });
  await store.importImages({
    dataset: 'clothes', classNames: [...FASHION_MNIST_CLASS_NAMES], height: 28, width: 28, kind: 'idx', source: FIXTURE, skipDuplicates: false,
    splits: [
      { split: 'train', images: data.train.images, labels: data.train.labels, source: (i) => `train#${i}` },
      { split: 'test', images: data.test.images, labels: data.test.labels, source: (i) => `test#${i}` },
    ],
  });
  await store.close();
});
afterAll(async () => {
  await runner.close();
  rmSync(dir, { recursive: true, force: true });
});

function job(id: string, data: TrainingJobSpec['data']): TrainingJobSpec {
  return trainingJob({ id, data, model: { hidden: [16], dropout: 0 }, optimizer: { name: 'adam', learningRate: 1e-3 }, epochs: 2, seed: 5, evaluate: true });
}

describe('jobs on a store dataset', () => {
  it('train to the same weights as on the IDX files, and test the model on the test split', async () => {
    const [fromStore, fromFiles] = await Promise.all([
      runner.run(job('store', { dataset: 'clothes', dir: null, store: db })),
      runner.run(job('files', { dataset: 'fashion-mnist', dir: FIXTURE })),
    ]);
    expect(fromStore.weights).toEqual(fromFiles.weights);
    expect(fromStore.test).toBeDefined();
    expect(fromStore.test!.count).toBe(500);
    expect(fromStore.test!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(500);

    const model = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 16, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })], { seed: 5 });
    model.setWeights(decodeWeights(fromStore.weights));
    const expected = evaluateClassifier(model, data.test);
    model.dispose();
    expect(fromStore.test).toEqual({ loss: expected.loss, accuracy: expected.accuracy, confusion: expected.confusion, count: 500 });
  });

  it('fail with one line naming the dataset when the store does not have it', async () => {
    await expect(runner.run(job('missing', { dataset: 'nope', dir: null, store: db }))).rejects.toThrow(/--dataset nope: no such dataset/);
  });
});
