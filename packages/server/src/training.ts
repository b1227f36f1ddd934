/**
 * Background training. A job is a row of `training_runs` (status, settings, history) and of
 * `training_jobs` (the job spec and its last checkpoint), so the queue lives in the store and
 * survives restarts. At most `capacity` jobs run at once, on @descent/jobs' worker threads; the
 * rest wait in order. Progress goes to Server-Sent Events listeners; a checkpoint is written at
 * every epoch's end.
 *
 * After a crash, jobs that were running start again from their last checkpoint (the end of an
 * epoch), and end with the same weights as an uninterrupted run. `close()` (SIGTERM) stops running
 * jobs after their current batch, saves where they stopped, and marks them interrupted, so the
 * next start continues them from that batch.
 */
import { randomUUID } from 'node:crypto';
import {
  GENERATED_BY, modelJsonFromArtifacts, modelToArtifacts, type HistoryData,
} from '@descent/engine';
import {
  buildClassifier, decodeWeights, trainingJob, type JobCheckpoint, type JobEvent, type JobResult, type JobRunner, type TrainingJobSpec,
} from '@descent/jobs';
import { timestamp, type Store } from '@descent/store';
import type { FastifyBaseLogger } from 'fastify';

export const JOB_STATUSES = ['queued', 'running', 'complete', 'stopped-early', 'terminated-nan', 'interrupted', 'failed', 'cancelled'] as const;
export type JobStatusName = (typeof JOB_STATUSES)[number];
const FINISHED: readonly JobStatusName[] = ['complete', 'stopped-early', 'terminated-nan', 'failed', 'cancelled'];

/** A model definition as the API takes it (snake_case, as Keras spells its arguments). */
export interface JobDefinition {
  dataset: string;
  name?: string;
  model: { hidden: number[]; dropout: number; layers?: string };
  optimizer: 'adam' | 'sgd';
  learning_rate?: number;
  momentum?: number;
  epochs: number;
  batch_size: number;
  validation_split: number;
  seed: number;
  progress_every: number;
}

export interface JobView {
  id: number;
  status: JobStatusName;
  dataset: string | null;
  definition: JobDefinition;
  epochs: number;
  epochs_done: number;
  history: HistoryData | Record<string, never>;
  model_id: number | null;
  message: string | null;
  created_by: string | null;
  started_at: string;
  finished_at: string | null;
}

export interface JobStreamEvent {
  event: 'status' | 'batch' | 'epoch';
  data: Record<string, unknown>;
}

type Listener = (event: JobStreamEvent) => void;

interface Running {
  controller: AbortController;
  done: Promise<void>;
  epochsDone: number;
}

export class TrainingService {
  private readonly queue: number[] = [];
  private readonly running = new Map<number, Running>();
  private readonly listeners = new Map<number, Set<Listener>>();
  private closing = false;

  constructor(
    private readonly store: Store,
    private readonly runner: JobRunner,
    /** The --db value the worker threads open to read datasets (never stored with the job). */
    private readonly db: string,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Queues the jobs that were queued, running or interrupted when the server last stopped. */
  async start(): Promise<void> {
    const rows = await this.store.driver.all<{ id: number }>(
      "SELECT id FROM training_runs WHERE status IN ('queued', 'running', 'interrupted') AND id IN (SELECT run_id FROM training_jobs) ORDER BY id",
    );
    for (const row of rows) {
      await this.store.updateRun(Number(row.id), { status: 'queued' });
      this.queue.push(Number(row.id));
    }
    if (rows.length) this.log.info({ jobs: rows.map((r) => Number(r.id)) }, 'resuming training jobs');
    this.dispatch();
  }

  get counts(): { queued: number; running: number } {
    return { queued: this.queue.length, running: this.running.size };
  }

  async submit(definition: JobDefinition, createdBy: string | null): Promise<number> {
    const spec = trainingJob({
      id: randomUUID(),
      data: { dataset: definition.dataset, dir: null },
      model: { hidden: definition.model.layers ? [] : definition.model.hidden, dropout: definition.model.layers ? 0 : definition.model.dropout, layers: definition.model.layers ?? null },
      optimizer: { name: definition.optimizer, learningRate: definition.learning_rate ?? (definition.optimizer === 'sgd' ? 0.01 : 0.001), momentum: definition.momentum ?? 0 },
      epochs: definition.epochs,
      batchSize: definition.batch_size,
      validationSplit: definition.validation_split,
      seed: definition.seed,
      progressEvery: definition.progress_every,
      checkpoints: true,
      evaluate: true,
    });
    const id = await this.store.driver.transaction(async (tx) => {
      const [dataset] = await tx.all<{ id: number }>('SELECT id FROM datasets WHERE name = ?', [definition.dataset]);
      const { lastId } = await tx.run(
        'INSERT INTO training_runs (dataset_id, status, settings, history, epochs_done, started_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [dataset ? Number(dataset.id) : null, 'queued', JSON.stringify(definition), '{}', 0, timestamp(), createdBy],
      );
      await tx.run('INSERT INTO training_jobs (run_id, spec, checkpoint, updated_at) VALUES (?, ?, ?, ?)', [lastId, JSON.stringify(spec), null, timestamp()]);
      return lastId;
    });
    this.queue.push(id);
    this.dispatch();
    return id;
  }

  async get(id: number): Promise<JobView | undefined> {
    return (await this.views('WHERE r.id = ?', [id]))[0];
  }

  async list(limit: number, offset: number): Promise<{ total: number; jobs: JobView[] }> {
    const [{ n }] = await this.store.driver.all<{ n: number }>('SELECT COUNT(*) AS n FROM training_runs WHERE id IN (SELECT run_id FROM training_jobs)');
    return { total: Number(n), jobs: await this.views('ORDER BY r.id DESC LIMIT ? OFFSET ?', [limit, offset]) };
  }

  private async views(where: string, params: Array<string | number>): Promise<JobView[]> {
    const rows = await this.store.driver.all<Record<string, unknown>>(
      `SELECT r.id, r.status, d.name AS dataset, r.settings, r.history, r.epochs_done, r.model_id, r.message, r.created_by, r.started_at, r.finished_at
       FROM training_runs r JOIN training_jobs j ON j.run_id = r.id LEFT JOIN datasets d ON d.id = r.dataset_id ${where}`,
      params,
    );
    return rows.map((r) => {
      const definition = JSON.parse(String(r.settings)) as JobDefinition;
      return {
        id: Number(r.id),
        status: r.status as JobStatusName,
        dataset: r.dataset === null ? null : String(r.dataset),
        definition,
        epochs: definition.epochs,
        epochs_done: Number(r.epochs_done),
        history: JSON.parse(String(r.history)) as HistoryData,
        model_id: r.model_id === null ? null : Number(r.model_id),
        message: r.message === null ? null : String(r.message),
        created_by: r.created_by === null ? null : String(r.created_by),
        started_at: String(r.started_at),
        finished_at: r.finished_at === null ? null : String(r.finished_at),
      };
    });
  }

  /** Cancels a queued or running job; false when it had already finished. */
  async cancel(id: number): Promise<boolean> {
    const queued = this.queue.indexOf(id);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      await this.finish(id, 'cancelled', null);
      return true;
    }
    const running = this.running.get(id);
    if (running) {
      running.controller.abort('cancel');
      await running.done;
      return true;
    }
    return false;
  }

  /** Listens to a job's progress; returns the function that stops listening. */
  subscribe(id: number, listener: Listener): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set!.delete(listener);
      if (set!.size === 0) this.listeners.delete(id);
    };
  }

  isFinished(status: JobStatusName): boolean {
    return FINISHED.includes(status);
  }

  /** Whether a job that is queued or running trains on this dataset. */
  async datasetInUse(datasetId: number): Promise<boolean> {
    const rows = await this.store.driver.all("SELECT id FROM training_runs WHERE dataset_id = ? AND status IN ('queued', 'running', 'interrupted')", [datasetId]);
    return rows.length > 0;
  }

  /** Stops running jobs after their current batch and saves where they stopped; queued jobs stay queued. */
  async close(): Promise<void> {
    this.closing = true;
    this.queue.length = 0;
    const running = [...this.running.values()];
    for (const job of running) job.controller.abort('shutdown');
    await Promise.all(running.map((job) => job.done));
    await this.runner.close();
  }

  private emit(id: number, event: JobStreamEvent): void {
    for (const listener of this.listeners.get(id) ?? []) listener(event);
  }

  private dispatch(): void {
    while (!this.closing && this.running.size < this.runner.capacity && this.queue.length > 0) {
      const id = this.queue.shift()!;
      const controller = new AbortController();
      const job: Running = { controller, done: Promise.resolve(), epochsDone: 0 };
      this.running.set(id, job);
      job.done = this.launch(id, controller.signal, job)
        .catch((error: unknown) => this.log.error({ err: error, job: id }, 'training job bookkeeping failed'))
        .finally(() => {
          this.running.delete(id);
          this.dispatch();
        });
    }
  }

  private async launch(id: number, signal: AbortSignal, job: Running): Promise<void> {
    const [row] = await this.store.driver.all<{ spec: string; checkpoint: string | null }>('SELECT spec, checkpoint FROM training_jobs WHERE run_id = ?', [id]);
    if (!row) return;
    const stored = JSON.parse(row.spec) as TrainingJobSpec;
    const checkpoint = row.checkpoint === null ? null : (JSON.parse(row.checkpoint) as JobCheckpoint);
    const spec: TrainingJobSpec = { ...stored, data: { ...stored.data, store: this.db }, resume: checkpoint };
    job.epochsDone = checkpoint?.epochsCompleted ?? 0;
    await this.store.updateRun(id, { status: 'running' });
    this.emit(id, { event: 'status', data: { id, status: 'running', epochs_done: job.epochsDone } });
    this.log.info({ job: id, resume: checkpoint ? { epoch: checkpoint.position?.epoch ?? checkpoint.epochsCompleted, batch: checkpoint.position?.batch ?? 0 } : null }, 'training job started');

    // Checkpoints are written one at a time, in order; the result waits for the last one.
    let writes = Promise.resolve();
    const onEvent = (event: JobEvent): void => {
      if (event.type === 'batch') {
        this.emit(id, { event: 'batch', data: { epoch: event.epoch + 1, batch: event.batch, batches: event.batches, loss: event.loss, accuracy: event.accuracy } });
      } else if (event.type === 'epoch') {
        this.emit(id, {
          event: 'epoch',
          data: { epoch: event.epoch + 1, loss: event.loss, accuracy: event.accuracy, val_loss: event.val_loss, val_accuracy: event.val_accuracy, seconds: event.seconds },
        });
      } else {
        const saved = event.checkpoint;
        job.epochsDone = saved.epochsCompleted;
        writes = writes.then(() => this.saveCheckpoint(id, saved));
      }
    };
    let result: JobResult;
    try {
      result = await this.runner.run(spec, { onEvent, signal });
    } catch (error) {
      await writes;
      if (this.closing) return; // the runner was closed under it: the last checkpoint stands
      await this.finish(id, 'failed', (error as Error).message);
      return;
    }
    await writes;
    if (result.status === 'cancelled') {
      if (signal.reason === 'shutdown' && result.checkpoint) {
        await this.saveCheckpoint(id, result.checkpoint);
        await this.store.updateRun(id, { status: 'interrupted' });
        this.emit(id, { event: 'status', data: { id, status: 'interrupted', epochs_done: result.checkpoint.epochsCompleted } });
        this.log.info({ job: id, epoch: result.checkpoint.position?.epoch, batch: result.checkpoint.position?.batch }, 'training job interrupted; it continues at the next start');
      } else {
        await this.finish(id, 'cancelled', null);
      }
      return;
    }
    await this.complete(id, stored, result);
  }

  private async saveCheckpoint(id: number, checkpoint: JobCheckpoint): Promise<void> {
    await this.store.driver.transaction(async (tx) => {
      await tx.run('UPDATE training_jobs SET checkpoint = ?, updated_at = ? WHERE run_id = ?', [JSON.stringify(checkpoint), timestamp(), id]);
      await tx.run('UPDATE training_runs SET history = ?, epochs_done = ? WHERE id = ?', [JSON.stringify(checkpoint.history), checkpoint.epochsCompleted, id]);
    });
  }

  /** Saves the model and marks the job finished, in one transaction: after a crash, either both happened or neither. */
  private async complete(id: number, spec: TrainingJobSpec, result: JobResult): Promise<void> {
    const view = (await this.get(id))!;
    const dataset = await this.store.getDataset(spec.data.dataset);
    const classNames = dataset?.classNames ?? [];
    const model = buildClassifier(spec.model, [dataset?.height ?? 28, dataset?.width ?? 28], classNames.length, spec.seed);
    let modelId: number;
    try {
      model.setWeights(decodeWeights(result.weights));
      const artifacts = modelToArtifacts(model);
      const modelJson = JSON.stringify(modelJsonFromArtifacts(artifacts));
      const training = {
        generatedBy: GENERATED_BY,
        dataset: spec.data.dataset,
        classNames,
        seed: spec.seed,
        epochs: spec.epochs,
        hyperparameters: view.definition,
        history: result.history,
        status: result.status,
        epochsCompleted: result.history.epoch.length > 0 ? result.history.epoch[result.history.epoch.length - 1] + 1 : 0,
        job: id,
        seconds: result.seconds,
        ...(result.test ? { test: { loss: result.test.loss, accuracy: result.test.accuracy }, confusion: result.test.confusion } : {}),
      };
      modelId = await this.store.driver.transaction(async (tx) => {
        const saved = await this.store.saveModel({
          name: view.definition.name ?? `${spec.data.dataset}-job-${id}`,
          dataset: spec.data.dataset,
          architecture: JSON.stringify(artifacts.modelTopology),
          modelJson,
          weights: new Uint8Array(artifacts.weightData),
          trainingJson: JSON.stringify(training),
          testLoss: result.test?.loss ?? null,
          testAccuracy: result.test?.accuracy ?? null,
          createdBy: view.created_by,
        }, { tx });
        await tx.run('UPDATE training_runs SET status = ?, model_id = ?, history = ?, epochs_done = ?, finished_at = ? WHERE id = ?', [
          result.status, saved.id, JSON.stringify(result.history), training.epochsCompleted, timestamp(), id,
        ]);
        await tx.run('UPDATE training_jobs SET checkpoint = NULL, updated_at = ? WHERE run_id = ?', [timestamp(), id]);
        return saved.id;
      });
    } finally {
      model.dispose();
    }
    this.emit(id, { event: 'status', data: { id, status: result.status, model_id: modelId, test: result.test ? { loss: result.test.loss, accuracy: result.test.accuracy } : null } });
    this.log.info({ job: id, model: modelId, status: result.status, seconds: Math.round(result.seconds * 1000) / 1000 }, 'training job finished');
  }

  private async finish(id: number, status: JobStatusName, message: string | null): Promise<void> {
    await this.store.driver.transaction(async (tx) => {
      await tx.run('UPDATE training_runs SET status = ?, message = ?, finished_at = ? WHERE id = ?', [status, message?.slice(0, 1000) ?? null, timestamp(), id]);
      await tx.run('UPDATE training_jobs SET checkpoint = NULL, updated_at = ? WHERE run_id = ?', [timestamp(), id]);
    });
    this.emit(id, { event: 'status', data: { id, status, message } });
    this.log.info({ job: id, status, message }, 'training job ended');
  }
}
