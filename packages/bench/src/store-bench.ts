#!/usr/bin/env node
/**
 * The SQL store's figures, on full Fashion-MNIST:
 *
 *   import   `descent db import fashion-mnist` (the whole command: read the IDX files, hash, insert
 *            70,000 images in one transaction) into a new SQLite file, and into a MariaDB server
 *            started for the run (Debian's mariadbd, default durability: flush at every commit)
 *   load     reading the 60,000 training images for training: from SQLite (Store.loadSplit) and
 *            from the IDX files (loadDataset), interleaved in one run
 *   predict  storing 10,000 predictions (Store.savePredictions, one transaction), as evaluate --store does
 *
 *   npm run bench:store [-- --runs 5 --no-mariadb]
 *
 * Medians of --runs runs; the machine and load are printed with the results.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadDataset } from '@descent/engine';
import { openStore } from '@descent/store';
import { startMariadbServer } from '@descent/store/mariadb-server';

const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'no-mariadb': { type: 'boolean', default: false } } });
const runs = Number(values.runs);
const dir = mkdtempSync(join(tmpdir(), 'descent-store-bench-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
const rows: string[][] = [];
const record = (what: string, seconds: number[], goal: string) => {
  const cpu = cpuSeconds.get(what);
  rows.push([what, median(seconds).toFixed(3), range(seconds), cpu ? median(cpu).toFixed(3) : '-', String(seconds.length), goal]);
  console.error(`${what}: median ${median(seconds).toFixed(3)} s (${range(seconds)})`);
};

/** CPU seconds (user + system) of each timed step: on a busy machine they show what the step costs, where wall time shows the queue. */
const cpuSeconds = new Map<string, number[]>();
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs the whole command; returns its wall seconds (and records its CPU seconds when /usr/bin/time is there). */
function importCommand(db: string, what: string): number {
  const args = [CLI, 'db', 'import', 'fashion-mnist', '--db', db];
  const started = performance.now();
  const result = TIME
    ? spawnSync(TIME, ['-f', 'cpu %U %S', process.execPath, ...args], { encoding: 'utf8' })
    : spawnSync(process.execPath, args, { encoding: 'utf8' });
  const wall = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`import failed: ${result.stderr}`);
  const cpu = /cpu ([\d.]+) ([\d.]+)/.exec(result.stderr);
  if (cpu) cpuSeconds.set(what, [...(cpuSeconds.get(what) ?? []), Number(cpu[1]) + Number(cpu[2])]);
  return wall;
}

/** Times `work` in this process: wall seconds, and CPU seconds recorded under `what`. */
async function timed<T>(what: string, work: () => Promise<T>): Promise<[T, number]> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const used = process.cpuUsage(cpu);
  cpuSeconds.set(what, [...(cpuSeconds.get(what) ?? []), (used.user + used.system) / 1e6]);
  return [result, (performance.now() - started) / 1000];
}

try {
  console.error(`CPU: ${cpus()[0]?.model} × ${cpus().length}; load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  // 1. Import into SQLite: a new file each run.
  const sqlite: number[] = [];
  const sqliteImport = 'descent db import fashion-mnist → SQLite (70,000 images, whole command)';
  for (let i = 0; i < runs; i++) sqlite.push(importCommand(join(dir, `import-${i}.db`), sqliteImport));
  record(sqliteImport, sqlite, '≤ 3 s');

  // 2. Load the training split: SQLite against the IDX files, interleaved.
  const db = join(dir, 'import-0.db');
  const fromStore: number[] = [];
  const fromIdx: number[] = [];
  const store = await openStore(db);
  const storeLoad = 'load 60,000 training images from SQLite (Store.loadSplit)';
  const idxLoad = 'load Fashion-MNIST from the IDX files (.gz, train and test)';
  for (let i = 0; i < runs; i++) {
    const [split, storeSeconds] = await timed(storeLoad, () => store.loadSplit('fashion-mnist', 'train'));
    const [idx, idxSeconds] = await timed(idxLoad, () => loadDataset('fashion-mnist'));
    fromStore.push(storeSeconds);
    fromIdx.push(idxSeconds);
    if (split.count !== 60_000 || !Buffer.from(split.images).equals(Buffer.from(idx.train.images))) throw new Error('the store and the IDX files disagree');
  }
  record(storeLoad, fromStore, '≤ 0.5 s');
  record(idxLoad, fromIdx, 'same as SQLite');

  // 3. Store 10,000 predictions.
  const test = await store.loadSplit('fashion-mnist', 'test');
  const { id: modelId } = await store.saveModel({ name: 'bench', dataset: 'fashion-mnist', architecture: '{}', modelJson: '{}', weights: new Uint8Array(16) });
  const probabilities = new Float32Array(test.count * 10);
  for (let i = 0; i < probabilities.length; i++) probabilities[i] = ((i * 7919) % 1000) / 1000;
  const predictions = Array.from({ length: test.count }, (_, i) => ({ imageId: test.ids[i], input: `test[${i}]`, probabilities: probabilities.subarray(i * 10, i * 10 + 10), trueLabel: test.labels[i] }));
  const saving: number[] = [];
  const storing = 'store 10,000 predictions in SQLite (replacing the previous 10,000)';
  for (let i = 0; i < runs; i++) saving.push((await timed(storing, () => store.savePredictions({ modelId, origin: 'evaluate', replace: true, predictions })))[1]);
  record(storing, saving, '≤ 1 s');
  await store.close();

  // 4. Import into MariaDB.
  if (!values['no-mariadb']) {
    const server = await startMariadbServer({ fast: false });
    try {
      const maria: number[] = [];
      const mariaImport = 'descent db import fashion-mnist → MariaDB (70,000 images, whole command; client CPU)';
      for (let i = 0; i < Math.min(runs, 3); i++) maria.push(importCommand(await server.createDatabase(`bench${i}`), mariaImport));
      record(mariaImport, maria, '≤ 15 s');
    } finally {
      await server.stop();
    }
  }
  console.error(`load average at end ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log('| What | Median wall (s) | Range (s) | Median CPU (s) | Runs | Goal |');
  console.log('|---|---:|---:|---:|---:|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
