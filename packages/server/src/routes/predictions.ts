/**
 * Recorded predictions: a page at a time, newest first, filtered by model, predicted class, or
 * only the wrong ones (those with a known true label that differs); each with the URL of the
 * 28×28 image the model saw. Tokens with the 'train' scope see every prediction (the CLI's and
 * evaluations' too); a 'predict' token sees the ones made under its own name.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { encode as encodePng } from 'fast-png';
import { allows } from '../accounts.js';
import { errorReplies, HttpError } from '../errors.js';
import { classNamesOf } from '../predictor.js';
import type { ServerContext } from '../context.js';

const idParams = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] } as const;

const storedPrediction = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    model_id: { type: 'integer' },
    model: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    created_by: { type: ['string', 'null'] },
    origin: { type: 'string', description: "who made it: 'api', 'predict' (the CLI), 'evaluate'" },
    input: { type: 'string', description: 'what was classified: a file name, a request field, "test[12]"' },
    label: { type: 'integer', description: 'the predicted class index' },
    class: { type: ['string', 'null'] },
    true_label: { type: ['integer', 'null'], description: 'the true class, when it was given' },
    true_class: { type: ['string', 'null'] },
    probability: { type: 'number', description: 'of the predicted class' },
    image: { type: 'string', description: 'URL of the 28×28 PNG the model saw' },
  },
} as const;

interface PredictionRow {
  id: number;
  model_id: number;
  model: string | null;
  created_at: string;
  created_by: string | null;
  origin: string;
  input: string;
  predicted: number;
  true_label: number | null;
  confidence: number;
  training_json: string | null;
  dataset_id: number | null;
}

const COLUMNS = `p.id, p.model_id, m.name AS model, p.created_at, p.created_by, p.origin, p.input, p.predicted, p.true_label, p.confidence,
  m.training_json, m.dataset_id`;

/** Whose predictions a request may see: everyone's with 'train', else its own. */
function visibility(request: FastifyRequest): { where: string; params: string[] } {
  const auth = request.auth!;
  if (allows(auth.scope, 'train')) return { where: '1 = 1', params: [] };
  return { where: 'p.created_by = ?', params: [auth.userName ?? auth.name ?? ''] };
}

export function predictionRoutes(app: FastifyInstance, { store }: ServerContext): void {
  const view = async (rows: PredictionRow[]) => {
    const names = new Map<number, string[]>();
    for (const row of rows) if (!names.has(Number(row.model_id))) names.set(Number(row.model_id), await classNamesOf(store, row));
    return rows.map((r) => {
      const classNames = names.get(Number(r.model_id))!;
      const trueLabel = r.true_label === null ? null : Number(r.true_label);
      return {
        id: Number(r.id), model_id: Number(r.model_id), model: r.model, created_at: String(r.created_at), created_by: r.created_by, origin: r.origin, input: r.input,
        label: Number(r.predicted), class: classNames[Number(r.predicted)] ?? null,
        true_label: trueLabel, true_class: trueLabel === null ? null : classNames[trueLabel] ?? null,
        probability: Number(r.confidence), image: `/api/v1/predictions/${Number(r.id)}/image.png`,
      };
    });
  };

  app.get<{ Querystring: { model?: number; class?: number; wrong?: boolean; origin?: string; offset: number; limit: number } }>('/api/v1/predictions', {
    config: { scope: 'predict' },
    schema: {
      tags: ['predict'],
      summary: 'Recorded predictions, newest first, a page at a time',
      querystring: {
        type: 'object',
        properties: {
          model: { type: 'integer', minimum: 1, description: 'only this model' },
          class: { type: 'integer', minimum: 0, description: 'only those predicted as this class (index)' },
          wrong: { type: 'boolean', description: 'true: only those whose true label is known and differs' },
          origin: { type: 'string', enum: ['api', 'predict', 'evaluate'] },
          offset: { type: 'integer', minimum: 0, default: 0 },
          limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
        },
        additionalProperties: false,
      },
      response: {
        200: { type: 'object', properties: { total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' }, items: { type: 'array', items: storedPrediction } } },
        ...errorReplies(400),
      },
    },
  }, async (request) => {
    const { model, wrong, origin, offset, limit } = request.query;
    const predicted = request.query.class;
    const seen = visibility(request);
    const where = [seen.where];
    const params: Array<string | number> = [...seen.params];
    if (model !== undefined) (where.push('p.model_id = ?'), params.push(model));
    if (predicted !== undefined) (where.push('p.predicted = ?'), params.push(predicted));
    if (wrong === true) where.push('p.true_label IS NOT NULL AND p.true_label <> p.predicted');
    if (wrong === false) where.push('(p.true_label IS NULL OR p.true_label = p.predicted)');
    if (origin !== undefined) (where.push('p.origin = ?'), params.push(origin));
    const filter = where.join(' AND ');
    const [{ n }] = await store.driver.all<{ n: number }>(`SELECT COUNT(*) AS n FROM predictions p WHERE ${filter}`, params);
    const rows = await store.driver.all<PredictionRow>(
      `SELECT ${COLUMNS} FROM predictions p JOIN models m ON m.id = p.model_id WHERE ${filter} ORDER BY p.id DESC LIMIT ? OFFSET ?`,
      [...params, limit, offset],
    );
    return { total: Number(n), offset, limit, items: await view(rows) };
  });

  const find = async (request: FastifyRequest<{ Params: { id: number } }>): Promise<PredictionRow & { pixels: Uint8Array | null; probabilities: string }> => {
    const seen = visibility(request);
    const rows = await store.driver.all<PredictionRow & { pixels: Uint8Array | null; probabilities: string }>(
      `SELECT ${COLUMNS}, COALESCE(i.pixels, p.pixels) AS pixels, p.probabilities FROM predictions p JOIN models m ON m.id = p.model_id
       LEFT JOIN images i ON i.id = p.image_id WHERE p.id = ? AND ${seen.where}`,
      [request.params.id, ...seen.params],
    );
    if (!rows[0]) throw new HttpError(404, `no prediction ${request.params.id}`, 'id');
    return rows[0];
  };

  app.get<{ Params: { id: number } }>('/api/v1/predictions/:id', {
    config: { scope: 'predict' },
    schema: {
      tags: ['predict'], summary: 'One recorded prediction, with every probability', params: idParams,
      response: { 200: { type: 'object', properties: { ...storedPrediction.properties, probabilities: { type: 'array', items: { type: 'number' } } } }, ...errorReplies(404) },
    },
  }, async (request) => {
    const row = await find(request);
    const [item] = await view([row]);
    return { ...item, probabilities: JSON.parse(String(row.probabilities)) as number[] };
  });

  app.get<{ Params: { id: number } }>('/api/v1/predictions/:id/image.png', {
    config: { scope: 'predict' },
    schema: { tags: ['predict'], summary: 'The 28×28 image the model saw, as a gray PNG', params: idParams, response: errorReplies(404) },
  }, async (request, reply) => {
    const row = await find(request);
    const pixels = row.pixels ? new Uint8Array(row.pixels) : null;
    const side = pixels ? Math.round(Math.sqrt(pixels.length)) : 0;
    if (!pixels || side * side !== pixels.length || side === 0) throw new HttpError(404, `prediction ${request.params.id} kept no image`, 'id');
    const png = encodePng({ width: side, height: side, data: pixels, depth: 8, channels: 1 });
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(Buffer.from(png));
  });
}
