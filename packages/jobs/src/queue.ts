/**
 * Training jobs through a BullMQ queue in Redis, so that any number of machines can run them:
 *
 *   producer (QueueRunner: `descent tune --queue redis://HOST:PORT`)
 *      │  queue.add(spec)                      ▲ QueueEvents: progress, completed (the JobResult)
 *      ▼                                       │
 *   Redis ── BullMQ queue "descent-training" ──┘
 *      │  Worker takes a job, holds its lock while it trains
 *      ▼
 *   `descent worker --queue redis://HOST:PORT` (serveQueue): each job runs on a LocalRunner thread,
 *   so the worker's event loop stays free to renew the lock and report progress.
 *
 * A worker that dies mid-job stops renewing the job's lock; once it expires, another worker's
 * stalled-job check puts the job back in the queue and someone else runs it again (a job is
 * deterministic, so the result is the same). Cancelling a running job sets a key the worker
 * watches; a worker that is shut down hands its running jobs back to the queue at once.
 *
 * bullmq and ioredis load when a queue is first used, so that importing the package (every CLI
 * command does) does not pay for them.
 */
import type { Redis } from 'ioredis';
import type { ConnectionOptions, Job, Queue, QueueEvents } from 'bullmq';
import { existsSync } from 'node:fs';
import { DescentError, UsageError } from '@descent/engine';
import { LocalRunner, type LocalRunnerOptions } from './local.js';
import { JobError, type JobRunner, type RunOptions } from './runner.js';
import type { JobEvent, JobResult, TrainingJobSpec } from './spec.js';

export const QUEUE_NAME = 'descent-training';
/** Seconds a worker holds a job without renewing its lock before others may take it (BullMQ's lockDuration). */
export const DEFAULT_LOCK_SECONDS = 30;

export interface RedisAddress {
  host: string;
  port: number;
  password?: string;
  username?: string;
  db?: number;
}

/** Parses redis://[user:password@]host[:port][/db]; `label` (e.g. "--queue URL") starts errors. */
export function parseRedisUrl(url: string, label = `--queue ${url}`): RedisAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${label}: not a URL; expected redis://HOST:PORT`);
  }
  if (parsed.protocol !== 'redis:') throw new UsageError(`${label}: expected a redis:// URL, e.g. redis://127.0.0.1:6379`);
  if (!parsed.hostname) throw new UsageError(`${label}: no host; expected redis://HOST:PORT`);
  const port = parsed.port ? Number(parsed.port) : 6379;
  const db = parsed.pathname && parsed.pathname !== '/' ? Number(parsed.pathname.slice(1)) : undefined;
  if (db !== undefined && !(Number.isInteger(db) && db >= 0)) throw new UsageError(`${label}: the database after the port must be a number, e.g. redis://HOST:PORT/0`);
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(db !== undefined ? { db } : {}),
  };
}

async function queueLibraries() {
  const [bullmq, { Redis }] = await Promise.all([import('bullmq'), import('ioredis')]);
  return { bullmq, Redis };
}

/** Connects once, without retrying, and fails with one line (exit 1) if Redis does not answer. */
export async function checkQueueReachable(address: RedisAddress, label: string, timeoutMs = 3000): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ ...address, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let socketError: NodeJS.ErrnoException | undefined;
  client.on('error', (error: NodeJS.ErrnoException) => (socketError ??= error)); // reported below
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    const err = socketError ?? (error as NodeJS.ErrnoException);
    throw new DescentError(`${label}: cannot reach Redis at ${address.host}:${address.port} (${err.code ?? err.message})`);
  } finally {
    client.disconnect();
  }
}

function connection(address: RedisAddress): ConnectionOptions {
  // BullMQ's blocking commands need maxRetriesPerRequest null.
  return { ...address, maxRetriesPerRequest: null };
}

function cancelKey(jobId: string): string {
  return `descent:cancel:${jobId}`;
}

/** Sends jobs through the queue; `descent worker` processes run them. */
export class QueueRunner implements JobRunner {
  /** Every job is queued at once; the workers decide how many run. */
  readonly capacity = Number.POSITIVE_INFINITY;
  private readonly handlers = new Map<string, (event: JobEvent) => void>();

  private constructor(private readonly queue: Queue, private readonly events: QueueEvents, private readonly redis: Redis) {
    events.on('progress', ({ jobId, data }) => this.handlers.get(jobId)?.(data as unknown as JobEvent));
  }

  /** Checks that Redis answers (a DescentError naming `label` if not), then opens the queue. */
  static async connect(url: string, label = `--queue ${url}`): Promise<QueueRunner> {
    const address = parseRedisUrl(url, label);
    await checkQueueReachable(address, label);
    const { bullmq: { Queue, QueueEvents }, Redis } = await queueLibraries();
    const queue = new Queue(QUEUE_NAME, { connection: connection(address), streams: { events: { maxLen: 1000 } } });
    const events = new QueueEvents(QUEUE_NAME, { connection: connection(address) });
    const redis = new Redis(connection(address) as RedisAddress);
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    return new QueueRunner(queue, events, redis);
  }

  async run(spec: TrainingJobSpec, { onEvent, signal }: RunOptions = {}): Promise<JobResult> {
    if (onEvent) this.handlers.set(spec.id, onEvent);
    try {
      const job = await this.queue.add('train', spec, {
        jobId: spec.id,
        attempts: 3,
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 24 * 3600 },
      });
      const finished = job.waitUntilFinished(this.events) as Promise<JobResult>;
      let onAbort = (): void => {};
      const cancelled = new Promise<JobResult>((resolve) => {
        onAbort = () => void this.cancel(spec).then(resolve);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      const result = await Promise.race([finished, cancelled]).finally(() => signal?.removeEventListener('abort', onAbort));
      finished.catch(() => {});
      if (result.status !== 'cancelled') await job.remove().catch(() => {});
      return result;
    } catch (error) {
      if (error instanceof DescentError) throw error;
      throw new JobError(spec.id, `job ${spec.id} failed on a worker: ${(error as Error).message}`, null);
    } finally {
      this.handlers.delete(spec.id);
    }
  }

  /** A job waiting in the queue is removed; a running one is told to stop (its worker watches the key). */
  private async cancel(spec: TrainingJobSpec): Promise<JobResult> {
    await this.redis.set(cancelKey(spec.id), '1', 'EX', 3600).catch(() => {});
    await this.queue.remove(spec.id).catch(() => {});
    return { id: spec.id, status: 'cancelled', history: { epoch: [], loss: [], accuracy: [], val_loss: [], val_accuracy: [], seconds: [] }, best: null, weights: { shapes: [], values: [] }, seconds: 0, checkpoint: null };
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.redis.disconnect();
  }
}

export interface QueueWorkerOptions extends LocalRunnerOptions {
  /** Folder of the dataset's IDX files on this machine (default: the job's folder if it exists here, else the usual places). */
  dataDir?: string;
  lockSeconds?: number;
  /** Told when a job starts and ends (for the worker's log). */
  onJob?(what: 'started' | 'finished' | 'failed' | 'returned', jobId: string, detail?: string): void;
}

export interface QueueWorker {
  /** Stops taking jobs; running ones go back to the queue for another worker. */
  close(): Promise<void>;
}

/** `descent worker`: takes jobs from the queue and runs them on worker threads here. */
export async function serveQueue(url: string, options: QueueWorkerOptions = {}, label = `--queue ${url}`): Promise<QueueWorker> {
  const address = parseRedisUrl(url, label);
  await checkQueueReachable(address, label);
  const { bullmq: { DelayedError, UnrecoverableError, Worker }, Redis } = await queueLibraries();
  const local = new LocalRunner(options);
  const redis = new Redis(connection(address) as RedisAddress);
  const lockSeconds = options.lockSeconds ?? DEFAULT_LOCK_SECONDS;
  const running = new Map<string, AbortController>();
  let closing = false;

  const process = async (job: Job, token?: string): Promise<JobResult> => {
    const spec = job.data as TrainingJobSpec;
    const dir = options.dataDir ?? (spec.data.dir && existsSync(spec.data.dir) ? spec.data.dir : null);
    const controller = new AbortController();
    running.set(spec.id, controller);
    options.onJob?.('started', spec.id, job.attemptsStarted > 1 ? `attempt ${job.attemptsStarted}` : undefined);
    const watch = setInterval(() => {
      void redis.exists(cancelKey(spec.id)).then((n) => n > 0 && controller.abort(), () => {});
    }, 1000);
    try {
      const result = await local.run({ ...spec, data: { ...spec.data, dir } }, {
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'checkpoint') void job.updateData({ ...spec, resume: event.checkpoint }).catch(() => {});
          else void job.updateProgress(event as unknown as object).catch(() => {});
        },
      });
      if (closing && result.status === 'cancelled') {
        // Shutting down: hand the job back so another worker runs it now, not after its lock expires.
        await job.moveToDelayed(Date.now(), token);
        options.onJob?.('returned', spec.id);
        throw new DelayedError();
      }
      options.onJob?.('finished', spec.id, result.status);
      return result;
    } catch (error) {
      if (error instanceof DelayedError) throw error;
      options.onJob?.('failed', spec.id, (error as Error).message);
      // Bad input fails the same way everywhere: do not retry it.
      if (error instanceof JobError && error.exitCode === 2) throw new UnrecoverableError(error.message);
      throw error;
    } finally {
      clearInterval(watch);
      running.delete(spec.id);
    }
  };

  const worker = new Worker(QUEUE_NAME, process, {
    connection: connection(address),
    concurrency: local.capacity,
    lockDuration: lockSeconds * 1000,
    stalledInterval: Math.max(1000, (lockSeconds * 1000) / 2),
    maxStalledCount: 2,
  });
  worker.on('error', () => {}); // connection hiccups: ioredis reconnects by itself
  await worker.waitUntilReady();
  return {
    async close() {
      closing = true;
      for (const controller of running.values()) controller.abort();
      await worker.close();
      await local.close();
      redis.disconnect();
    },
  };
}
