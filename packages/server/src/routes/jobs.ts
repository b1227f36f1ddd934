/**
 * Training jobs: POST a model definition and a dataset (queued, then trained in the background),
 * GET status and history, follow progress as Server-Sent Events, cancel.
 *
 * Events (text/event-stream): `status` (first, with the job as it is, then at every change),
 * `batch` (every `progress_every` batches: epoch, batch, batches, loss, accuracy), `epoch` (loss,
 * accuracy, val_loss, val_accuracy, seconds). The stream ends after the job's final status.
 */
import type { FastifyInstance } from 'fastify';
import { CNN_LAYERS, ConfigError, DescentError, checkDefinition, parseLayers } from '@descent/engine';
import { DATASET_NAME, type DatasetSummary } from '@descent/store';
import { errorReplies, HttpError } from '../errors.js';
import type { ServerContext } from '../context.js';
import type { JobDefinition, JobStreamEvent, TrainingService } from '../training.js';

const idParams = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] } as const;

export const jobDefinitionSchema = {
  type: 'object',
  properties: {
    dataset: { type: 'string', pattern: DATASET_NAME.source, description: 'the dataset to train on (its train split; its test split tests the model)' },
    name: { type: 'string', minLength: 1, maxLength: 150, pattern: '^[^\\x00-\\x1f]+$', description: 'the model\'s name (default: <dataset>-job-<id>)' },
    model: {
      type: 'object',
      description: 'Flatten → Dense(h, relu) [→ Dropout] … → Dense(classes, softmax)',
      properties: {
        hidden: { type: 'array', minItems: 0, maxItems: 8, items: { type: 'integer', minimum: 1, maximum: 4096 }, default: [128], description: 'units of each hidden layer' },
        dropout: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0, description: 'dropout rate after each hidden layer' },
        layers: {
          type: 'string', minLength: 1, maxLength: 2000,
          description: "instead of hidden and dropout: a layer spec as `descent train --layers` takes it, e.g. 'conv2d:32:3:relu,maxpool:2,conv2d:64:3:relu,maxpool:2,flatten,dense:128:relu' ('cnn': the tutorial CNN); the softmax output is added",
        },
      },
      additionalProperties: false,
      default: {},
    },
    optimizer: { type: 'string', enum: ['adam', 'sgd'], default: 'adam' },
    learning_rate: { type: 'number', exclusiveMinimum: 0, maximum: 10, description: 'default 0.001 for adam, 0.01 for sgd' },
    momentum: { type: 'number', minimum: 0, exclusiveMaximum: 1, description: 'sgd only' },
    epochs: { type: 'integer', minimum: 1, maximum: 1000, default: 5 },
    batch_size: { type: 'integer', minimum: 1, maximum: 65536, default: 32 },
    validation_split: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0, description: 'the last fraction of the training images, held out' },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295, default: 42 },
    progress_every: { type: 'integer', minimum: 0, maximum: 1000000, default: 50, description: 'a progress event every this many batches (0: only at epoch ends)' },
  },
  required: ['dataset'],
  additionalProperties: false,
} as const;

const historySchema = { type: 'object', additionalProperties: { type: 'array', items: { type: ['number', 'null'] } } } as const;
const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    status: { type: 'string', enum: ['queued', 'running', 'complete', 'stopped-early', 'terminated-nan', 'interrupted', 'failed', 'cancelled'] },
    dataset: { type: ['string', 'null'] },
    definition: { type: 'object', additionalProperties: true },
    epochs: { type: 'integer' },
    epochs_done: { type: 'integer' },
    history: historySchema,
    model_id: { type: ['integer', 'null'] },
    message: { type: ['string', 'null'] },
    created_by: { type: ['string', 'null'] },
    started_at: { type: 'string' },
    finished_at: { type: ['string', 'null'] },
    links: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

/**
 * A model the job could build (grammar, every shape, the size caps), checked before the job is
 * queued and without making any weight: a layer spec, or hidden layers of the dense model.
 */
function checkModel(model: { layers?: string; hidden: number[] }, dataset: DatasetSummary): void {
  const field = model.layers ? 'model.layers' : 'model.hidden';
  const spec = model.layers ?? ['flatten', ...model.hidden.map((units) => `dense:${units}:relu`)].join(',');
  try {
    checkDefinition(parseLayers(spec), { inputShape: [dataset.height, dataset.width], classes: dataset.classNames.length, source: field });
  } catch (error) {
    if (error instanceof ConfigError || error instanceof DescentError) throw new HttpError(400, (error as Error).message.startsWith(field) ? (error as Error).message : `${field}: ${(error as Error).message}`, field);
    throw error;
  }
}

function links(id: number, modelId: number | null) {
  return { self: `/api/v1/jobs/${id}`, events: `/api/v1/jobs/${id}/events`, cancel: `/api/v1/jobs/${id}/cancel`, ...(modelId ? { model: `/api/v1/models/${modelId}` } : {}) };
}

export function jobRoutes(app: FastifyInstance, { store, training }: ServerContext & { training: TrainingService }): void {
  // Open event streams end when the server closes (they would hold it open).
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });
  const find = async (id: number) => {
    const job = await training.get(id);
    if (!job) throw new HttpError(404, `no job ${id}`, 'id');
    return { ...job, links: links(id, job.model_id) };
  };

  app.post<{ Body: JobDefinition }>('/api/v1/jobs', {
    config: { scope: 'train' },
    schema: { tags: ['jobs'], summary: 'Start a training job: a model definition and a dataset', body: jobDefinitionSchema, response: { 202: jobSchema, ...errorReplies(400, 404) } },
  }, async (request, reply) => {
    const definition = request.body;
    if (definition.momentum !== undefined && definition.optimizer !== 'sgd') throw new HttpError(400, 'momentum: applies to the sgd optimizer only', 'momentum');
    if (definition.model.layers === 'cnn') definition.model.layers = CNN_LAYERS;
    const dataset = await store.getDataset(definition.dataset);
    if (!dataset) throw new HttpError(404, `dataset: no dataset ${definition.dataset}`, 'dataset');
    const trainImages = dataset.counts.train.reduce((a, b) => a + b, 0);
    if (trainImages === 0) throw new HttpError(400, `dataset: ${dataset.name} has no training images yet`, 'dataset');
    if (dataset.classNames.length < 2) throw new HttpError(400, `dataset: ${dataset.name} needs at least 2 classes`, 'dataset');
    if (definition.validation_split > 0 && Math.floor(trainImages * (1 - definition.validation_split)) < 1) throw new HttpError(400, 'validation_split: leaves no training images', 'validation_split');
    checkModel(definition.model, dataset);
    const id = await training.submit(definition, request.auth?.userName ?? request.auth?.name ?? null);
    return reply.code(202).header('location', `/api/v1/jobs/${id}`).send(await find(id));
  });

  app.get<{ Querystring: { offset: number; limit: number } }>('/api/v1/jobs', {
    config: { scope: 'train' },
    schema: {
      tags: ['jobs'], summary: 'Training jobs, newest first',
      querystring: { type: 'object', properties: { offset: { type: 'integer', minimum: 0, default: 0 }, limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } }, additionalProperties: false },
      response: { 200: { type: 'object', properties: { total: { type: 'integer' }, jobs: { type: 'array', items: jobSchema } } }, ...errorReplies(400) },
    },
  }, async (request) => {
    const { total, jobs } = await training.list(request.query.limit, request.query.offset);
    return { total, jobs: jobs.map((job) => ({ ...job, links: links(job.id, job.model_id) })) };
  });

  app.get<{ Params: { id: number } }>('/api/v1/jobs/:id', {
    config: { scope: 'train' },
    schema: { tags: ['jobs'], summary: 'A job: status, definition, history per epoch, and its model once trained', params: idParams, response: { 200: jobSchema, ...errorReplies(404) } },
  }, async (request) => find(request.params.id));

  app.post<{ Params: { id: number } }>('/api/v1/jobs/:id/cancel', {
    config: { scope: 'train' },
    schema: { tags: ['jobs'], summary: 'Cancel a queued or running job (it stops after its current batch)', params: idParams, response: { 200: jobSchema, ...errorReplies(404, 409) } },
  }, async (request) => {
    const job = await find(request.params.id);
    if (!(await training.cancel(job.id))) throw new HttpError(409, `job ${job.id} has already ended (${job.status})`, 'id');
    return find(job.id);
  });

  app.get<{ Params: { id: number } }>('/api/v1/jobs/:id/events', {
    config: { scope: 'train' },
    schema: {
      tags: ['jobs'], summary: 'Progress as Server-Sent Events: status, batch (every progress_every batches) and epoch events',
      params: idParams,
      response: { 200: { type: 'string', description: 'text/event-stream' }, ...errorReplies(404) },
    },
  }, async (request, reply) => {
    const job = await find(request.params.id);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    });
    const write = (event: JobStreamEvent) => raw.write(`event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`);
    let ended = false;
    let unsubscribe = (): void => {};
    const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), 15_000);
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      raw.end();
    };
    unsubscribe = training.subscribe(job.id, (event) => {
      write(event);
      if (event.event === 'status' && training.isFinished(event.data.status as never)) end();
    });
    write({ event: 'status', data: { id: job.id, status: job.status, epochs_done: job.epochs_done, epochs: job.epochs, history: job.history, model_id: job.model_id } });
    if (training.isFinished(job.status)) end();
    raw.on('close', end);
    streams.add(end);
    raw.on('close', () => streams.delete(end));
  });
}
