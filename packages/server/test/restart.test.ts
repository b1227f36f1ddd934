// `descent serve` as a process: kill -9 during training and during an upload, SIGTERM while
// training. After a restart the store is consistent, the job resumes from its checkpoint, and it
// ends with the same weights, bit for bit, as the same job run without interruption.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '@descent/store';
import { CLASSES, CLI, FIXTURE, fixtureData, fixtureZip, form, readEvents } from './helpers.js';

interface Served {
  child: ChildProcess;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** What it has written on stderr so far. */
  stderr(): string;
}

let dir: string;
let db: string;
let token: string;
let current: Served | undefined;

function serve(): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--db', db, '--workers', '2', '--log-level', 'warn', '--data', FIXTURE, '--no-app'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (match) resolve({ child, url: match[1], exited, stderr: () => stderr });
    });
    void exited.then(({ code }) => reject(new Error(`descent serve exited (${code}) before listening: ${stderr}`)));
  });
}

function api(served: Served, path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  if (init.json !== undefined) headers.set('content-type', 'application/json');
  return fetch(`${served.url}${path}`, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
}

/** Waits for the job's stream to show `until`, returning the events so far. */
async function follow(served: Served, job: number, until: (e: { event: string; data: Record<string, unknown> }) => boolean) {
  return readEvents(await api(served, `/api/v1/jobs/${job}/events`), until);
}

async function weightsOf(served: Served, job: number): Promise<Buffer> {
  const view = await (await api(served, `/api/v1/jobs/${job}`)).json() as { model_id: number };
  return Buffer.from(await (await api(served, `/api/v1/models/${view.model_id}/weights.bin`)).arrayBuffer());
}

// Long enough that a signal sent at epoch 2 lands well before the end, even on a loaded machine.
const definition = { dataset: 'clothes', model: { hidden: [96] }, epochs: 48, batch_size: 16, progress_every: 8, seed: 11 };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'server-restart-'));
  db = join(dir, 'descent.db');
  const made = spawnSync(process.execPath, [CLI, 'token', 'create', '--name', 'test', '--scope', 'admin', '--db', db], { encoding: 'utf8' });
  expect(made.status, made.stderr).toBe(0);
  token = made.stdout.trim();
  current = await serve();
  expect(current.stderr()).toMatch(/^Importing fashion-mnist from .* as dataset fashion-mnist\nImported [\d,]+ images into dataset fashion-mnist .*\ndescent serve: listening on/);
  // A database without datasets starts with Fashion-MNIST (here the fixture's images, from --data).
  const { train, test } = await fixtureData();
  const started = await (await api(current, '/api/v1/datasets/fashion-mnist')).json() as { counts: { train: number[]; test: number[] } };
  expect(started.counts.train.reduce((a, b) => a + b)).toBe(train.count);
  expect(started.counts.test.reduce((a, b) => a + b)).toBe(test.count);
  expect((await api(current, '/api/v1/datasets', { method: 'POST', json: { name: 'clothes', classes: CLASSES } })).status).toBe(201);
  expect((await api(current, '/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [await fixtureZip(40), 'c.zip'] }) })).status).toBe(201);
});

afterAll(async () => {
  if (current && current.child.exitCode === null) {
    current.child.kill('SIGKILL');
    await current.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('descent serve across restarts', () => {
  let reference: Buffer;

  it('kill -9 during training: after a restart the job resumes from its checkpoint to the weights of an uninterrupted run', async () => {
    const served = current!;
    const job = await (await api(served, '/api/v1/jobs', { method: 'POST', json: definition })).json() as { id: number };
    await follow(served, job.id, (e) => e.event === 'epoch' && (e.data.epoch as number) >= 2);
    served.child.kill('SIGKILL');
    expect((await served.exited).signal).toBe('SIGKILL');

    const store = await openStore(db, { migrate: false });
    const [row] = await store.driver.all<{ status: string; epochs_done: number; checkpoint: string | null }>(
      'SELECT r.status, r.epochs_done, j.checkpoint FROM training_runs r JOIN training_jobs j ON j.run_id = r.id WHERE r.id = ?', [job.id],
    );
    const [{ integrity_check: integrity }] = await store.driver.all<{ integrity_check: string }>('PRAGMA integrity_check');
    await store.close();
    expect(integrity).toBe('ok');
    expect(row.status).toBe('running');
    expect(row.epochs_done).toBeGreaterThanOrEqual(1);
    expect(row.epochs_done).toBeLessThan(definition.epochs);
    expect(JSON.parse(row.checkpoint!).epochsCompleted).toBe(row.epochs_done);
    expect(await countModels()).toBe(0); // no half-written model

    current = await serve();
    const twin = await (await api(current, '/api/v1/jobs', { method: 'POST', json: definition })).json() as { id: number };
    const resumed = await follow(current, job.id, (e) => e.event === 'status' && e.data.status === 'complete');
    expect(resumed[resumed.length - 1].data.status).toBe('complete');
    await follow(current, twin.id, (e) => e.event === 'status' && e.data.status === 'complete');
    const history = await (await api(current, `/api/v1/jobs/${job.id}`)).json() as { history: { epoch: number[] } };
    expect(history.history.epoch).toEqual(Array.from({ length: definition.epochs }, (_, i) => i));
    reference = await weightsOf(current, twin.id);
    expect((await weightsOf(current, job.id)).equals(reference)).toBe(true);
  });

  it('SIGTERM: stops accepting, checkpoints the running job mid-epoch, exits 0; the next start finishes it identically', async () => {
    const served = current!;
    const job = await (await api(served, '/api/v1/jobs', { method: 'POST', json: definition })).json() as { id: number };
    await follow(served, job.id, (e) => e.event === 'batch' && (e.data.epoch as number) >= 2);
    served.child.kill('SIGTERM');
    const exit = await served.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).toContain('SIGTERM: no new requests');
    await expect(fetch(`${served.url}/health`)).rejects.toThrow();

    const store = await openStore(db, { migrate: false });
    const [row] = await store.driver.all<{ status: string; checkpoint: string }>('SELECT r.status, j.checkpoint FROM training_runs r JOIN training_jobs j ON j.run_id = r.id WHERE r.id = ?', [job.id]);
    await store.close();
    expect(row.status).toBe('interrupted');
    const checkpoint = JSON.parse(row.checkpoint) as { position: { epoch: number; batch: number } | null };
    expect(checkpoint.position).not.toBeNull(); // stopped inside an epoch, after a batch

    current = await serve();
    await follow(current, job.id, (e) => e.event === 'status' && e.data.status === 'complete');
    expect((await weightsOf(current, job.id)).equals(reference)).toBe(true);
  });

  it('kill -9 during an upload: the import is whole or absent, never partial', async () => {
    const served = current!;
    const before = await countImages();
    const zip = await fixtureZip(100);
    const upload = api(served, '/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [zip, 'big.zip'] }) }).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 150));
    served.child.kill('SIGKILL');
    await served.exited;
    await upload;
    const after = await countImages();
    expect([before, before + 1000]).toContain(after);
    const store = await openStore(db, { migrate: false });
    const [{ integrity_check: integrity }] = await store.driver.all<{ integrity_check: string }>('PRAGMA integrity_check');
    const [{ n }] = await store.driver.all<{ n: number }>('SELECT COUNT(*) AS n FROM imports i WHERE images <> (SELECT COUNT(*) FROM images WHERE import_id = i.id)');
    await store.close();
    expect(integrity).toBe('ok');
    expect(Number(n)).toBe(0);
    current = await serve();
    expect((await fetch(`${current.url}/health`)).status).toBe(200);
  });
});

/** Rows of a table, read by a connection of the test's own. */
async function countIn(table: 'images' | 'models'): Promise<number> {
  const store = await openStore(db, { migrate: false });
  try {
    const [{ n }] = await store.driver.all<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`);
    return Number(n);
  } finally {
    await store.close();
  }
}
const countImages = () => countIn('images');
const countModels = () => countIn('models');
