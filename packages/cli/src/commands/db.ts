/**
 * `descent db`: the SQL store of images, models and predictions.
 *
 *   descent db init [--db URL]
 *   descent db import fashion-mnist|mnist [--data DIR] [--as NAME]
 *   descent db import-images DIR|FILE.zip --dataset NAME [--split train|test] [--skip-bad]
 *   descent db list
 *   descent db query "SELECT ..." [--json | --csv]
 *   descent db export --dataset NAME --out DIR [--gzip]
 *
 * --db is a SQLite file (default ./descent.db) or mariadb://user:pass@host:port/db.
 */
import { readdirSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import {
  DATASET_NAMES, UsageError, encodeIdxImages, encodeIdxLabels, type DatasetName,
} from '@descent/engine';
import {
  LATEST_VERSION, SPLITS, checkDatasetName, readLabelledImages, summarise, type ImportSplit, type Split, type Store,
} from '@descent/store';
import { checkWritableFolder, dataOption, jsonOption, readDataset, statOrUndefined } from '../common.js';
import { positiveInteger } from '../flags.js';
import { IMAGE_SIZE, prepareImage } from '@descent/images';
import type { CliModule } from '../module.js';
import { Output, count, shortPath, table } from '../output.js';
import { writeFilesAtomic } from '../report/files.js';
import { dbOption, progressBar, withStore } from '../store.js';
import { commandLine } from '../invocation.js';

interface DbFlags {
  db?: string;
  json?: boolean;
}

/** The IDX file names a dataset folder holds (the ones `--data DIR` looks for). */
const IDX_FILES: Record<Split, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

/** Table output shows at most this many rows unless --max-rows says otherwise. */
const TABLE_ROWS = 1000;

export const dbModule: CliModule = {
  register(program) {
    const db = program
      .command('db')
      .description('the SQL store (SQLite or MariaDB): import datasets and images, list, query, export');

    db.command('init')
      .description(`create the database, or bring its schema up to date (version ${LATEST_VERSION})`)
      .addOption(dbOption())
      .addOption(jsonOption())
      .action(async (flags: DbFlags) => {
        const output = new Output({ json: flags.json === true });
        await withStore(flags.db, { create: true }, async (store) => {
          const version = await store.schemaVersion();
          output.line(`${store.display}: ${store.kind === 'sqlite' ? 'SQLite' : 'MariaDB'} database ready, schema version ${version}`);
          output.record({ db: store.display, kind: store.kind, schema_version: version });
        });
      });

    db.command('import')
      .description('import all images of Fashion-MNIST or MNIST (train and test splits) from their IDX files')
      .argument('<dataset>', `dataset to import: ${DATASET_NAMES.join(' or ')}`)
      .addOption(dataOption())
      .option('--as <name>', 'name of the dataset in the store (default: the dataset\'s own name)')
      .addOption(dbOption())
      .addOption(jsonOption())
      .action(async (dataset: string, flags: DbFlags & { data?: string; as?: string }) => importIdx(dataset, flags));

    db.command('import-images')
      .description('import labelled images from a folder or zip with one folder per label (PNG, JPEG, …), made 28×28 grayscale as predict does')
      .argument('<source>', 'folder or .zip file: LABEL/IMAGE files, or train/LABEL/… and test/LABEL/…')
      .requiredOption('--dataset <name>', 'dataset to add the images to (created if new)')
      .addOption(new Option('--split <split>', 'split of images not under a train/ or test/ folder').choices(['train', 'test']).default('train'))
      .option('--skip-bad', 'skip images that cannot be decoded (listed) instead of stopping')
      .addOption(dbOption())
      .addOption(jsonOption())
      .action(async (source: string, flags: DbFlags & { dataset: string; split: Split; skipBad?: boolean }) => importImages(source, flags));

    db.command('list')
      .description('datasets with their images per class and split, and models')
      .addOption(dbOption())
      .addOption(jsonOption())
      .action(async (flags: DbFlags) => list(flags));

    db.command('query')
      .description('run one read-only SQL statement (SELECT …) and print the rows')
      .argument('<sql>', 'the query; anything that writes is refused')
      .addOption(dbOption())
      .addOption(jsonOption())
      .option('--csv', 'print CSV (a header line, then one line per row)')
      .option('--max-rows <n>', `rows to print (default: ${TABLE_ROWS} as a table, all with --json or --csv)`, positiveInteger)
      .action(async (sql: string, flags: DbFlags & { csv?: boolean; maxRows?: number }) => query(sql, flags));

    db.command('export')
      .description('write a dataset back to IDX files (byte-identical to the imported ones for an IDX import)')
      .requiredOption('--dataset <name>', 'dataset to export')
      .requiredOption('--out <dir>', 'folder to write train-images-idx3-ubyte and the other IDX files into')
      .option('--gzip', 'gzip the files (.gz)')
      .addOption(dbOption())
      .addOption(jsonOption())
      .action(async (flags: DbFlags & { dataset: string; out: string; gzip?: boolean }) => exportIdx(flags));
  },
};

async function importIdx(dataset: string, flags: DbFlags & { data?: string; as?: string }): Promise<void> {
  const output = new Output({ json: flags.json === true });
  if (!(DATASET_NAMES as readonly string[]).includes(dataset)) {
    throw new UsageError(`unknown dataset "${dataset}"; expected one of: ${DATASET_NAMES.join(', ')} (for your own images use \`${commandLine('db import-images')}\`)`);
  }
  checkDatasetName(flags.as ?? dataset, '--as');
  await withStore(flags.db, { create: true }, (store) => importDataset(store, dataset as DatasetName, flags, output));
}

/** Imports Fashion-MNIST or MNIST (found as `descent train` finds it) into an open store. */
export async function importDataset(store: Store, dataset: DatasetName, flags: { data?: string; as?: string }, output: Output): Promise<void> {
  const name = flags.as ?? dataset;
  const started = performance.now();
  const data = await readDataset(dataset, flags.data, output);
  const part = (split: Split, file: string, images: Uint8Array, labels: Uint8Array): ImportSplit => {
    const base = basename(file);
    return { split, images, labels, source: (i) => `${base}#${i}` };
  };
  output.note(`Importing ${data.name} from ${shortPath(data.dir)} into ${store.display} as dataset ${name}`);
  const result = await store.importImages({
    dataset: name, classNames: data.classNames, height: data.train.rows, width: data.train.cols, kind: 'idx', source: data.dir,
    skipDuplicates: false, onProgress: progressBar(output),
    splits: [part('train', data.files.trainImages, data.train.images, data.train.labels), part('test', data.files.testImages, data.test.images, data.test.labels)],
  });
  output.finishLine();
  const seconds = (performance.now() - started) / 1000;
  if (result.alreadyImported) {
    output.line(`Dataset ${name} already holds these ${count(data.train.count + data.test.count)} images (same content hash); nothing to do`);
  } else {
    output.line(`Imported ${count(result.added.train + result.added.test)} images into dataset ${name} (${count(result.added.train)} train, ${count(result.added.test)} test, ${data.classNames.length} classes) in ${seconds.toFixed(1)} s`);
  }
  output.record({ dataset: name, db: store.display, already_imported: result.alreadyImported, train: result.added.train, test: result.added.test, seconds });
}

async function importImages(source: string, flags: DbFlags & { dataset: string; split: Split; skipBad?: boolean }): Promise<void> {
  const output = new Output({ json: flags.json === true });
  checkDatasetName(flags.dataset);
  await withStore(flags.db, { create: true }, async (store) => {
    const existing = await store.getDataset(flags.dataset);
    if (existing && (existing.height !== IMAGE_SIZE || existing.width !== IMAGE_SIZE)) {
      throw new UsageError(`--dataset ${flags.dataset}: holds ${existing.height}×${existing.width} images; images are imported as ${IMAGE_SIZE}×${IMAGE_SIZE}`);
    }
    const read = await readLabelledImages(source, {
      size: IMAGE_SIZE * IMAGE_SIZE,
      split: flags.split,
      skipUndecodable: flags.skipBad === true,
      decode: async (bytes, name) => (await prepareImage(bytes, { name })).pixels,
      onProgress: progressBar(output),
    });
    output.finishLine();
    const splits = SPLITS.flatMap((split): ImportSplit[] => {
      const part = read.splits[split];
      return part ? [{ split, images: part.images, labels: part.labels, source: (i) => `${basename(source)}:${part.sources[i]}` }] : [];
    });
    const result = await store.importImages({
      dataset: flags.dataset, classNames: read.classNames, height: IMAGE_SIZE, width: IMAGE_SIZE, kind: source.toLowerCase().endsWith('.zip') ? 'zip' : 'folder',
      source: resolve(source), skipDuplicates: true, splits, onProgress: progressBar(output),
    });
    output.finishLine();
    const found = splits.reduce((n, s) => n + s.labels.length, 0);
    const skipped = [...read.skipped];
    for (let i = 0; i < result.duplicates; i++) skipped.push({ file: '', reason: 'same pixels as an image already in the dataset' });
    const added = result.added.train + result.added.test;
    if (result.alreadyImported) {
      output.line(`Dataset ${flags.dataset} already holds these ${count(found)} images (same content hash); nothing to do`);
    } else {
      const classes = result.newClasses.length ? `; new classes: ${result.newClasses.join(', ')}` : '';
      output.line(`Imported ${count(added)} images into dataset ${flags.dataset} (${count(result.added.train)} train, ${count(result.added.test)} test${classes})`);
    }
    if (skipped.length > 0) {
      output.line(`Skipped ${count(skipped.length)}: ${summarise(skipped)}`);
      for (const s of read.skipped.slice(0, 20)) output.line(`  ${s.file}: ${s.reason}`);
      if (read.skipped.length > 20) output.line(`  … and ${count(read.skipped.length - 20)} more`);
    }
    output.record({
      dataset: flags.dataset, db: store.display, already_imported: result.alreadyImported, train: result.added.train, test: result.added.test,
      new_classes: result.newClasses, duplicates: result.duplicates, skipped: read.skipped,
    });
  });
}

async function list(flags: DbFlags): Promise<void> {
  const output = new Output({ json: flags.json === true });
  await withStore(flags.db, {}, async (store) => {
    const datasets = await store.listDatasets();
    const models = await store.listModels();
    if (output.json) {
      for (const d of datasets) {
        output.record({ dataset: d.name, image_size: [d.height, d.width], classes: d.classNames, train: d.counts.train, test: d.counts.test, created_at: d.createdAt });
      }
      for (const m of models) {
        output.record({ model: m.name, dataset: m.dataset, test_accuracy: m.testAccuracy, test_loss: m.testLoss, predictions: m.predictions, dir: m.dir, created_at: m.createdAt });
      }
      return;
    }
    output.line(`${store.display} (${store.kind === 'sqlite' ? 'SQLite' : 'MariaDB'}, schema version ${await store.schemaVersion()})`);
    if (datasets.length === 0) output.line(`No datasets yet: ${commandLine('db import fashion-mnist')}, or ${commandLine('db import-images DIR --dataset NAME')}`);
    for (const d of datasets) {
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      output.line();
      output.line(output.bold(`Dataset ${d.name}: ${count(sum(d.counts.train))} train, ${count(sum(d.counts.test))} test images of ${d.height}×${d.width}, ${d.classNames.length} classes`));
      const rows = d.classNames.map((name, label) => [`  ${label}`, name, count(d.counts.train[label]), count(d.counts.test[label])]);
      for (const line of table([['  Label', 'Class', 'Train', 'Test'], ...rows], ['r', 'l', 'r', 'r'])) output.line(line);
    }
    output.line();
    if (models.length === 0) {
      output.line(`No models yet: ${commandLine('train --db …')} records one`);
      return;
    }
    output.line(output.bold(`Models: ${models.length}`));
    const rows = models.map((m) => [
      `  ${m.name}`, m.dataset ?? '-', m.testAccuracy === null ? '-' : m.testAccuracy.toFixed(4), count(m.predictions), m.createdAt.slice(0, 16),
    ]);
    for (const line of table([['  Name', 'Dataset', 'Test accuracy', 'Predictions', 'Created (UTC)'], ...rows], ['l', 'l', 'r', 'r', 'l'])) output.line(line);
  });
}

async function query(sql: string, flags: DbFlags & { csv?: boolean; maxRows?: number }): Promise<void> {
  if (flags.csv && flags.json) throw new UsageError('give either --json or --csv, not both');
  const output = new Output({ json: flags.json === true });
  const asTable = !flags.json && !flags.csv;
  const maxRows = flags.maxRows ?? (asTable ? TABLE_ROWS : undefined);
  await withStore(flags.db, {}, async (store) => {
    const result = await store.query(sql, maxRows === undefined ? {} : { maxRows });
    if (flags.json) {
      for (const row of result.rows) output.record(Object.fromEntries(result.columns.map((c, i) => [c, jsonValue(row[i])])));
    } else if (flags.csv) {
      process.stdout.write(`${result.columns.map(csvField).join(',')}\n`);
      for (const row of result.rows) process.stdout.write(`${row.map((v) => csvField(textValue(v, 'csv'))).join(',')}\n`);
    } else {
      const rows = result.rows.map((row) => row.map((v) => textValue(v, 'table')));
      for (const line of table([result.columns, ...rows], result.rows[0]?.map((v) => (typeof v === 'number' ? 'r' : 'l')) ?? [])) output.line(line);
      output.note(`(${count(result.rows.length)} row${result.rows.length === 1 ? '' : 's'}${result.truncated ? `; more were left out: raise --max-rows, or use --csv or --json` : ''})`);
    }
    if (result.truncated && !asTable) output.error(`descent: warning: stopped after ${count(result.rows.length)} rows (--max-rows)`);
  });
}

/** Bytes as <N bytes> in a table, base64 in CSV and JSON. */
function textValue(value: unknown, mode: 'table' | 'csv'): string {
  if (value === null || value === undefined) return mode === 'table' ? 'NULL' : '';
  if (value instanceof Uint8Array) return mode === 'table' ? `<${value.length} bytes>` : Buffer.from(value).toString('base64');
  const text = String(value);
  return mode === 'table' ? text.replace(/[\r\n\t]/g, ' ') : text;
}

function jsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (typeof value === 'bigint') return Number(value);
  return value ?? null;
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

async function exportIdx(flags: DbFlags & { dataset: string; out: string; gzip?: boolean }): Promise<void> {
  const output = new Output({ json: flags.json === true });
  const outDir = resolve(flags.out);
  const label = `--out ${flags.out}`;
  checkWritableFolder(outDir, label);
  await withStore(flags.db, {}, async (store: Store) => {
    const dataset = await store.requireDataset(flags.dataset);
    const files: Array<{ name: string; bytes: Uint8Array }> = [];
    for (const split of SPLITS) {
      if (dataset.counts[split].every((n) => n === 0)) continue;
      const data = await store.loadSplit(dataset.name, split);
      const gz = flags.gzip ? '.gz' : '';
      files.push({ name: IDX_FILES[split].images + gz, bytes: encodeIdxImages({ count: data.count, rows: data.rows, cols: data.cols, pixels: data.images }, { gzip: flags.gzip }) });
      files.push({ name: IDX_FILES[split].labels + gz, bytes: encodeIdxLabels(data.labels, { gzip: flags.gzip }) });
    }
    const present = statOrUndefined(outDir)?.isDirectory() ? readdirSync(outDir) : [];
    const clash = files.map((f) => f.name).filter((name) => present.includes(name) || present.includes(name.replace(/\.gz$/, '')) || present.includes(`${name}.gz`));
    if (clash.length > 0) throw new UsageError(`${label}: already holds ${clash.join(', ')}; choose an empty folder`);
    const written = await writeFilesAtomic(outDir, files, label);
    output.line(`Exported dataset ${dataset.name} to ${shortPath(outDir)}: ${files.map((f) => f.name).join(', ')}`);
    output.line(`Class names: ${dataset.classNames.map((c, i) => `${i} ${c}`).join(', ')}`);
    output.record({ dataset: dataset.name, out: outDir, files: written, class_names: dataset.classNames });
  });
}
