// `descent tune --queue` with a real Redis (started here on a free 127.0.0.1 port, in a temporary
// folder) and two `descent worker` processes, one of them killed with SIGKILL in the middle of a
// trial: its trial is run again by the other worker, and the search ends with the same results
// table as the same search run on local worker threads.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, FIXTURE, jsonLines, runCli, startCli, temporaryFolder } from './cli-helpers.js';
import { resultsTable } from './tune-helpers.js';

const tmp = temporaryFolder('descent-queue-');
const children: ChildProcess[] = [];
let redisUrl = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startRedis(): Promise<string> {
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', tmp.dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(redis);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    redis.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    redis.on('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  return `redis://127.0.0.1:${port}`;
}

interface WorkerProcess {
  child: ChildProcess;
  events: Array<Record<string, unknown>>;
  waitFor(test: (event: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

function startWorker(): WorkerProcess {
  const child = spawn(process.execPath, [CLI, 'worker', '--queue', redisUrl, '--workers', '1', '--lock-seconds', '2', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  children.push(child);
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<[(event: Record<string, unknown>) => boolean, (event: Record<string, unknown>) => void]> = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines.filter((l) => l.trim())) {
      const event = JSON.parse(line) as Record<string, unknown>;
      events.push(event);
      for (const [test, resolve] of waiters.filter(([t]) => t(event))) {
        waiters.splice(waiters.findIndex(([t]) => t === test), 1);
        resolve(event);
      }
    }
  });
  return {
    child,
    events,
    waitFor: (test) => {
      const seen = events.find(test);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push([test, resolve]));
    },
  };
}

// 6 trials: Hyperband, max_epochs 3, factor 3.
const SEARCH = ['tune', '--data', FIXTURE, '--max-epochs', '3', '--units', '16:64:16', '--lr', '1e-2,1e-3', '--seed', '11', '--json'];


beforeAll(async () => {
  redisUrl = await startRedis();
});

afterAll(async () => {
  for (const child of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
  tmp.remove();
});

describe('descent tune --queue (BullMQ on a real Redis)', () => {
  it('completes with the same results as a local run although a worker is killed mid-trial', async () => {
    const local = await runCli([...SEARCH, '--workers', '1', '--out', join(tmp.dir, 'local')]);
    expect(local.code, local.stderr).toBe(0);

    const doomed = startWorker();
    const survivor = startWorker();
    await Promise.all([doomed.waitFor((e) => e.event === 'ready'), survivor.waitFor((e) => e.event === 'ready')]);
    const search = startCli([...SEARCH, '--queue', redisUrl, '--out', join(tmp.dir, 'queued')]);

    // Kill one worker while it is training: it has started a job and not finished it.
    const started = await doomed.waitFor((e) => e.event === 'started');
    const killed = new Promise((resolve) => doomed.child.once('exit', resolve));
    doomed.child.kill('SIGKILL');
    await killed;
    expect(doomed.events.some((e) => e.event === 'finished' && e.job === started.job)).toBe(false);

    const result = await search.done;
    expect(result.code, result.stderr).toBe(0);
    expect(resultsTable(result.stdout)).toEqual(resultsTable(local.stdout));
    expect(resultsTable(result.stdout)).toHaveLength(6);
    // The killed worker's trial was taken over by the other worker and run to its end.
    expect(survivor.events.some((e) => e.event === 'finished' && e.job === started.job)).toBe(true);
    const summary = jsonLines(result.stdout).at(-1)!;
    expect(summary.best_trial).toBe(jsonLines(local.stdout).at(-1)!.best_trial);
    expect(existsSync(join(tmp.dir, 'queued', 'best-model', 'model.json'))).toBe(true);
  });

  it('an unreachable queue: one line, exit 1, nothing written', async () => {
    const port = await freePort();
    const out = join(tmp.dir, 'unreachable');
    const run = await runCli([...SEARCH, '--queue', `redis://127.0.0.1:${port}`, '--out', out]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(`descent: --queue redis://127.0.0.1:${port}: cannot reach Redis at 127.0.0.1:${port} (ECONNREFUSED)`);
    expect(existsSync(out)).toBe(false);
    const worker = await runCli(['worker', '--queue', `redis://127.0.0.1:${port}`]);
    expect(worker.code).toBe(1);
    expect(worker.stderr.trim()).toMatch(/^descent: --queue redis:\/\/127\.0\.0\.1:\d+: cannot reach Redis/);
    const bad = await runCli([...SEARCH, '--queue', 'http://127.0.0.1:80', '--out', out]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('descent: --queue http://127.0.0.1:80: expected a redis:// URL, e.g. redis://127.0.0.1:6379');
  });
});
