/**
 * The store: datasets of labelled images, trained models, training runs and predictions, in SQLite
 * or MariaDB behind one async API.
 *
 *   const store = await openStore('descent.db', { create: true });      // or 'mariadb://user:pass@host/db'
 *   await store.importImages({ dataset: 'fashion-mnist', classNames, height: 28, width: 28, kind: 'idx', source, splits });
 *   const train = await store.loadSplit('fashion-mnist', 'train');      // an ImageDataset: bytes, labels
 *   await store.close();
 *
 * Every write that belongs together is one transaction: an import is whole or absent, even after
 * `kill -9`. Every name and value goes to the database as a parameter.
 */
import { createHash, hash } from 'node:crypto';
import { UsageError, type ImageDataset } from '@descent/engine';
import { StoreError, timestamp, type Driver, type Executor, type QueryResult, type SqlValue } from './driver.js';
import { parseLocation, type StoreLocation } from './location.js';
import { LATEST_VERSION, MIGRATIONS, migrationsTable } from './migrations.js';

export type Split = 'train' | 'test';
export const SPLITS: readonly Split[] = ['train', 'test'];

export interface OpenOptions {
  /** Create the SQLite file if it does not exist (db init, imports). Default false. */
  create?: boolean;
  /** Apply missing migrations. Default true; false for read-only use. */
  migrate?: boolean;
  /** Flag that named the database, for messages. Default "--db". */
  flag?: string;
}

/** A dataset name: letters, digits, '.', '_' and '-', starting with a letter or digit. */
export const DATASET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface DatasetSummary {
  id: number;
  name: string;
  height: number;
  width: number;
  classNames: string[];
  /** Images per class (index = label), per split. */
  counts: Record<Split, number[]>;
  createdAt: string;
}

export interface ImportSplit {
  split: Split;
  /** count × height × width bytes. */
  images: Uint8Array;
  /** One label per image, an index into the request's classNames. */
  labels: Uint8Array;
  /** Where each image came from (a file, "train-images-idx3-ubyte#12"). */
  source(index: number): string;
}

export interface ImportRequest {
  dataset: string;
  /** The names of the labels used in `splits`; mapped by name onto an existing dataset's classes. */
  classNames: readonly string[];
  height: number;
  width: number;
  /** What was imported: 'idx', 'folder', 'zip'. */
  kind: string;
  /** Where it came from, for the imports table. */
  source: string;
  splits: readonly ImportSplit[];
  /** Skip images whose pixels are already in the dataset (or earlier in this import). */
  skipDuplicates: boolean;
  /** Called as rows are written: images done, images in all. */
  onProgress?(done: number, total: number): void;
}

export interface ImportResult {
  datasetId: number;
  /** True when the same content had been imported before: nothing was written. */
  alreadyImported: boolean;
  added: Record<Split, number>;
  /** Images skipped as duplicates. */
  duplicates: number;
  /** Classes the dataset gained. */
  newClasses: string[];
}

/** A split read back: the images in their stored order, with their row ids. */
export interface StoredSplit extends ImageDataset {
  ids: Float64Array;
}

export interface ModelInput {
  name: string;
  /** The dataset it was trained on, when it is in the store. */
  dataset?: string | null;
  /** What it is, as JSON (the Keras model topology). */
  architecture: string;
  /** model.json and weights.bin as saved; descent-training.json when there is one. */
  modelJson: string;
  weights: Uint8Array;
  trainingJson?: string | null;
  /** Where the files were saved. */
  dir?: string | null;
  testLoss?: number | null;
  testAccuracy?: number | null;
  createdBy?: string | null;
}

export interface ModelSummary {
  id: number;
  name: string;
  dataset: string | null;
  dir: string | null;
  testLoss: number | null;
  testAccuracy: number | null;
  createdAt: string;
  createdBy: string | null;
  predictions: number;
}

export interface ModelRecord extends ModelSummary {
  architecture: string;
  modelJson: string;
  weights: Uint8Array;
  trainingJson: string | null;
  filesHash: string;
}

export type RunStatus = 'queued' | 'running' | 'complete' | 'stopped-early' | 'terminated-nan' | 'interrupted' | 'failed' | 'cancelled';

export interface RunUpdate {
  status?: RunStatus;
  history?: unknown;
  epochsDone?: number;
  modelId?: number | null;
  message?: string | null;
  /** true: stamp finished_at now; false: clear it (a resumed run is running again). */
  finished?: boolean;
}

export interface PredictionInput {
  /** The stored image, when the input is one. */
  imageId?: number | null;
  /** Otherwise the bytes the model saw (height × width). */
  pixels?: Uint8Array | null;
  /** What was classified: a file name, "test[12]". */
  input: string;
  probabilities: ArrayLike<number>;
  trueLabel?: number | null;
}

export interface PredictionBatch {
  modelId: number;
  /** Who asked: 'evaluate', 'predict', 'api'. */
  origin: string;
  createdBy?: string | null;
  /** Delete this model's earlier predictions of the same origin first (evaluate replaces its last run). */
  replace?: boolean;
  predictions: readonly PredictionInput[];
}

const IMPORT_CHUNK = 1000;
const MAX_QUERY_ROWS = 1_000_000;

export async function openStore(value: string | StoreLocation, options: OpenOptions = {}): Promise<Store> {
  const location = typeof value === 'string' ? parseLocation(value, { flag: options.flag }) : value;
  // Each driver (and its native module or connector) loads only when a database of its kind is opened.
  const driver = location.kind === 'sqlite'
    ? (await import('./sqlite.js')).openSqlite(location, { create: options.create === true })
    : await (await import('./mariadb.js')).openMariadb(location);
  const store = new Store(driver, location);
  try {
    if (options.migrate === false) await store.checkVersion();
    else await store.migrate();
  } catch (err) {
    await driver.close();
    throw err;
  }
  return store;
}

export class Store {
  constructor(readonly driver: Driver, readonly location: StoreLocation) {}

  get kind(): 'sqlite' | 'mariadb' {
    return this.location.kind;
  }

  /** The database, for messages (no password). */
  get display(): string {
    return this.location.display;
  }

  async close(): Promise<void> {
    await this.driver.close();
  }

  // ---- schema ----

  /** The highest migration applied, 0 for an empty database. */
  async schemaVersion(): Promise<number> {
    const tables = await this.tableNames();
    if (!tables.includes('schema_migrations')) return 0;
    const [row] = await this.driver.all<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    return Number(row?.v ?? 0);
  }

  async checkVersion(): Promise<number> {
    const version = await this.schemaVersion();
    if (version > LATEST_VERSION) {
      throw new StoreError(`--db ${this.display}: the database has schema version ${version}, newer than this descent knows (${LATEST_VERSION}); use a newer descent`);
    }
    return version;
  }

  /** Applies the migrations the database lacks; returns the versions applied. */
  async migrate(): Promise<number[]> {
    const t = this.driver.dialect;
    return this.driver.exclusive(async () => {
      if (t.kind === 'sqlite') {
        return this.driver.transaction(async (tx) => {
          await tx.run(migrationsTable(t));
          const missing = await this.missingMigrations(tx);
          for (const migration of missing) {
            for (const statement of migration.up(t)) await tx.run(statement);
            await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [migration.version, migration.name, timestamp()]);
          }
          return missing.map((m) => m.version);
        });
      }
      // MariaDB: DDL commits by itself. A migration interrupted half-way is finished on the next
      // run: objects it already created are taken as done.
      await this.driver.run(migrationsTable(t));
      const missing = await this.missingMigrations(this.driver);
      for (const migration of missing) {
        for (const statement of migration.up(t)) {
          try {
            await this.driver.run(statement);
          } catch (err) {
            if (!/already exists|Duplicate key name/i.test((err as Error).message)) throw err;
          }
        }
        await this.driver.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [migration.version, migration.name, timestamp()]);
      }
      return missing.map((m) => m.version);
    });
  }

  private async missingMigrations(executor: Executor) {
    const rows = await executor.all<{ version: number }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((r) => Number(r.version)));
    const newest = Math.max(0, ...applied);
    if (newest > LATEST_VERSION) {
      throw new StoreError(`--db ${this.display}: the database has schema version ${newest}, newer than this descent knows (${LATEST_VERSION}); use a newer descent`);
    }
    return MIGRATIONS.filter((m) => !applied.has(m.version));
  }

  private async tableNames(): Promise<string[]> {
    const rows = this.driver.dialect.kind === 'sqlite'
      ? await this.driver.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      : await this.driver.all<{ name: string }>('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()');
    return rows.map((r) => r.name);
  }

  // ---- datasets and images ----

  async listDatasets(): Promise<DatasetSummary[]> {
    return this.datasets();
  }

  /** All datasets, or the one named. */
  private async datasets(name?: string): Promise<DatasetSummary[]> {
    const where = name === undefined ? '' : ' WHERE d.name = ?';
    const params = name === undefined ? [] : [name];
    const datasets = await this.driver.all<{ id: number; name: string; height: number; width: number; created_at: string }>(
      `SELECT id, name, height, width, created_at FROM datasets d${where} ORDER BY name`, params,
    );
    if (datasets.length === 0) return [];
    const classes = await this.driver.all<{ dataset_id: number; label: number; name: string }>(
      `SELECT c.dataset_id, c.label, c.name FROM classes c JOIN datasets d ON d.id = c.dataset_id${where} ORDER BY c.dataset_id, c.label`, params,
    );
    const counts = await this.driver.all<{ dataset_id: number; split: Split; label: number; n: number }>(
      `SELECT i.dataset_id, i.split, i.label, COUNT(*) AS n FROM images i JOIN datasets d ON d.id = i.dataset_id${where} GROUP BY i.dataset_id, i.split, i.label`, params,
    );
    return datasets.map((d) => {
      const classNames = classes.filter((c) => c.dataset_id === d.id).map((c) => c.name);
      const perSplit = { train: classNames.map(() => 0), test: classNames.map(() => 0) };
      for (const c of counts) if (c.dataset_id === d.id) perSplit[c.split][c.label] = Number(c.n);
      return { id: Number(d.id), name: d.name, height: d.height, width: d.width, classNames, counts: perSplit, createdAt: String(d.created_at) };
    });
  }

  async getDataset(name: string): Promise<DatasetSummary | undefined> {
    return (await this.datasets(name))[0];
  }

  /** The dataset, or a one-line error that lists the ones there are. */
  async requireDataset(name: string, flag = '--dataset'): Promise<DatasetSummary> {
    const found = await this.getDataset(name);
    if (found) return found;
    const all = await this.listDatasets();
    const known = all.length ? `; the store holds: ${all.map((d) => d.name).join(', ')}` : '; the store holds no datasets yet (descent db import …)';
    throw new StoreError(`${flag} ${name}: no such dataset in ${this.display}${known}`);
  }

  /**
   * Adds images to a dataset (created if new), in one transaction. Importing the same content a
   * second time writes nothing and says so.
   */
  async importImages(request: ImportRequest): Promise<ImportResult> {
    checkDatasetName(request.dataset);
    const size = request.height * request.width;
    let total = 0;
    for (const part of request.splits) {
      if (part.images.length !== part.labels.length * size) throw new RangeError(`importImages: ${part.images.length} bytes for ${part.labels.length} images of ${request.height}×${request.width}`);
      if (part.labels.some((label) => label >= request.classNames.length)) throw new RangeError('importImages: a label is outside classNames');
      total += part.labels.length;
    }
    const hashes = request.splits.map((part) => Array.from({ length: part.labels.length }, (_, i) => sha256(part.images.subarray(i * size, (i + 1) * size))));
    const importHash = hashImport(request, hashes);

    return this.driver.transaction(async (tx) => {
      const now = timestamp();
      const existing = await tx.all<{ id: number; height: number; width: number }>('SELECT id, height, width FROM datasets WHERE name = ?', [request.dataset]);
      let datasetId: number;
      if (existing.length === 0) {
        datasetId = (await tx.run('INSERT INTO datasets (name, height, width, created_at) VALUES (?, ?, ?, ?)', [request.dataset, request.height, request.width, now])).lastId;
      } else {
        datasetId = Number(existing[0].id);
        if (existing[0].height !== request.height || existing[0].width !== request.width) {
          throw new UsageError(`--dataset ${request.dataset}: holds ${existing[0].height}×${existing[0].width} images, these are ${request.height}×${request.width}`);
        }
        const seen = await tx.all<{ id: number }>('SELECT id FROM imports WHERE dataset_id = ? AND content_hash = ?', [datasetId, importHash]);
        if (seen.length > 0) return { datasetId, alreadyImported: true, added: { train: 0, test: 0 }, duplicates: 0, newClasses: [] };
      }

      // Labels: the dataset's own, by class name; new names become new classes.
      const classes = await tx.all<{ label: number; name: string }>('SELECT label, name FROM classes WHERE dataset_id = ? ORDER BY label', [datasetId]);
      const labelOf = new Map(classes.map((c) => [c.name, Number(c.label)]));
      const newClasses: string[] = [];
      let next = classes.length === 0 ? 0 : Math.max(...classes.map((c) => Number(c.label))) + 1;
      const used = new Set(request.splits.flatMap((part) => [...new Set(part.labels)]));
      for (const [index, name] of request.classNames.entries()) {
        if (labelOf.has(name) || (existing.length > 0 && !used.has(index))) continue;
        labelOf.set(name, next);
        await tx.run('INSERT INTO classes (dataset_id, label, name) VALUES (?, ?, ?)', [datasetId, next, name]);
        newClasses.push(name);
        next += 1;
      }
      const remap = request.classNames.map((name) => labelOf.get(name) ?? -1);

      const importId = (await tx.run(
        'INSERT INTO imports (dataset_id, kind, source, content_hash, images, skipped, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [datasetId, request.kind, request.source.slice(0, 1000), importHash, 0, 0, now],
      )).lastId;

      const known = new Set<string>();
      if (request.skipDuplicates) {
        await tx.each('SELECT content_hash FROM images WHERE dataset_id = ?', [datasetId], (row) => known.add(row[0] as string));
      }
      const added = { train: 0, test: 0 };
      let duplicates = 0;
      let done = 0;
      const insert = 'INSERT INTO images (dataset_id, split, position, label, pixels, source, content_hash, import_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';
      for (const [p, part] of request.splits.entries()) {
        const [last] = await tx.all<{ p: number | null }>('SELECT MAX(position) AS p FROM images WHERE dataset_id = ? AND split = ?', [datasetId, part.split]);
        let position = last?.p === null || last?.p === undefined ? 0 : Number(last.p) + 1;
        let rows: SqlValue[][] = [];
        for (let i = 0; i < part.labels.length; i++) {
          const hash = hashes[p][i];
          if (request.skipDuplicates) {
            if (known.has(hash)) {
              duplicates += 1;
              continue;
            }
            known.add(hash);
          }
          rows.push([datasetId, part.split, position++, remap[part.labels[i]], part.images.subarray(i * size, (i + 1) * size), part.source(i).slice(0, 1000), hash, importId]);
          if (rows.length === IMPORT_CHUNK) {
            await tx.runMany(insert, rows);
            done += rows.length;
            added[part.split] += rows.length;
            rows = [];
            request.onProgress?.(done + duplicates, total);
          }
        }
        await tx.runMany(insert, rows);
        done += rows.length;
        added[part.split] += rows.length;
        request.onProgress?.(done + duplicates, total);
      }
      await tx.run('UPDATE imports SET images = ?, skipped = ? WHERE id = ?', [done, duplicates, importId]);
      return { datasetId, alreadyImported: false, added, duplicates, newClasses };
    });
  }

  /** One split's images, in stored order, straight into one byte buffer. */
  async loadSplit(name: string, split: Split): Promise<StoredSplit> {
    const dataset = await this.requireDataset(name);
    const size = dataset.height * dataset.width;
    const count = dataset.counts[split].reduce((a, b) => a + b, 0);
    const images = new Uint8Array(count * size);
    const labels = new Uint8Array(count);
    const ids = new Float64Array(count);
    let i = 0;
    await this.driver.each('SELECT id, label, pixels FROM images WHERE dataset_id = ? AND split = ? ORDER BY position', [dataset.id, split], (row) => {
      const pixels = row[2] as Uint8Array;
      if (i >= count || pixels.length !== size) {
        throw new StoreError(`--db ${this.display}: dataset ${name} changed while it was read, or image ${String(row[0])} holds ${pixels.length} bytes instead of ${size}`);
      }
      images.set(pixels, i * size);
      labels[i] = Number(row[1]);
      ids[i] = Number(row[0]);
      i++;
    });
    if (i !== count) throw new StoreError(`--db ${this.display}: dataset ${name} changed while it was read`);
    return { images, labels, ids, count, rows: dataset.height, cols: dataset.width, classNames: [...dataset.classNames] };
  }

  /** Ids of a dataset's images by content hash (the first one of identical images). */
  async imageIdsByHash(dataset: string, split?: Split): Promise<Map<string, number>> {
    const { id } = await this.requireDataset(dataset);
    const ids = new Map<string, number>();
    const sql = `SELECT content_hash, id FROM images WHERE dataset_id = ?${split ? ' AND split = ?' : ''} ORDER BY id`;
    await this.driver.each(sql, split ? [id, split] : [id], (row) => {
      if (!ids.has(row[0] as string)) ids.set(row[0] as string, Number(row[1]));
    });
    return ids;
  }

  // ---- models ----

  /** Records a model; a name already taken gets a suffix (-2, -3, …). Returns its id and name. Pass `tx` to write it within a transaction of your own. */
  async saveModel(model: ModelInput, { tx: outer }: { tx?: Executor } = {}): Promise<{ id: number; name: string }> {
    const filesHash = modelFilesHash(model.modelJson, model.weights);
    // Inside the caller's transaction when given one (the server saves a job's model and finishes the job together).
    const within = <T>(work: (tx: Executor) => Promise<T>): Promise<T> => (outer ? work(outer) : this.driver.transaction(work));
    return within(async (tx) => {
      const datasetId = model.dataset ? (await tx.all<{ id: number }>('SELECT id FROM datasets WHERE name = ?', [model.dataset]))[0]?.id ?? null : null;
      const name = await uniqueName(tx, model.name);
      const { lastId } = await tx.run(
        `INSERT INTO models (name, dataset_id, architecture, model_json, weights, training_json, files_hash, dir, test_loss, test_accuracy, created_at, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [name, datasetId, model.architecture, model.modelJson, model.weights, model.trainingJson ?? null, filesHash, model.dir ?? null,
          finiteOrNull(model.testLoss), finiteOrNull(model.testAccuracy), timestamp(), model.createdBy ?? null],
      );
      return { id: lastId, name };
    });
  }

  /** A model whose files are these exact bytes, if one was recorded. */
  async findModelByFiles(modelJson: string, weights: Uint8Array): Promise<ModelSummary | undefined> {
    const rows = await this.driver.all<{ name: string }>('SELECT name FROM models WHERE files_hash = ? ORDER BY id', [modelFilesHash(modelJson, weights)]);
    return rows.length ? (await this.listModels()).find((m) => m.name === rows[0].name) : undefined;
  }

  async listModels(): Promise<ModelSummary[]> {
    const rows = await this.driver.all<Record<string, unknown>>(
      `SELECT m.id, m.name, d.name AS dataset, m.dir, m.test_loss, m.test_accuracy, m.created_at, m.created_by,
              (SELECT COUNT(*) FROM predictions p WHERE p.model_id = m.id) AS predictions
       FROM models m LEFT JOIN datasets d ON d.id = m.dataset_id ORDER BY m.id`,
    );
    return rows.map(modelSummary);
  }

  async getModel(name: string): Promise<ModelRecord | undefined> {
    const rows = await this.driver.all<Record<string, unknown>>(
      `SELECT m.id, m.name, d.name AS dataset, m.dir, m.test_loss, m.test_accuracy, m.created_at, m.created_by,
              (SELECT COUNT(*) FROM predictions p WHERE p.model_id = m.id) AS predictions,
              m.architecture, m.model_json, m.weights, m.training_json, m.files_hash
       FROM models m LEFT JOIN datasets d ON d.id = m.dataset_id WHERE m.name = ?`,
      [name],
    );
    if (rows.length === 0) return undefined;
    const row = rows[0];
    return {
      ...modelSummary(row),
      architecture: String(row.architecture),
      modelJson: String(row.model_json),
      weights: new Uint8Array(row.weights as Uint8Array),
      trainingJson: row.training_json === null ? null : String(row.training_json),
      filesHash: String(row.files_hash),
    };
  }

  async requireModel(name: string, flag = '--model'): Promise<ModelRecord> {
    const model = await this.getModel(name);
    if (model) return model;
    const all = await this.listModels();
    const known = all.length ? `; the store holds: ${all.slice(-10).map((m) => m.name).join(', ')}${all.length > 10 ? ', …' : ''}` : '; the store holds no models yet (descent train --db … records them)';
    throw new StoreError(`${flag} ${name}: no such model in ${this.display}${known}`);
  }

  // ---- training runs ----

  async createRun(run: { dataset?: string | null; settings: unknown; status?: RunStatus; createdBy?: string | null }): Promise<number> {
    const datasetId = run.dataset ? (await this.driver.all<{ id: number }>('SELECT id FROM datasets WHERE name = ?', [run.dataset]))[0]?.id ?? null : null;
    const { lastId } = await this.driver.run(
      'INSERT INTO training_runs (dataset_id, status, settings, history, epochs_done, started_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [datasetId, run.status ?? 'running', JSON.stringify(run.settings), '{}', 0, timestamp(), run.createdBy ?? null],
    );
    return lastId;
  }

  /** A run's status, or undefined when the store holds no run with that id. */
  async runStatus(id: number): Promise<RunStatus | undefined> {
    const rows = await this.driver.all<{ status: string }>('SELECT status FROM training_runs WHERE id = ?', [id]);
    return rows[0]?.status as RunStatus | undefined;
  }

  async updateRun(id: number, update: RunUpdate): Promise<void> {
    const sets: string[] = [];
    const values: SqlValue[] = [];
    const set = (column: string, value: SqlValue) => {
      sets.push(`${column} = ?`);
      values.push(value);
    };
    if (update.status !== undefined) set('status', update.status);
    if (update.history !== undefined) set('history', JSON.stringify(update.history));
    if (update.epochsDone !== undefined) set('epochs_done', update.epochsDone);
    if (update.modelId !== undefined) set('model_id', update.modelId);
    if (update.message !== undefined) set('message', update.message === null ? null : update.message.slice(0, 1000));
    if (update.finished !== undefined) set('finished_at', update.finished ? timestamp() : null);
    if (sets.length === 0) return;
    await this.driver.run(`UPDATE training_runs SET ${sets.join(', ')} WHERE id = ?`, [...values, id]);
  }

  // ---- predictions ----

  /** Writes a batch of predictions in one transaction; returns how many earlier ones it replaced. */
  async savePredictions(batch: PredictionBatch): Promise<{ saved: number; replaced: number }> {
    const now = timestamp();
    const rows = batch.predictions.map((p): SqlValue[] => {
      // Exact: a float32 written as the double it is (fast, and it reads back to the same float32).
      const probabilities = Array.from(p.probabilities);
      let predicted = 0;
      for (let c = 1; c < probabilities.length; c++) if (probabilities[c] > probabilities[predicted]) predicted = c;
      return [batch.modelId, p.imageId ?? null, p.pixels ?? null, p.input.slice(0, 1000), predicted, probabilities[predicted] ?? 0,
        JSON.stringify(probabilities), p.trueLabel ?? null, batch.origin, now, batch.createdBy ?? null];
    });
    return this.driver.transaction(async (tx) => {
      const replaced = batch.replace ? (await tx.run('DELETE FROM predictions WHERE model_id = ? AND origin = ?', [batch.modelId, batch.origin])).changes : 0;
      for (let start = 0; start < rows.length; start += IMPORT_CHUNK) {
        await tx.runMany(
          `INSERT INTO predictions (model_id, image_id, pixels, input, predicted, confidence, probabilities, true_label, origin, created_at, created_by)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          rows.slice(start, start + IMPORT_CHUNK),
        );
      }
      return { saved: rows.length, replaced };
    });
  }

  /**
   * A model's stored test-set predictions (from `evaluate --store`), in the order they were made:
   * the images, their true labels, and the probabilities row after row.
   */
  async storedEvaluation(modelId: number): Promise<{ images: Uint8Array; labels: Uint8Array; probabilities: Float32Array; count: number } | undefined> {
    const pixels: Uint8Array[] = [];
    const labels: number[] = [];
    const probabilities: number[] = [];
    await this.driver.each(
      `SELECT COALESCE(i.pixels, p.pixels), p.true_label, p.probabilities FROM predictions p LEFT JOIN images i ON i.id = p.image_id
       WHERE p.model_id = ? AND p.origin = 'evaluate' AND p.true_label IS NOT NULL ORDER BY p.id`,
      [modelId],
      (row) => {
        pixels.push(new Uint8Array(row[0] as Uint8Array));
        labels.push(Number(row[1]));
        for (const value of JSON.parse(String(row[2])) as number[]) probabilities.push(value);
      },
    );
    if (pixels.length === 0) return undefined;
    const size = pixels[0].length;
    const images = new Uint8Array(pixels.length * size);
    pixels.forEach((p, i) => images.set(p.subarray(0, size), i * size));
    return { images, labels: Uint8Array.from(labels), probabilities: Float32Array.from(probabilities), count: pixels.length };
  }

  // ---- SQL ----

  /** Runs one read-only statement (anything that writes is refused); at most `maxRows` rows come back. */
  query(sql: string, { maxRows = MAX_QUERY_ROWS }: { maxRows?: number } = {}): Promise<QueryResult & { truncated: boolean }> {
    if (sql.trim() === '') throw new UsageError('the query is empty');
    return this.driver.readOnlyQuery(sql, maxRows);
  }
}

export function checkDatasetName(name: string, flag = '--dataset'): void {
  if (!DATASET_NAME.test(name)) {
    throw new UsageError(`${flag} ${JSON.stringify(name).slice(0, 120)}: a dataset name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

/** SHA-256 of some bytes, as 64 hex digits: an image's content hash. */
export function sha256(bytes: Uint8Array): string {
  return hash('sha256', bytes, 'hex');
}

/** Identifies an import's content (from its images' hashes): the same images with the same labels give the same hash. */
function hashImport(request: ImportRequest, imageHashes: readonly string[][]): string {
  const hash = createHash('sha256');
  hash.update(`${request.height}x${request.width}\n${JSON.stringify(request.classNames)}\n`);
  for (const [p, part] of request.splits.entries()) {
    hash.update(`${part.split} ${part.labels.length}\n`);
    hash.update(part.labels);
    hash.update(imageHashes[p].join(''));
  }
  return hash.digest('hex');
}

function modelFilesHash(modelJson: string, weights: Uint8Array): string {
  return createHash('sha256').update(modelJson).update('\0').update(weights).digest('hex');
}

async function uniqueName(tx: Executor, base: string): Promise<string> {
  const name = base.slice(0, 190);
  const taken = new Set((await tx.all<{ name: string }>("SELECT name FROM models WHERE name = ? OR name LIKE ? ESCAPE '!'", [name, `${name.replace(/[!%_]/g, '!$&')}-%`])).map((r) => r.name));
  if (!taken.has(name)) return name;
  for (let n = 2; ; n++) if (!taken.has(`${name}-${n}`)) return `${name}-${n}`;
}

function modelSummary(row: Record<string, unknown>): ModelSummary {
  const numberOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: Number(row.id),
    name: String(row.name),
    dataset: row.dataset === null || row.dataset === undefined ? null : String(row.dataset),
    dir: row.dir === null ? null : String(row.dir),
    testLoss: numberOrNull(row.test_loss),
    testAccuracy: numberOrNull(row.test_accuracy),
    createdAt: String(row.created_at),
    createdBy: row.created_by === null ? null : String(row.created_by),
    predictions: Number(row.predictions),
  };
}

function finiteOrNull(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
