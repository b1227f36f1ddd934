// The SQL store from the command line, on SQLite and on a real MariaDB server: import, list,
// export, train/evaluate/predict/report with --db and --store, the queries of docs/sql.md, bad
// input, and kill -9 during an import. The commands run in this process (runInProcess), except the
// first import of each database and the import that is killed, which run as processes of their own.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdxImages, encodeIdxLabels, loadDataset, loadModel, type LoadedDataset } from '@descent/engine';
import * as mariadb from 'mariadb';
import { LATEST_VERSION, openStore, type Store } from '@descent/store';
import { backends } from '../packages/store/test/backends.js';
import { FIXTURE, ROOT, jsonLines, runCli, runInProcess, startCli, temporaryFolder, waitForOutput, type CliResult } from './cli-helpers.js';

const all = backends('descent-store-cli');
/** The CLI in this process: what these tests prove is what the commands do, not how a process runs them. */
const cli = runInProcess;
const tmp = temporaryFolder('descent-store-cli-');
let fixture: LoadedDataset;

beforeAll(async () => {
  fixture = await loadDataset('fashion-mnist', { dir: FIXTURE });
  await all.start();
}, 120_000);
afterAll(async () => {
  await all.stop();
  tmp.remove();
});

function oneLineError(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(pattern);
}

/** The fenced ```sql blocks of docs/sql.md, in order. */
function documentedQueries(): string[] {
  const text = readFileSync(join(ROOT, 'docs/sql.md'), 'utf8');
  return [...text.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1].trim().replace(/;$/, ''));
}

/**
 * Holds an import into a new database inside its transaction once `at` of its training images are
 * written, so that a kill lands half-way however fast or busy the machine is. On MariaDB another
 * connection holds, uncommitted, the (dataset, split, position) key that the next image needs (the
 * import's dataset is the database's first: id 1); on SQLite a trigger on that image computes for
 * minutes. `reached()` says when the import is held with a good part of its rows written.
 */
async function stallImport(name: 'sqlite' | 'mariadb', db: string, at: number): Promise<{ reached(): Promise<boolean>; release(): Promise<void> }> {
  if (name === 'sqlite') {
    const store = await openStore(db);
    await store.driver.run(`CREATE TRIGGER stall BEFORE INSERT ON images WHEN NEW.split = 'train' AND NEW.position = ${at} BEGIN
      SELECT COUNT(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT x FROM c); END`);
    await store.close();
    return {
      // SQLite spills a transaction's pages into the write-ahead log as it goes: past 8 MB (a good
      // part of the rows, none committed) well before the 25,000th image.
      reached: async () => existsSync(`${db}-wal`) && statSync(`${db}-wal`).size > 8 * 1024 * 1024,
      release: async () => {
        const store = await openStore(db);
        await store.driver.run('DROP TRIGGER stall').finally(() => store.close());
      },
    };
  }
  const connection = await mariadb.createConnection({ socketPath: all.server().socket, user: 'root', password: '', database: new URL(db).pathname.slice(1) });
  await connection.query('SET SESSION foreign_key_checks = 0'); // dataset 1 is the import's, not written yet
  await connection.beginTransaction();
  await connection.query("INSERT INTO images (dataset_id, split, position, label, pixels, source, content_hash, import_id) VALUES (1, 'train', ?, 0, '', 'stall', '', 1)", [at]);
  const own = Number(((await connection.query('SELECT CONNECTION_ID() AS id')) as Array<{ id: number | bigint }>)[0].id);
  return {
    // The import runs in one transaction and writes positions in order, so an INSERT of it that has
    // run for a second is waiting on the held key (or on something else the held transaction keeps):
    // either way the import is under way and nothing of it is committed. The process list is live
    // (information_schema.innodb_trx is a cached copy that can miss the wait).
    reached: async () => {
      const waiting = (await connection.query(
        "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE id <> ? AND info LIKE '%INSERT%INTO%images%' AND time_ms >= 1000",
        [own],
      )) as Array<{ n: number | bigint }>;
      return Number(waiting[0].n) > 0;
    },
    release: async () => {
      await connection.rollback();
      await connection.end();
    },
  };
}

describe.each(['sqlite', 'mariadb'] as const)('descent db on %s', (name) => {
  let db: string;
  const dir = join(tmp.dir, name);
  beforeAll(async () => {
    db = await all[name].fresh();
    mkdirSync(dir, { recursive: true });
  });

  it('imports Fashion-MNIST once, lists it, and exports byte-identical IDX files', async () => {
    const init = await cli(['db', 'init', '--db', db]);
    expect(init.stdout).toContain(`database ready, schema version ${LATEST_VERSION}`);
    // As a process of its own, once: it must exit when done (no connection or handle left open).
    const first = await runCli(['db', 'import', 'fashion-mnist', '--data', FIXTURE, '--db', db]);
    expect(first.stdout, first.stderr).toMatch(/Imported 2,500 images into dataset fashion-mnist \(2,000 train, 500 test, 10 classes\)/);
    const again = await cli(['db', 'import', 'fashion-mnist', '--data', FIXTURE, '--db', db, '--json']);
    expect(jsonLines(again.stdout)[0]).toMatchObject({ already_imported: true, train: 0, test: 0 });
    const list = jsonLines((await cli(['db', 'list', '--db', db, '--json'])).stdout);
    const counts = (labels: Uint8Array) => Array.from({ length: 10 }, (_, c) => labels.filter((l) => l === c).length);
    expect(list[0]).toMatchObject({ dataset: 'fashion-mnist', image_size: [28, 28], train: counts(fixture.train.labels), test: counts(fixture.test.labels) });
    const out = join(dir, 'export');
    const exported = await cli(['db', 'export', '--dataset', 'fashion-mnist', '--out', out, '--db', db]);
    expect(exported.code, exported.stderr).toBe(0);
    for (const file of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      expect(readFileSync(join(out, file)).equals(gunzipSync(readFileSync(join(FIXTURE, `${file}.gz`)))), file).toBe(true);
    }
    const clash = await cli(['db', 'export', '--dataset', 'fashion-mnist', '--out', out, '--db', db]);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toMatch(/already holds train-images-idx3-ubyte/);
  });

  it('trains from the store, records models and predictions, and answers the queries of docs/sql.md', async () => {
    for (const [model, hidden] of [['mlp', '16'], ['wide', '32']]) {
      const trained = await cli(['train', '--db', db, '--dataset', 'fashion-mnist', '--epochs', '1', '--hidden', hidden, '--out', join(dir, model), '--json']);
      expect(trained.code, trained.stderr).toBe(0);
      expect(trained.stderr).toMatch(/Read 2,000 training and 500 test images of fashion-mnist from /);
      expect(jsonLines(trained.stdout).at(-1)).toMatchObject({ stored_model: model, training_run: expect.any(Number) });
    }
    const evaluations: Record<string, { per_class: Array<{ recall: number; support: number }>; confusion: number[][] }> = {};
    for (const model of ['mlp', 'wide']) {
      const evaluated = await cli(['evaluate', join(dir, model), '--db', db, '--store', '--json']);
      expect(evaluated.code, evaluated.stderr).toBe(0);
      const [result, stored] = jsonLines(evaluated.stdout);
      expect(stored).toMatchObject({ stored: 500, model });
      evaluations[model] = result as (typeof evaluations)[string];
    }
    // The same predictions, made here by the engine, are the answer key for the queries.
    const predicted: Record<string, number[]> = {};
    for (const model of ['mlp', 'wide']) {
      const loaded = await loadModel(join(dir, model));
      const out = loaded.model.predict(fixture.test);
      predicted[model] = Array.from({ length: fixture.test.count }, (_, i) => {
        const row = out.data.subarray(i * 10, i * 10 + 10);
        return row.indexOf(Math.max(...row));
      });
      out.dispose();
    }
    const truth = Array.from(fixture.test.labels);
    const store: Store = await openStore(db);
    try {
      const [perClass, pairs, shirts, comparison, disagreements, runs] = await Promise.all(documentedQueries().map((sql) => store.query(sql)));
      // Accuracy per class = recall per class of `descent evaluate`.
      expect(perClass.rows.map((r) => Number(r[4]))).toEqual(evaluations.mlp.per_class.map((c) => Number(c.recall.toFixed(4))));
      expect(perClass.rows.map((r) => Number(r[3]))).toEqual(evaluations.mlp.confusion.map((row, c) => row[c]));
      // The most confused pairs are the largest off-diagonal cells of the confusion matrix.
      const cells = evaluations.mlp.confusion.flatMap((row, t) => row.map((n, p) => ({ t, p, n }))).filter((c) => c.t !== c.p && c.n > 0).map((c) => c.n).sort((a, b) => b - a);
      expect(pairs.rows.map((r) => Number(r[2]))).toEqual(cells.slice(0, 10));
      // The misclassified shirts, and what they were taken for.
      const wrongShirts = truth.flatMap((label, i) => (label === 6 && predicted.mlp[i] !== 6 ? [i] : []));
      expect(shirts.rows.map((r) => Number(r[0])).sort((a, b) => a - b)).toEqual(wrongShirts.slice(0, 20).length === wrongShirts.length ? wrongShirts : expect.any(Array));
      expect(shirts.rows.length).toBe(Math.min(20, wrongShirts.length));
      for (const row of shirts.rows) expect(row[1]).toBe(fixture.classNames[predicted.mlp[Number(row[0])]]);
      // How the two models differ.
      const count = (f: (a: boolean, b: boolean) => boolean) => truth.filter((t, i) => f(predicted.mlp[i] === t, predicted.wide[i] === t)).length;
      expect(comparison.rows[0].map(Number)).toEqual([count((a, b) => a && b), count((a, b) => a && !b), count((a, b) => !a && b), count((a, b) => !a && !b)]);
      const differ = truth.flatMap((_, i) => (predicted.mlp[i] !== predicted.wide[i] ? [i] : [])).slice(0, 20);
      expect(disagreements.rows.map((r) => Number(r[0]))).toEqual(differ);
      expect(runs.rows.map((r) => [r[0], r[1], Number(r[2])])).toEqual([['mlp', 'complete', 1], ['wide', 'complete', 1]]);
    } finally {
      await store.close();
    }
    if (name === 'sqlite') {
      const predictedOnce = await cli(['predict', join(dir, 'mlp'), '--index', '3', '7', '--data', FIXTURE, '--db', db, '--store']);
      expect(predictedOnce.code, predictedOnce.stderr).toBe(0);
      const rows = await cli(['db', 'query', "SELECT p.input, i.position, p.true_label FROM predictions p JOIN images i ON i.id = p.image_id WHERE p.origin = 'predict' ORDER BY p.id", '--db', db, '--csv']);
      expect(rows.stdout).toBe(`input,position,true_label\ntest[3],3,${truth[3]}\ntest[7],7,${truth[7]}\n`);
      const report = await cli(['report', '--db', db, '--model', 'mlp', '--out', join(dir, 'report')]);
      expect(report.code, report.stderr).toBe(0);
      const html = readFileSync(join(dir, 'report', 'report.html'), 'utf8');
      const right = truth.filter((t, i) => predicted.mlp[i] === t).length;
      expect(html).toContain(`(${right} of 500 images)`);
    }
  });

  it('records a run from its start: interrupted by Ctrl-C, resumed without --db into the same row, failed when no finite model is left', async () => {
    const run = async (id: number) => {
      const store = await openStore(db);
      try {
        const [row] = await store.driver.all<Record<string, unknown>>('SELECT status, history, epochs_done, model_id, message, finished_at FROM training_runs WHERE id = ?', [id]);
        const history = (typeof row.history === 'string' ? JSON.parse(row.history) : row.history) as { epoch: number[] };
        const [{ n }] = await store.driver.all<{ n: number }>('SELECT COUNT(*) AS n FROM training_runs');
        return { ...row, epochs: history.epoch, runs: Number(n) };
      } finally {
        await store.close();
      }
    };
    // Batches of 4: an epoch of the fixture is 500 steps, so Ctrl-C lands inside one.
    const out = join(dir, 'stopped');
    const started = startCli(['train', '--db', db, '--dataset', 'fashion-mnist', '--epochs', '30', '--batch-size', '4', '--hidden', '16', '--out', out, '--json']);
    await waitForOutput(started.child, started.stdout, (stdout) => jsonLines(stdout).some((line) => 'epoch' in line));
    started.child.kill('SIGINT');
    const stopped = await started.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    const metadata = (await loadModel(out)).metadata!;
    const id = metadata.hyperparameters!.trainingRun as number;
    expect(stopped.stderr).toContain(`Recorded training run ${id} as interrupted in `);
    const interrupted = await run(id);
    expect(interrupted).toMatchObject({ status: 'interrupted', model_id: null, runs: 3 });
    expect(Number(interrupted.epochs_done)).toBe(metadata.epochsCompleted);
    expect(interrupted.epochs).toEqual(metadata.history!.epoch);
    expect(interrupted.epochs.length).toBeGreaterThanOrEqual(1);
    expect(interrupted.message).toMatch(/^interrupted (in epoch \d+\/30 after batch \d+\/500|after epoch \d+\/30); resume with: descent train --resume /);
    expect(interrupted.finished_at).not.toBeNull();

    // Resumed without --db: the same store, the same row. A MariaDB password is never saved in the folder.
    const resume = ['train', '--resume', out, '--epochs', String(metadata.epochsCompleted! + 1), '--json'];
    const env: Record<string, string> = {};
    if (name === 'mariadb') {
      const password = all.server().password;
      expect(readFileSync(join(out, 'descent-training.json'), 'utf8')).not.toContain(password);
      const refused = await cli(resume);
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(/^descent: --resume .*stopped: the run records into mariadb:\/\/descent:\*\*\*@127\.0\.0\.1:\d+\/t\d+, whose password is not saved; pass --db with the full URL, or set DESCENT_DB_PASSWORD\n$/);
      env.DESCENT_DB_PASSWORD = password;
    }
    const resumed = await cli(resume, { env });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(jsonLines(resumed.stdout).at(-1)).toMatchObject({ stored_model: 'stopped', training_run: id });
    const completed = await run(id);
    expect(completed).toMatchObject({ status: 'complete', message: null, runs: 3 });
    expect(completed.model_id).not.toBeNull();
    expect(completed.epochs).toEqual(Array.from({ length: metadata.epochsCompleted! + 1 }, (_, e) => e));
    expect(completed.finished_at).not.toBeNull();

    // A run that ends without a finite model is 'failed', with the error, not left 'running'.
    const diverged = await cli(['train', '--db', db, '--dataset', 'fashion-mnist', '--epochs', '2', '--hidden', '16', '--optimizer', 'sgd', '--lr', '1e30', '--out', join(dir, 'diverged')]);
    expect(diverged.code).toBe(1);
    const failed = await run(id + 1);
    expect(failed).toMatchObject({ status: 'failed', model_id: null, runs: 4 });
    expect(failed.message).toMatch(/^no finite model to save: the loss became NaN in epoch 1/);
    expect(failed.finished_at).not.toBeNull();
    // docs/sql.md's query of the runs that ended without a model finds it.
    const store = await openStore(db);
    try {
      const withoutModel = await store.query(documentedQueries()[6]);
      expect(withoutModel.rows.map((r) => [Number(r[0]), r[1], Number(r[2])])).toEqual([[id + 1, 'failed', 0]]);
    } finally {
      await store.close();
    }
  });

  it('refuses bad input in one line, exit 1, and writes nothing', async () => {
    oneLineError(await cli(['db', 'query', 'SELECT * FROM images WHERE ORDER', '--db', db]), /^descent: the query (does not run|failed): .*syntax/);
    oneLineError(await cli(['db', 'query', 'DROP TABLE images', '--db', db]), /only reads|runs only statements that read/);
    if (name === 'mariadb') {
      const server = all.server();
      const wrong = `mariadb://descent:wrong-password@127.0.0.1:${server.port}/t1`;
      const denied = await cli(['db', 'list', '--db', wrong]);
      oneLineError(denied, /--db mariadb:\/\/descent:\*\*\*@127\.0\.0\.1:\d+\/t1: access denied/);
      expect(denied.stderr).not.toContain('wrong-password');
      oneLineError(await cli(['db', 'list', '--db', `mariadb://descent:x@127.0.0.1:1/t1`]), /cannot connect \(connection refused\)/);
      oneLineError(await cli(['db', 'init', '--db', `mariadb://descent:${server.password}@127.0.0.1:${server.port}/absent`]), /access denied|Unknown database/);
    } else {
      const text = join(dir, 'notes.txt');
      writeFileSync(text, 'these are notes, not a database\n'.repeat(100));
      oneLineError(await cli(['db', 'list', '--db', text]), /notes\.txt: is not a SQLite database/);
      oneLineError(await cli(['db', 'list', '--db', join(dir, 'absent.db')]), /absent\.db: no such database; create it with `descent db init/);
      expect(existsSync(join(dir, 'absent.db'))).toBe(false);
      oneLineError(await cli(['train', '--db', db, '--dataset', 'nope', '--epochs', '1']), /--dataset nope: no such dataset in .*; the store holds: fashion-mnist/);
      oneLineError(await cli(['db', 'export', '--dataset', 'nope', '--out', join(dir, 'x'), '--db', db]), /--dataset nope: no such dataset/);
      expect(existsSync(join(dir, 'x'))).toBe(false);
    }
    // A database of a newer schema is refused, not changed.
    const newer = await all[name].fresh();
    const store = await openStore(newer, { create: true });
    await store.driver.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [99, 'future', '2030-01-01 00:00:00.000']);
    await store.close();
    oneLineError(await cli(['db', 'import', 'fashion-mnist', '--data', FIXTURE, '--db', newer]), new RegExp(`schema version 99, newer than this descent knows \\(${LATEST_VERSION}\\)`));
  });

  it('leaves an import complete or absent after kill -9', async () => {
    // A set big enough to kill it half-way: 30,000 random images.
    const data = join(tmp.dir, 'big');
    if (!existsSync(data)) {
      mkdirSync(data);
      const count = 30_000;
      const pixels = new Uint8Array(count * 784);
      for (let i = 0, x = 12345; i < pixels.length; i++) pixels[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
      writeFileSync(join(data, 'train-images-idx3-ubyte'), encodeIdxImages({ count, rows: 28, cols: 28, pixels }));
      writeFileSync(join(data, 'train-labels-idx1-ubyte'), encodeIdxLabels(labels));
      writeFileSync(join(data, 't10k-images-idx3-ubyte'), encodeIdxImages({ count: 100, rows: 28, cols: 28, pixels: pixels.subarray(0, 78_400) }));
      writeFileSync(join(data, 't10k-labels-idx1-ubyte'), encodeIdxLabels(labels.subarray(0, 100)));
    }
    const target = await all[name].fresh();
    await (await openStore(target, { create: true })).close();
    const stall = await stallImport(name, target, 25_000);
    const run = startCli(['db', 'import', 'fashion-mnist', '--data', data, '--as', 'big', '--db', target]);
    let exited = false;
    run.child.once('exit', () => (exited = true));
    const check = async () => {
      const store = await openStore(target);
      try {
        const images = await store.query('SELECT COUNT(*) FROM images');
        return { datasets: (await store.listDatasets()).map((d) => d.name), images: Number(images.rows[0][0]) };
      } finally {
        await store.close();
      }
    };
    try {
      while (!exited && !(await stall.reached())) await new Promise((r) => setTimeout(r, 25));
      expect(exited, 'the import finished before it could be killed').toBe(false);
      run.child.kill('SIGKILL');
      const killed = await run.done;
      expect(killed.signal).toBe('SIGKILL');
      expect(await check()).toEqual({ datasets: [], images: 0 });
    } finally {
      run.child.kill('SIGKILL');
      await stall.release();
    }
    const again = await cli(['db', 'import', 'fashion-mnist', '--data', data, '--as', 'big', '--db', target]);
    expect(again.code, again.stderr).toBe(0);
    expect(await check()).toEqual({ datasets: ['big'], images: 30_100 });
  });
});

describe('descent db import-images', () => {
  it('imports a folder and a zip of labelled photos as predict sees them, skips what is not an image, refuses a corrupt one', async () => {
    const { default: sharp } = await import('sharp');
    const { prepareImage } = await import('../packages/cli/dist/image.js');
    const dir = join(tmp.dir, 'photos');
    const files: Record<string, Buffer> = {};
    for (const [label, index] of [['Bag', 0], ['Bag', 1], ['Shirt', 2], ['Sneaker', 3]] as const) {
      // Dark items on white, 56×56: what a photo of a product looks like, not what the model sees.
      const pixels = Buffer.from(fixture.test.images.subarray(index * 784, (index + 1) * 784)).map((v) => 255 - v);
      const image = sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } }).resize(56, 56);
      files[`${label}/${index}.${index === 3 ? 'jpg' : 'png'}`] = await (index === 3 ? image.jpeg() : image.png()).toBuffer();
    }
    for (const [name, bytes] of Object.entries(files)) {
      mkdirSync(join(dir, name.split('/')[0]), { recursive: true });
      writeFileSync(join(dir, name), bytes);
    }
    writeFileSync(join(dir, 'Bag', 'notes.txt'), 'not an image');
    const db = join(tmp.dir, 'photos.db');
    const imported = await cli(['db', 'import-images', dir, '--dataset', 'mine', '--db', db]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/Imported 4 images into dataset mine \(4 train, 0 test; new classes: Bag, Shirt, Sneaker\)/);
    expect(imported.stdout).toMatch(/Skipped 1: 1 not an image file \(\.txt\)/);
    const stored = await openStore(db);
    try {
      const train = await stored.loadSplit('mine', 'train');
      const names = Object.keys(files).sort();
      for (const [i, name] of names.entries()) {
        const expected = (await prepareImage(join(dir, name))).pixels;
        expect(Buffer.from(train.images.subarray(i * 784, (i + 1) * 784)).equals(Buffer.from(expected)), name).toBe(true);
      }
      expect(Array.from(train.labels)).toEqual([0, 0, 1, 2]);
    } finally {
      await stored.close();
    }
    // The same photos as a zip of train/ and test/ folders: new split, same pixels skipped as duplicates.
    const { makeZip } = await import('../packages/store/test/zip.js');
    const zip = join(tmp.dir, 'photos.zip');
    writeFileSync(zip, makeZip(Object.entries(files).map(([name, data], i) => ({ name: `photos/${i < 2 ? 'train' : 'test'}/${name}`, data }))));
    const fromZip = await cli(['db', 'import-images', zip, '--dataset', 'mine', '--db', db, '--json']);
    expect(jsonLines(fromZip.stdout)[0]).toMatchObject({ train: 0, test: 0, duplicates: 4 });
    // A corrupt image stops the import: one line naming it, exit 1, nothing written.
    writeFileSync(join(dir, 'Shirt', 'broken.png'), Buffer.concat([files['Bag/0.png'].subarray(0, 40), Buffer.alloc(40)]));
    const broken = await cli(['db', 'import-images', dir, '--dataset', 'other', '--db', db]);
    oneLineError(broken, /Shirt\/broken\.png: cannot decode the image/);
    const skipped = await cli(['db', 'import-images', dir, '--dataset', 'other', '--db', db, '--skip-bad', '--json']);
    expect(jsonLines(skipped.stdout)[0]).toMatchObject({ train: 4, skipped: expect.arrayContaining([{ file: 'Shirt/broken.png', reason: 'cannot be decoded' }]) });
    const empty = join(tmp.dir, 'empty');
    mkdirSync(empty);
    oneLineError(await cli(['db', 'import-images', empty, '--dataset', 'none', '--db', db]), /empty: holds no images in label folders/);
    writeFileSync(join(tmp.dir, 'bad.zip'), Buffer.from('PK\u0003\u0004 not really a zip'));
    oneLineError(await cli(['db', 'import-images', join(tmp.dir, 'bad.zip'), '--dataset', 'none', '--db', db]), /bad\.zip: is not a valid zip file/);
    const list = jsonLines((await cli(['db', 'list', '--db', db, '--json'])).stdout).filter((r) => 'dataset' in r).map((r) => r.dataset);
    expect(list).toEqual(['mine', 'other']);
  });
});
