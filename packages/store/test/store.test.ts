// One behaviour suite, run against SQLite and a real MariaDB server.
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type LoadedDataset } from '@descent/engine';
import { LATEST_VERSION, StoreError, openStore, sha256, type ImportRequest, type Store } from '../src/index.js';
import type { SqliteDriver } from '../src/sqlite.js';
import { backends } from './backends.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/fashion-mnist', import.meta.url));
const all = backends('descent-store-test');
let fixture: LoadedDataset;

beforeAll(async () => {
  fixture = await loadDataset('fashion-mnist', { dir: FIXTURE });
  await all.start();
}, 120_000);
afterAll(() => all.stop());

function fixtureImport(dataset = 'fashion-mnist'): ImportRequest {
  return {
    dataset,
    classNames: fixture.classNames,
    height: 28,
    width: 28,
    kind: 'idx',
    source: FIXTURE,
    skipDuplicates: false,
    splits: [
      { split: 'train', images: fixture.train.images, labels: fixture.train.labels, source: (i) => `train#${i}` },
      { split: 'test', images: fixture.test.images, labels: fixture.test.labels, source: (i) => `test#${i}` },
    ],
  };
}

function classCounts(labels: Uint8Array, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const label of labels) counts[label]++;
  return counts;
}

describe.each(['sqlite', 'mariadb'] as const)('store on %s', (name) => {
  const backend = () => all[name];
  // Most tests share one database (creating the schema takes a while on MariaDB), each with its
  // own datasets and models; the schema tests get their own.
  let shared: Store;
  beforeAll(async () => {
    shared = await openStore(await backend().fresh(), { create: true });
  });
  afterAll(() => shared?.close());
  let n = 0;
  const unique = (base: string) => `${base}-${++n}`;

  it('creates the schema at the latest version, once', async () => {
    const url = await backend().fresh();
    const store = await openStore(url, { create: true });
    expect(await store.schemaVersion()).toBe(LATEST_VERSION);
    expect(await store.migrate()).toEqual([]);
    await store.close();
    const again = await openStore(url);
    expect(await again.schemaVersion()).toBe(LATEST_VERSION);
    const rows = await again.query('SELECT version FROM schema_migrations');
    expect(rows.rows.length).toBe(LATEST_VERSION);
    await again.close();
  });

  it('refuses a database of a newer schema version, in one line', async () => {
    const url = await backend().fresh();
    const store = await openStore(url, { create: true });
    await store.driver.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [LATEST_VERSION + 7, 'from the future', '2030-01-01 00:00:00.000']);
    await store.close();
    const error = await openStore(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toMatch(new RegExp(`schema version ${LATEST_VERSION + 7}, newer than this descent knows \\(${LATEST_VERSION}\\)`));
    expect((error as Error).message).not.toContain('\n');
  });

  it('imports IDX images and reads each split back byte for byte, in order', async () => {
    const store = shared;
    const name = unique('fashion');
    const result = await store.importImages(fixtureImport(name));
    expect(result).toMatchObject({ alreadyImported: false, added: { train: 2000, test: 500 }, duplicates: 0 });
    const dataset = (await store.getDataset(name))!;
    expect(dataset).toMatchObject({ name, height: 28, width: 28, classNames: fixture.classNames });
    expect(dataset.counts.train).toEqual(classCounts(fixture.train.labels, 10));
    expect(dataset.counts.test).toEqual(classCounts(fixture.test.labels, 10));
    for (const split of ['train', 'test'] as const) {
      const loaded = await store.loadSplit(name, split);
      expect(loaded.count).toBe(fixture[split].count);
      expect(Buffer.from(loaded.images).equals(Buffer.from(fixture[split].images))).toBe(true);
      expect(Buffer.from(loaded.labels).equals(Buffer.from(fixture[split].labels))).toBe(true);
      expect(new Set(loaded.ids).size).toBe(loaded.count);
    }
    // The content hash is the SHA-256 of the pixels.
    const hashes = await store.query(`SELECT content_hash FROM images WHERE split = 'test' AND position = 3 AND dataset_id = ${dataset.id}`);
    expect(hashes.rows[0][0]).toBe(sha256(fixture.test.images.subarray(3 * 784, 4 * 784)));
  });

  it('detects a repeated import by its content hash and writes nothing', async () => {
    const store = shared;
    const name = unique('again');
    const { datasetId } = await store.importImages(fixtureImport(name));
    const again = await store.importImages(fixtureImport(name));
    expect(again).toMatchObject({ alreadyImported: true, added: { train: 0, test: 0 } });
    const count = await store.query(`SELECT COUNT(*) FROM images WHERE dataset_id = ${datasetId}`);
    expect(count.rows[0][0]).toBe(2500);
    const imports = await store.query(`SELECT COUNT(*) FROM imports WHERE dataset_id = ${datasetId}`);
    expect(imports.rows[0][0]).toBe(1);
  });

  it('skips duplicate images when asked, and maps class names onto an existing dataset', async () => {
    const store = shared;
    const mine = unique('mine');
    await store.importImages(fixtureImport(mine));
    const first = fixture.train.images.subarray(0, 784);
    const other = new Uint8Array(784).fill(7);
    const result = await store.importImages({
      dataset: mine, classNames: ['Bag', 'Hat'], height: 28, width: 28, kind: 'folder', source: 'x', skipDuplicates: true,
      splits: [{ split: 'train', images: Buffer.concat([first, other, other]), labels: Uint8Array.of(0, 1, 1), source: (i) => `f${i}.png` }],
    });
    expect(result).toMatchObject({ alreadyImported: false, added: { train: 1, test: 0 }, duplicates: 2, newClasses: ['Hat'] });
    const dataset = (await store.getDataset(mine))!;
    expect(dataset.classNames).toEqual([...fixture.classNames, 'Hat']);
    const train = await store.loadSplit(mine, 'train');
    expect(train.count).toBe(2001);
    expect(train.labels[2000]).toBe(10);
    expect(Buffer.from(train.images.subarray(2000 * 784)).equals(Buffer.from(other))).toBe(true);
  });

  it('writes an import whole or not at all', async () => {
    const store = shared;
    const name = unique('half');
    const request = fixtureImport(name);
    let calls = 0;
    request.onProgress = () => {
      if (++calls === 2) throw new Error('stopped half-way');
    };
    await expect(store.importImages(request)).rejects.toThrow('stopped half-way');
    expect(await store.getDataset(name)).toBeUndefined();
    expect((await store.query(`SELECT COUNT(*) FROM images i JOIN datasets d ON d.id = i.dataset_id WHERE d.name = '${name}'`)).rows[0][0]).toBe(0);
    expect((await store.query(`SELECT COUNT(*) FROM images WHERE dataset_id NOT IN (SELECT id FROM datasets)`)).rows[0][0]).toBe(0);
  });

  it('passes names and values as parameters: quotes and SQL in them are plain text', async () => {
    const store = await openStore(await backend().fresh(), { create: true });
    const hostile = ["O'Brien", 'x"); DROP TABLE images; --', "'; DELETE FROM datasets; --"];
    await store.importImages({
      dataset: 'quotes', classNames: hostile, height: 2, width: 2, kind: 'folder', source: "a'b", skipDuplicates: true,
      splits: [{ split: 'train', images: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), labels: Uint8Array.of(0, 1, 2), source: (i) => `'${i}"` }],
    });
    const model = await store.saveModel({ name: "m'; DROP TABLE models; --", dataset: 'quotes', architecture: '{}', modelJson: '{"a":"\'"}', weights: Uint8Array.of(1, 2, 3) });
    expect((await store.getDataset('quotes'))!.classNames).toEqual(hostile);
    expect((await store.getModel(model.name))!.modelJson).toBe('{"a":"\'"}');
    expect((await store.query('SELECT COUNT(*) FROM images')).rows[0][0]).toBe(3);
    await store.close();
  });

  it('records models with their files, unique names, and finds them by their bytes', async () => {
    const store = await openStore(await backend().fresh(), { create: true });
    await store.importImages(fixtureImport());
    const weights = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
    const input = { name: 'mlp', dataset: 'fashion-mnist', architecture: '{"class_name":"Sequential"}', modelJson: '{"format":"layers-model"}', weights, trainingJson: '{"seed":42}', dir: '/tmp/mlp', testLoss: 0.5, testAccuracy: 0.8, createdBy: 'tester' };
    expect(await store.saveModel(input)).toMatchObject({ name: 'mlp' });
    expect(await store.saveModel({ ...input, weights: Uint8Array.of(1) })).toMatchObject({ name: 'mlp-2' });
    const model = (await store.getModel('mlp'))!;
    expect(model).toMatchObject({ name: 'mlp', dataset: 'fashion-mnist', dir: '/tmp/mlp', testLoss: 0.5, testAccuracy: 0.8, createdBy: 'tester', trainingJson: '{"seed":42}', predictions: 0 });
    expect(Buffer.from(model.weights).equals(Buffer.from(weights))).toBe(true);
    expect((await store.findModelByFiles(input.modelJson, weights))?.name).toBe('mlp');
    expect(await store.findModelByFiles(input.modelJson, Uint8Array.of(9))).toBeUndefined();
    expect((await store.listModels()).map((m) => m.name)).toEqual(['mlp', 'mlp-2']);
    await expect(store.requireModel('nope')).rejects.toThrow(/--model nope: no such model in .*; the store holds: mlp, mlp-2/);
    await store.close();
  });

  it('records training runs and their progress', async () => {
    const store = shared;
    const dataset = unique('runs');
    await store.importImages(fixtureImport(dataset));
    const id = await store.createRun({ dataset, settings: { epochs: 2 }, createdBy: 'tester' });
    await store.updateRun(id, { history: { loss: [0.9] }, epochsDone: 1 });
    await store.updateRun(id, { status: 'complete', history: { loss: [0.9, 0.6] }, epochsDone: 2, finished: true });
    const row = await store.query(`SELECT status, epochs_done, history, settings, finished_at IS NOT NULL FROM training_runs WHERE id = ${id}`);
    expect(row.rows[0].slice(0, 2)).toEqual(['complete', 2]);
    expect(JSON.parse(row.rows[0][2] as string)).toEqual({ loss: [0.9, 0.6] });
    expect(JSON.parse(row.rows[0][3] as string)).toEqual({ epochs: 2 });
    expect(Number(row.rows[0][4])).toBe(1);
  });

  it('stores predictions with every probability, replacing an earlier evaluation', async () => {
    const store = shared;
    const dataset = unique('predictions');
    await store.importImages(fixtureImport(dataset));
    const { id: modelId } = await store.saveModel({ name: dataset, dataset, architecture: '{}', modelJson: '{}', weights: Uint8Array.of(0) });
    const test = await store.loadSplit(dataset, 'test');
    const probabilities = (i: number) => Float32Array.from({ length: 10 }, (_, c) => (c === i % 10 ? 0.91 : 0.01));
    const predictions = Array.from({ length: test.count }, (_, i) => ({ imageId: test.ids[i], input: `test[${i}]`, probabilities: probabilities(i), trueLabel: test.labels[i] }));
    expect(await store.savePredictions({ modelId, origin: 'evaluate', replace: true, predictions })).toEqual({ saved: 500, replaced: 0 });
    expect(await store.savePredictions({ modelId, origin: 'evaluate', replace: true, predictions })).toEqual({ saved: 500, replaced: 500 });
    await store.savePredictions({ modelId, origin: 'predict', predictions: [{ pixels: new Uint8Array(784).fill(3), input: 'shoe.png', probabilities: probabilities(7) }] });
    const rows = await store.query(`SELECT origin, COUNT(*), SUM(predicted = true_label) FROM predictions WHERE model_id = ${modelId} GROUP BY origin ORDER BY origin`);
    const correct = predictions.filter((p, i) => i % 10 === p.trueLabel).length;
    expect(rows.rows).toEqual([['evaluate', 500, correct], ['predict', 1, null]]);
    const stored = await store.query(`SELECT probabilities, confidence, predicted, pixels FROM predictions WHERE input = 'shoe.png' AND model_id = ${modelId}`);
    expect(Float32Array.from(JSON.parse(stored.rows[0][0] as string) as number[])).toEqual(probabilities(7));
    expect(stored.rows[0][1]).toBeCloseTo(0.91, 6);
    expect(stored.rows[0][2]).toBe(7);
    expect(Buffer.from(stored.rows[0][3] as Uint8Array).equals(Buffer.alloc(784, 3))).toBe(true);
  });

  it('runs read-only queries and refuses anything that writes, leaving the data as it was', async () => {
    const store = await openStore(await backend().fresh(), { create: true });
    await store.importImages(fixtureImport());
    const result = await store.query('SELECT label, COUNT(*) AS n FROM images WHERE split = ? GROUP BY label ORDER BY label'.replace('?', "'test'"));
    expect(result.columns).toEqual(['label', 'n']);
    expect(result.rows.map((r) => r[1])).toEqual(classCounts(fixture.test.labels, 10));
    const writes = [
      'DELETE FROM images',
      "UPDATE datasets SET name = 'x'",
      "INSERT INTO classes (dataset_id, label, name) VALUES (1, 99, 'x')",
      'DROP TABLE images',
      'CREATE TABLE x (a INT)',
      'ALTER TABLE images ADD COLUMN y INT',
      'WITH x AS (SELECT 1) DELETE FROM images',
      'SELECT 1; DELETE FROM images',
      '/* comment */ DELETE FROM images',
      name === 'sqlite' ? "ATTACH DATABASE '/tmp/descent-attach.db' AS other" : "SELECT * FROM images INTO OUTFILE '/tmp/descent-outfile'",
      name === 'sqlite' ? 'PRAGMA user_version = 5' : 'SET @x = 1',
      name === 'sqlite' ? 'VACUUM' : 'TRUNCATE TABLE images',
    ];
    for (const sql of writes) {
      const error = await store.query(sql).catch((e: unknown) => e);
      expect(error, sql).toBeInstanceOf(StoreError);
      expect((error as Error).message, sql).not.toContain('\n');
    }
    expect((await store.query('SELECT COUNT(*) FROM images')).rows[0][0]).toBe(2500);
    expect((await store.query('SELECT name FROM datasets')).rows).toEqual([['fashion-mnist']]);
    const bad = await store.query('SELECT * FROM images WHERE ORDER').catch((e: unknown) => e);
    expect((bad as Error).message).toMatch(/^the query (does not run|failed): .*syntax/);
    const misspelt = await store.query('SELEKT * FROM images').catch((e: unknown) => e);
    expect((misspelt as Error).message).toMatch(/SELEKT/);
    await store.close();
  });

  it('keeps any small labelled dataset intact through an import and a read (property)', async () => {
    const store = shared;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }).chain((side) => fc.record({
          side: fc.constant(side),
          classNames: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 }),
          images: fc.array(fc.uint8Array({ minLength: side * side, maxLength: side * side }), { minLength: 1, maxLength: 20 }),
          labelSeed: fc.array(fc.nat(), { minLength: 20, maxLength: 20 }),
        })),
        async ({ side, classNames, images, labelSeed }) => {
          const dataset = unique('p');
          const labels = Uint8Array.from(images, (_, i) => labelSeed[i] % classNames.length);
          await store.importImages({
            dataset, classNames, height: side, width: side, kind: 'folder', source: 'property', skipDuplicates: false,
            splits: [{ split: 'test', images: Buffer.concat(images), labels, source: (i) => `img${i}` }],
          });
          const back = await store.loadSplit(dataset, 'test');
          expect(Buffer.from(back.images).equals(Buffer.concat(images))).toBe(true);
          expect(Array.from(back.labels)).toEqual(Array.from(labels));
          expect(back.classNames).toEqual(classNames);
        },
      ),
      { seed: 12, numRuns: 15 },
    );
  });
});

describe('SQLite checkpoints in the background', () => {
  it('copies committed pages into the database file on its own thread, and the data stays whole', async () => {
    const file = await all.sqlite.fresh();
    const store = await openStore(file, { create: true });
    const driver = store.driver as SqliteDriver;
    try {
      driver.checkpointInBackground();
      // The committing connection no longer checkpoints by itself.
      expect(await store.driver.all('PRAGMA wal_autocheckpoint')).toEqual([{ wal_autocheckpoint: 0 }]);
      const { id: modelId } = await store.saveModel({ name: 'm', dataset: null, architecture: '{}', modelJson: '{}', weights: Uint8Array.of(0) });
      const probabilities = Float32Array.from({ length: 10 }, (_, c) => c / 45);
      for (let i = 0; i < 200; i++) {
        await store.savePredictions({ modelId, origin: 'api', predictions: [{ pixels: new Uint8Array(784).fill(i % 256), input: `p${i}`, probabilities }] });
      }
      await expect.poll(() => driver.checkpointedPages, { timeout: 10_000 }).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
    const reopened = await openStore(file);
    try {
      const rows = await reopened.query("SELECT COUNT(*), COUNT(DISTINCT input) FROM predictions WHERE origin = 'api'");
      expect(rows.rows).toEqual([[200, 200]]);
    } finally {
      await reopened.close();
    }
  });
});
