/**
 * Models: list, show (architecture, test metrics, confusion matrix), download (model.json,
 * weights.bin, or both in a zip), delete; and predictions.
 *
 * POST /api/v1/models/{id}/predict takes
 *   - JSON `{"image": "<base64 PNG/JPEG>"}` → one result, or `{"images": [...]}` → `{"predictions": [...]}`;
 *   - a multipart form with an image file (field `image` or `file`);
 *   - a raw `image/png` or `image/jpeg` body.
 * `?top=k` (default 3) sets how many classes `top` lists; `?record=false` skips the predictions table.
 * The reply's Server-Timing header says where the time went: parse, decode, predict, store.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import yazl from 'yazl';
import { decodeUpload, type ImageLimits } from '../images.js';
import { errorReplies, HttpError } from '../errors.js';
import type { Timings } from '../timings.js';
import type { PredictionBatcher, Predictor, PredictionResult } from '../predictor.js';
import type { ServerContext } from '../context.js';

const idParams = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] } as const;

const classScore = { type: 'object', properties: { label: { type: 'integer' }, class: { type: 'string' }, probability: { type: 'number' } } } as const;
const predictionSchema = {
  type: 'object',
  properties: {
    label: { type: 'integer', description: 'the predicted class index' },
    class: { type: 'string', description: 'the predicted class name' },
    probabilities: { type: 'array', items: { type: 'number' }, description: 'one per class, in class order' },
    top: { type: 'array', items: classScore, description: 'the k most likely classes, most likely first' },
  },
} as const;

const modelSummary = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    dataset: { type: ['string', 'null'] },
    test_loss: { type: ['number', 'null'] },
    test_accuracy: { type: ['number', 'null'] },
    created_at: { type: 'string' },
    created_by: { type: ['string', 'null'] },
    predictions: { type: 'integer' },
  },
} as const;

/** Most images in one JSON request; base64 strings of at most this many characters each. */
export const MAX_IMAGES_PER_REQUEST = 64;

export function modelRoutes(app: FastifyInstance, { store, predictor, batcher, timings, imageLimits, bodyLimit }: ServerContext & {
  predictor: Predictor; batcher: PredictionBatcher; timings: Timings; imageLimits: ImageLimits; bodyLimit: number;
}): void {
  const maxBase64 = Math.ceil(imageLimits.maxBytes / 3) * 4;

  app.get('/api/v1/models', {
    config: { scope: 'predict' },
    schema: { tags: ['models'], summary: 'List models', response: { 200: { type: 'object', properties: { models: { type: 'array', items: modelSummary } } }, ...errorReplies() } },
  }, async () => {
    const models = await store.listModels();
    return { models: models.map((m) => ({ id: m.id, name: m.name, dataset: m.dataset, test_loss: m.testLoss, test_accuracy: m.testAccuracy, created_at: m.createdAt, created_by: m.createdBy, predictions: m.predictions })) };
  });

  app.get<{ Params: { id: number } }>('/api/v1/models/:id', {
    config: { scope: 'predict' },
    schema: {
      tags: ['models'], summary: 'A model: architecture, class names, test metrics, confusion matrix and training history',
      params: idParams,
      response: {
        200: {
          type: 'object',
          properties: {
            ...modelSummary.properties,
            class_names: { type: 'array', items: { type: 'string' } },
            architecture: { type: 'object', additionalProperties: true },
            confusion: { type: ['array', 'null'], items: { type: 'array', items: { type: 'integer' } }, description: 'confusion[true][predicted] on the test split' },
            history: { type: ['object', 'null'], additionalProperties: true },
            hyperparameters: { type: ['object', 'null'], additionalProperties: true },
            files: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
        ...errorReplies(404),
      },
    },
  }, async (request) => {
    const row = await modelRow(store, request.params.id);
    const training = row.training_json ? (JSON.parse(row.training_json) as Record<string, unknown>) : {};
    const summary = (await store.listModels()).find((m) => m.id === request.params.id)!;
    const base = `/api/v1/models/${request.params.id}`;
    return {
      id: summary.id, name: summary.name, dataset: summary.dataset, test_loss: summary.testLoss, test_accuracy: summary.testAccuracy,
      created_at: summary.createdAt, created_by: summary.createdBy, predictions: summary.predictions,
      class_names: Array.isArray(training.classNames) ? training.classNames : [],
      architecture: JSON.parse(row.architecture) as object,
      confusion: Array.isArray(training.confusion) ? training.confusion : null,
      history: (training.history as object | undefined) ?? null,
      hyperparameters: (training.hyperparameters as object | undefined) ?? null,
      files: { 'model.json': `${base}/model.json`, 'weights.bin': `${base}/weights.bin`, zip: `${base}/model.zip` },
    };
  });

  app.get<{ Params: { id: number } }>('/api/v1/models/:id/model.json', {
    config: { scope: 'predict' },
    schema: { tags: ['models'], summary: 'The model in the TensorFlow.js Layers format (its weights are weights.bin beside it)', params: idParams, response: errorReplies(404) },
  }, async (request, reply) => {
    const row = await modelRow(store, request.params.id);
    return reply.type('application/json; charset=utf-8').header('content-disposition', 'attachment; filename="model.json"').send(row.model_json);
  });

  app.get<{ Params: { id: number } }>('/api/v1/models/:id/weights.bin', {
    config: { scope: 'predict' },
    schema: { tags: ['models'], summary: 'The weights, little-endian float32, in the order model.json lists them', params: idParams, response: errorReplies(404) },
  }, async (request, reply) => {
    const row = await modelRow(store, request.params.id);
    return reply.type('application/octet-stream').header('content-disposition', 'attachment; filename="weights.bin"').send(Buffer.from(row.weights));
  });

  app.get<{ Params: { id: number } }>('/api/v1/models/:id/model.zip', {
    config: { scope: 'predict' },
    schema: { tags: ['models'], summary: 'model.json, weights.bin and descent-training.json in one zip', params: idParams, response: errorReplies(404) },
  }, async (request, reply) => {
    const row = await modelRow(store, request.params.id);
    const zip = new yazl.ZipFile();
    const mtime = new Date(`${row.created_at.replace(' ', 'T')}Z`);
    zip.addBuffer(Buffer.from(row.model_json), 'model.json', { mtime });
    zip.addBuffer(Buffer.from(row.weights), 'weights.bin', { mtime });
    if (row.training_json) zip.addBuffer(Buffer.from(row.training_json), 'descent-training.json', { mtime });
    zip.end();
    const chunks: Buffer[] = [];
    for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
    const name = row.name.replace(/[^A-Za-z0-9._-]/g, '_');
    return reply.type('application/zip').header('content-disposition', `attachment; filename="${name}.zip"`).send(Buffer.concat(chunks));
  });

  app.delete<{ Params: { id: number } }>('/api/v1/models/:id', {
    config: { scope: 'train' },
    schema: { tags: ['models'], summary: 'Delete a model and its recorded predictions', params: idParams, response: { 204: { type: 'null' }, ...errorReplies(404) } },
  }, async (request, reply) => {
    const { changes } = await store.driver.run('DELETE FROM models WHERE id = ?', [request.params.id]);
    if (changes === 0) throw new HttpError(404, `no model ${request.params.id}`, 'id');
    predictor.evict(request.params.id);
    return reply.code(204).send();
  });

  // ---- predict ----

  for (const type of ['image/png', 'image/jpeg']) {
    if (!app.hasContentTypeParser(type)) app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: imageLimits.maxBytes }, (_request, body, done) => done(null, body));
  }

  app.post<{ Params: { id: number }; Querystring: { top?: number; record?: boolean; true_label?: string }; Body: PredictBody | Buffer | undefined }>('/api/v1/models/:id/predict', {
    config: { scope: 'predict' },
    bodyLimit,
    schema: {
      tags: ['predict'],
      summary: 'Classify images: JSON with base64 images, a multipart form file, or a raw image/png or image/jpeg body',
      params: idParams,
      querystring: {
        type: 'object',
        properties: {
          top: { type: 'integer', minimum: 1, maximum: 1000, default: 3, description: 'how many classes `top` lists' },
          record: { type: 'boolean', default: true, description: 'false: do not store the predictions' },
          true_label: { type: 'string', minLength: 1, maxLength: 200, description: 'what the image really is (class name or index), recorded beside the prediction; for any kind of body' },
        },
        additionalProperties: false,
      },
      body: {
        content: {
          'application/json': {
            schema: {
              type: 'object',
              properties: {
                image: { type: 'string', minLength: 1, maxLength: maxBase64, description: 'a PNG or JPEG file, base64 (a data: URL prefix is allowed)' },
                images: { type: 'array', minItems: 1, maxItems: MAX_IMAGES_PER_REQUEST, items: { type: 'string', minLength: 1, maxLength: maxBase64 } },
                true_label: { type: ['string', 'integer'], description: 'what `image` really is (class name or index)' },
                true_labels: { type: 'array', maxItems: MAX_IMAGES_PER_REQUEST, items: { type: ['string', 'integer', 'null'] }, description: 'what each of `images` really is (null: unknown)' },
              },
              additionalProperties: false,
            },
          },
        },
      },
      response: {
        200: {
          type: 'object',
          properties: { ...predictionSchema.properties, predictions: { type: 'array', items: predictionSchema } },
          description: 'One image: the prediction itself. A list: `{ predictions: [...] }` in the same order.',
        },
        ...errorReplies(400, 404, 413, 415, 422),
      },
    },
  }, async (request, reply) => {
    const parsed = process.hrtime.bigint();
    const { id } = request.params;
    const loaded = await predictor.load(id);
    if (!loaded) throw new HttpError(404, `no model ${id}`, 'id');
    const top = request.query.top ?? 3;
    if (top > loaded.classNames.length) throw new HttpError(400, `top: the model has ${loaded.classNames.length} classes`, 'top');
    const inputs = await imagesOf(request, maxBase64);
    const trueLabels = trueLabelsOf(request.body, request.query.true_label, inputs.length, loaded.classNames);
    const pixels: Uint8Array[] = [];
    for (const input of inputs) pixels.push(await decodeUpload(input, imageLimits, input.field));
    const decoded = process.hrtime.bigint();
    const record = request.query.record === false ? undefined : {
      createdBy: request.auth?.userName ?? request.auth?.name ?? null, inputs: inputs.map((input) => input.name), trueLabels,
    };
    // Classified with the other requests of this turn; predict and store are the batch's forward
    // pass and commit, and waiting for the batch counts as store.
    const { results, predictNs, storeNs } = await batcher.submit(loaded, pixels, top, record);
    const phases = { decode: decoded - parsed, predict: predictNs, store: process.hrtime.bigint() - decoded - predictNs };
    if (phases.store < storeNs) phases.store = storeNs;
    timings.add(request, phases, parsed);
    reply.header('server-timing', timings.header(request, phases, parsed));
    return inputs.length === 1 && !isList(request.body) ? results[0] : { predictions: results as PredictionResult[] };
  });
}

type PredictBody = { image?: string; images?: string[]; true_label?: string | number; true_labels?: Array<string | number | null> };

/** The true labels given with a predict request (query `true_label`, or the JSON fields), as class indices; null where unknown. */
function trueLabelsOf(body: unknown, query: string | undefined, count: number, classNames: readonly string[]): Array<number | null> {
  const json = typeof body === 'object' && body !== null && !Buffer.isBuffer(body) ? (body as PredictBody) : {};
  const given: Array<{ value: string | number | null | undefined; field: string }> = json.true_labels !== undefined
    ? json.true_labels.map((value, i) => ({ value, field: `true_labels.${i}` }))
    : [{ value: json.true_label ?? query, field: 'true_label' }];
  if (json.true_labels !== undefined && json.true_labels.length !== count) {
    throw new HttpError(400, `true_labels: ${json.true_labels.length} labels for ${count} images`, 'true_labels');
  }
  if (json.true_labels === undefined && given[0].value !== undefined && count !== 1) {
    throw new HttpError(400, 'true_label: one label for several images; send true_labels, one per image', 'true_label');
  }
  const labels = given.map(({ value, field }) => {
    if (value === undefined || value === null) return null;
    const text = String(value);
    const byName = classNames.indexOf(text);
    if (byName >= 0) return byName;
    if (/^\d+$/.test(text) && Number(text) < classNames.length) return Number(text);
    throw new HttpError(400, `${field}: unknown label ${JSON.stringify(text.slice(0, 100))}; the model's classes are ${classNames.join(', ')} (or 0 to ${classNames.length - 1})`, field);
  });
  return labels.length === count ? labels : Array.from({ length: count }, () => null);
}

function isList(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Buffer.isBuffer(body) && Array.isArray((body as { images?: unknown }).images);
}

/** The images of a predict request, as bytes with a name for messages and the request field they came in. */
async function imagesOf(request: FastifyRequest, maxBase64: number): Promise<Array<{ name: string; bytes: Uint8Array; field: string }>> {
  const body = request.body as PredictBody | Buffer | undefined;
  if (Buffer.isBuffer(body)) return [{ name: 'body', bytes: body, field: 'image' }];
  if (typeof body === 'string') throw new HttpError(415, `body: send application/json, multipart/form-data, image/png or image/jpeg, not ${request.headers['content-type']?.slice(0, 60)}`, 'body');
  if (request.isMultipart()) {
    const file = await request.file({ limits: { files: 1, fields: 4, parts: 5 } });
    if (!file || (file.fieldname !== 'image' && file.fieldname !== 'file')) throw new HttpError(400, 'image: send the image as a form file named "image"', 'image');
    const bytes = await file.toBuffer();
    return [{ name: file.filename || 'image', bytes, field: 'image' }];
  }
  if (!body || (body.image === undefined) === (body.images === undefined)) {
    throw new HttpError(400, 'image: send {"image": "<base64>"} or {"images": ["<base64>", ...]} (or a multipart form, or an image/png or image/jpeg body)', 'image');
  }
  const texts = body.image !== undefined ? [body.image] : body.images!;
  return texts.map((text, i) => {
    const field = body.image !== undefined ? 'image' : `images.${i}`;
    const data = text.startsWith('data:') ? text.slice(text.indexOf(',') + 1) : text;
    if (data.length > maxBase64 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(data)) throw new HttpError(400, `${field}: not base64`, field);
    return { name: field, bytes: Buffer.from(data, 'base64'), field };
  });
}

async function modelRow(store: ServerContext['store'], id: number) {
  const rows = await store.driver.all<{ name: string; model_json: string; weights: Uint8Array; training_json: string | null; architecture: string; created_at: string }>(
    'SELECT name, model_json, weights, training_json, architecture, created_at FROM models WHERE id = ?',
    [id],
  );
  if (!rows[0]) throw new HttpError(404, `no model ${id}`, 'id');
  return { ...rows[0], created_at: String(rows[0].created_at) };
}
