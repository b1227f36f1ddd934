#!/usr/bin/env node
/**
 * The server's figures, on this machine, against 127.0.0.1 only, bounded in time (about 2 minutes
 * with the defaults, most of it the training runs):
 *
 *   npm run bench:server -- [--duration 15] [--connections 10] [--data DIR] [--epochs 5] [--runs 3] [--out FILE]
 *
 * 1. predict throughput and latency (autocannon, one 28×28 PNG test image per JSON request, base64,
 *    bearer token checked, every prediction recorded), with the server idle;
 * 2. the same while a training job runs on the server;
 * 3. where a request's time goes (the server's own phase timings: parse, decode, predict, store, reply;
 *    and how many images each forward pass classified),
 *    and two floors measured the same way: the same requests with `?record=false` (no row written)
 *    and GET /health (no token, no body: what HTTP on this machine costs by itself);
 * 4. a training job through the API against the same `descent train` run (wall time, medians of --runs).
 *
 * The server runs as `descent serve` in its own process (which imports Fashion-MNIST into its new
 * database at start), with its usual logging (to a file) and a rate limit high enough not to refuse
 * the load. Prints JSON (and writes it to --out): the machine, the load average before and during
 * each part, and every figure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encode as encodePng } from 'fast-png';
import { FASHION_MNIST_CLASS_NAMES, loadDataset } from '@descent/engine';
import { Accounts } from '@descent/server';
import { openStore } from '@descent/store';
import { machineInfo } from './machine.js';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p90: number; p99: number; max: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '15' },
    connections: { type: 'string', default: '10' },
    data: { type: 'string' },
    epochs: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});
const duration = Number(flags.duration);
const connections = Number(flags.connections);
const epochs = Number(flags.epochs);
const runs = Number(flags.runs);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function serve(db: string, logFile: string): Promise<{ child: ChildProcess; url: string }> {
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--db', db, '--rate-limit', '100000000', '--no-app', ...(flags.data ? ['--data', flags.data] : [])], { stdio: ['ignore', out, 'pipe'] });
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (match) resolve({ child, url: match[1] });
    });
    child.on('exit', (code) => reject(new Error(`descent serve exited (${code}): ${stderr}`)));
  });
}

async function main(): Promise<void> {
  const { default: autocannon } = (await import('autocannon')) as { default: Autocannon };
  const dir = mkdtempSync(join(tmpdir(), 'server-bench-'));
  const db = join(dir, 'descent.db');
  const report: Record<string, unknown> = { machine: machineInfo(), load_before: loadavg() };
  let server: { child: ChildProcess; url: string } | undefined;
  try {
    const data = await loadDataset('fashion-mnist', { dir: flags.data, download: false });
    const classNames = [...FASHION_MNIST_CLASS_NAMES];
    const store = await openStore(db, { create: true });
    const token = (await new Accounts(store).issue('personal', 'admin', { name: 'bench', ttlSeconds: 86400 })).token;
    await store.close();
    log('starting descent serve (it imports Fashion-MNIST into its new database) …');
    server = await serve(db, join(dir, 'server.log'));
    const url = server.url;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const api = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${url}${path}`, { ...init, headers: init.body === undefined ? { authorization: headers.authorization } : headers });
      if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${response.status} ${await response.text()}`);
      return response;
    };
    const waitFor = async (job: number, until: (status: string) => boolean) => {
      for (;;) {
        const view = await (await api(`/api/v1/jobs/${job}`)).json() as { status: string; model_id: number | null };
        if (until(view.status)) return view;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const definition = { dataset: 'fashion-mnist', model: { hidden: [128] }, epochs, batch_size: 32, seed: 42, progress_every: 100 };

    // ---- training: the API against descent train ----
    const apiSeconds: number[] = [];
    const cliSeconds: number[] = [];
    let modelId = 0;
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      const job = await (await api('/api/v1/jobs', { method: 'POST', body: JSON.stringify(definition) })).json() as { id: number };
      const done = await waitFor(job.id, (s) => s === 'complete' || s === 'failed');
      apiSeconds.push((performance.now() - started) / 1000);
      modelId = done.model_id!;
      const cliStart = performance.now();
      const cli = spawn(process.execPath, [CLI, 'train', '--epochs', String(epochs), '--hidden', '128', '--batch-size', '32', '--seed', '42', '--out', join(dir, `cli-${run}`), ...(flags.data ? ['--data', flags.data] : []), '--json'], { stdio: 'ignore' });
      await new Promise((resolve) => cli.on('exit', resolve));
      cliSeconds.push((performance.now() - cliStart) / 1000);
      log(`training run ${run + 1}: API ${apiSeconds[run].toFixed(2)} s, descent train ${cliSeconds[run].toFixed(2)} s`);
    }
    report.training = { epochs, api_seconds: apiSeconds, cli_seconds: cliSeconds, api_median: median(apiSeconds), cli_median: median(cliSeconds), ratio: median(apiSeconds) / median(cliSeconds) };

    // ---- predict ----
    const pixels = data.test.images.slice(0, 784);
    const body = JSON.stringify({ image: Buffer.from(encodePng({ width: 28, height: 28, data: pixels, depth: 8, channels: 1 })).toString('base64') });
    const path = `/api/v1/models/${modelId}/predict`;
    const first = await (await api(path, { method: 'POST', body })).json() as { class: string };
    log(`predict answers ${first.class} for test image 0 (true: ${classNames[data.test.labels[0]]})`);
    const load = (seconds: number) => autocannon({ url: `${url}${path}`, method: 'POST', headers, body, connections, duration: seconds, pipelining: 1 });
    type Metrics = { routes: Record<string, { requests: number; mean_ms: Record<string, number> }>; predict_batches: { batches: number; images: number } };
    const metrics = async () => (await (await api('/api/v1/metrics')).json()) as Metrics;
    const phases = async () => (await metrics()).routes[`POST /api/v1/models/:id/predict`];
    /** Images per forward pass over a part (requests that arrive together are classified as one batch). */
    const imagesPerBatch = (before: Metrics['predict_batches'], after: Metrics['predict_batches']) =>
      (after.images - before.images) / Math.max(1, after.batches - before.batches);
    const summary = (r: AutocannonResult) => ({ requests_per_second: r.requests.average, total: r.requests.total, p50_ms: r.latency.p50, p90_ms: r.latency.p90, p99_ms: r.latency.p99, max_ms: r.latency.max, non2xx: r.non2xx, errors: r.errors + r.timeouts });
    const breakdown = (before: Awaited<ReturnType<typeof phases>>, after: Awaited<ReturnType<typeof phases>>) => {
      const n = after.requests - (before?.requests ?? 0);
      return Object.fromEntries(Object.keys(after.mean_ms).map((p) => [p, (after.mean_ms[p] * after.requests - (before ? before.mean_ms[p] * before.requests : 0)) / n]));
    };

    log(`warming up (3 s), then ${duration} s idle …`);
    await load(3);
    report.load_idle_start = loadavg();
    const idleBefore = await phases();
    const idleBatches = (await metrics()).predict_batches;
    const idle = await load(duration);
    report.predict_idle = { ...summary(idle), phases_ms: breakdown(idleBefore, await phases()), images_per_batch: imagesPerBatch(idleBatches, (await metrics()).predict_batches) };
    log(`${duration} s idle, predictions not recorded …`);
    report.predict_idle_not_recorded = summary(await autocannon({ url: `${url}${path}?record=false`, method: 'POST', headers, body, connections, duration, pipelining: 1 }));
    log(`${duration} s of GET /health …`);
    report.health_idle = summary(await autocannon({ url: `${url}/health`, connections, duration, pipelining: 1 }));

    log(`${duration} s while a training job runs …`);
    const long = await (await api('/api/v1/jobs', { method: 'POST', body: JSON.stringify({ ...definition, epochs: 200 }) })).json() as { id: number };
    await waitFor(long.id, (s) => s === 'running');
    await new Promise((resolve) => setTimeout(resolve, 1000)); // past the job's data loading
    report.load_training_start = loadavg();
    const busyBefore = await phases();
    const busyBatches = (await metrics()).predict_batches;
    const busy = await load(duration);
    report.predict_training = { ...summary(busy), phases_ms: breakdown(busyBefore, await phases()), images_per_batch: imagesPerBatch(busyBatches, (await metrics()).predict_batches) };
    const progress = await (await api(`/api/v1/jobs/${long.id}`)).json() as { status: string };
    report.training_job_during_load = progress.status;
    await api(`/api/v1/jobs/${long.id}/cancel`, { method: 'POST' });
    report.load_after = loadavg();
  } finally {
    if (server) {
      server.child.kill('SIGTERM');
      await new Promise((resolve) => server!.child.on('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  }
  const text = JSON.stringify(report, null, 2);
  if (flags.out) writeFileSync(flags.out, `${text}\n`);
  process.stdout.write(`${text}\n`);
}

await main();
