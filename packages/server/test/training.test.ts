// Training in the background and predictions: a job posted over the API trains on worker threads,
// streams progress as Server-Sent Events, and saves a model that can be shown, downloaded (and
// loaded by the engine), and asked for predictions in every accepted form. Malformed model
// definitions, unknown models and bad images are 4xx JSON answers naming the field, with no rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { artifactsFromModelJson, modelFromArtifacts } from '@descent/engine';
import { CLASSES, countRows, fixtureData, fixtureZip, form, imageOf, pngOf, readEvents, startServer, type TestServer } from './helpers.js';
import { PredictionBatcher, Predictor } from '../src/predictor.js';

let t: TestServer;
let jobId: number;
let modelId: number;

const definition = { dataset: 'clothes', model: { hidden: [32] }, epochs: 2, batch_size: 32, progress_every: 5, seed: 7 };

beforeAll(async () => {
  t = await startServer({ rateLimit: 0, workers: 2 });
  expect((await t.request('/api/v1/datasets', { method: 'POST', json: { name: 'clothes', classes: CLASSES } })).status).toBe(201);
  const upload = await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [await fixtureZip(30, 10), 'clothes.zip'] }) });
  expect(upload.status).toBe(201);
});
afterAll(async () => t?.close());

describe('training jobs', () => {
  it('refuses malformed model definitions with 400 naming the field, and queues nothing', async () => {
    const runs = await countRows(t.store, 'training_runs');
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ ...definition, model: { hidden: [0] } }, 'model.hidden.0', /must be >= 1/],
      [{ ...definition, epochs: -1 }, 'epochs', /must be >= 1/],
      [{ ...definition, epochs: 1.5 }, 'epochs', /integer/],
      [{ ...definition, optimizer: 'rmsprop' }, 'optimizer', /allowed values: adam, sgd/],
      [{ ...definition, learning_rate: 0 }, 'learning_rate', /must be > 0/],
      [{ ...definition, model: { hidden: [32], dropout: 1 } }, 'model.dropout', /must be < 1/],
      [{ ...definition, validation_split: 1 }, 'validation_split', /must be < 1/],
      [{ ...definition, layers: 'conv' }, 'layers', /unknown field 'layers'/],
      [{ ...definition, model: { layers: 'conv2d:0:3:relu' } }, 'model.layers', /conv2d/],
      [{ ...definition, model: { layers: 'dense:16:relu,sparkle:3' } }, 'model.layers', /sparkle/],
      // Each layer within its bounds, the whole too large to train: refused before any weight is made.
      [{ ...definition, model: { hidden: [4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096] } }, 'model.hidden', /^model\.hidden: the model would have 120,\d{3},\d{3} parameters, more than descent builds here \(67,108,864\)$/],
      [{ ...definition, dataset: undefined }, 'dataset', /must have required property 'dataset'/],
      [{ ...definition, momentum: 0.9 }, 'momentum', /sgd optimizer only/],
    ];
    for (const [body, field, message] of cases) {
      const response = await t.request('/api/v1/jobs', { method: 'POST', json: body });
      expect(response.status, field).toBe(400);
      const error = await response.json() as Record<string, unknown>;
      expect(error.field, JSON.stringify(error)).toBe(field);
      expect(error.message).toMatch(message);
    }
    const missing = await t.request('/api/v1/jobs', { method: 'POST', json: { ...definition, dataset: 'nope' } });
    expect(missing.status).toBe(404);
    expect((await missing.json() as Record<string, unknown>).field).toBe('dataset');
    expect((await t.request('/api/v1/jobs', { method: 'POST', token: t.tokens.predict, json: definition })).status).toBe(403);
    expect(await countRows(t.store, 'training_runs')).toBe(runs);
  });

  it('trains in the background: progress events every N batches and each epoch, then a model', async () => {
    const response = await t.request('/api/v1/jobs', { method: 'POST', json: definition });
    expect(response.status).toBe(202);
    const job = await response.json() as { id: number; status: string; links: { events: string } };
    jobId = job.id;
    expect(response.headers.get('location')).toBe(`/api/v1/jobs/${jobId}`);
    const events = await readEvents(await t.request(job.links.events), () => false);
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe('status');
    const batches = events.filter((e) => e.event === 'batch');
    // 300 images, batch 32: 10 batches per epoch; every 5th and the last.
    expect(batches.map((e) => [e.data.epoch, e.data.batch])).toEqual([[1, 5], [1, 10], [2, 5], [2, 10]]);
    const epochs = events.filter((e) => e.event === 'epoch');
    expect(epochs.map((e) => e.data.epoch)).toEqual([1, 2]);
    expect(epochs[1].data.loss as number).toBeLessThan(epochs[0].data.loss as number);
    const last = events[events.length - 1];
    expect(last.event).toBe('status');
    expect(last.data.status).toBe('complete');
    modelId = last.data.model_id as number;

    const done = await (await t.request(`/api/v1/jobs/${jobId}`)).json() as Record<string, unknown>;
    expect(done).toMatchObject({ status: 'complete', epochs_done: 2, model_id: modelId, dataset: 'clothes' });
    expect((done.history as { loss: number[] }).loss).toHaveLength(2);
    const list = await (await t.request('/api/v1/jobs')).json() as { total: number; jobs: Array<{ id: number }> };
    expect(list.jobs[0].id).toBe(jobId);
  });

  it('the same definition trains to the same weights (the seed decides)', async () => {
    const second = await (await t.request('/api/v1/jobs', { method: 'POST', json: definition })).json() as { id: number; links: { events: string } };
    const events = await readEvents(await t.request(second.links.events), () => false);
    const otherModel = events[events.length - 1].data.model_id as number;
    const a = Buffer.from(await (await t.request(`/api/v1/models/${modelId}/weights.bin`)).arrayBuffer());
    const b = Buffer.from(await (await t.request(`/api/v1/models/${otherModel}/weights.bin`)).arrayBuffer());
    expect(a.equals(b)).toBe(true);
    expect((await t.request(`/api/v1/models/${otherModel}`, { method: 'DELETE' })).status).toBe(204);
  });

  it('trains a convolutional model from a layer spec', async () => {
    const job = await (await t.request('/api/v1/jobs', { method: 'POST', json: { ...definition, epochs: 1, model: { layers: 'conv2d:4:3:relu,maxpool:2,flatten,dense:16:relu' } } })).json() as { id: number; links: { events: string } };
    const events = await readEvents(await t.request(job.links.events), () => false);
    const last = events[events.length - 1];
    expect(last.data.status).toBe('complete');
    const model = await (await t.request(`/api/v1/models/${last.data.model_id as number}`)).json() as { architecture: unknown };
    expect(JSON.stringify(model.architecture)).toContain('"class_name":"Conv2D"');
    const { test } = await fixtureData();
    const answer = await t.request(`/api/v1/models/${last.data.model_id as number}/predict`, { method: 'POST', json: { image: Buffer.from(pngOf(imageOf(test, 0))).toString('base64') } });
    expect(answer.status).toBe(200);
    expect((await answer.json() as { probabilities: number[] }).probabilities).toHaveLength(10);
  });

  it('cancels a job', async () => {
    const job = await (await t.request('/api/v1/jobs', { method: 'POST', json: { ...definition, epochs: 500 } })).json() as { id: number };
    const cancelled = await t.request(`/api/v1/jobs/${job.id}/cancel`, { method: 'POST' });
    expect(cancelled.status).toBe(200);
    expect(await cancelled.json()).toMatchObject({ status: 'cancelled', model_id: null });
    expect((await t.request(`/api/v1/jobs/${job.id}/cancel`, { method: 'POST' })).status).toBe(409);
  });
});

describe('models', () => {
  it('shows the architecture, test metrics and the confusion matrix', async () => {
    const model = await (await t.request(`/api/v1/models/${modelId}`, { token: t.tokens.predict })).json() as Record<string, unknown>;
    expect(model.class_names).toEqual(CLASSES);
    expect(model.test_accuracy).toBeGreaterThan(0.3);
    const confusion = model.confusion as number[][];
    expect(confusion).toHaveLength(10);
    expect(confusion.flat().reduce((a, b) => a + b, 0)).toBe(100);
    expect(confusion.map((row) => row.reduce((a, b) => a + b, 0))).toEqual(new Array(10).fill(10));
    expect(JSON.stringify(model.architecture)).toContain('"class_name":"Dense"');
    const list = await (await t.request('/api/v1/models', { token: t.tokens.predict })).json() as { models: Array<{ id: number }> };
    expect(list.models.map((m) => m.id)).toContain(modelId);
    expect((await t.request('/api/v1/models/999999')).status).toBe(404);
  });

  it('downloads model.json + weights.bin (and a zip of them) that the engine loads', async () => {
    const json = await (await t.request(`/api/v1/models/${modelId}/model.json`)).json();
    const weights = await (await t.request(`/api/v1/models/${modelId}/weights.bin`)).arrayBuffer();
    const model = modelFromArtifacts(artifactsFromModelJson(json, weights));
    expect(model.perSampleOutputShape).toEqual([10]);
    model.dispose();
    const zip = Buffer.from(await (await t.request(`/api/v1/models/${modelId}/model.zip`)).arrayBuffer());
    const names = await new Promise<string[]>((resolve, reject) => yauzl.fromBuffer(zip, { lazyEntries: false }, (err, file) => {
      if (err || !file) return reject(err);
      const found: string[] = [];
      file.on('entry', (entry: yauzl.Entry) => found.push(entry.fileName));
      file.on('end', () => resolve(found));
    }));
    expect(names.sort()).toEqual(['descent-training.json', 'model.json', 'weights.bin']);
  });
});

describe('predict', () => {
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

  it('answers JSON base64, a list, a multipart file and a raw PNG body alike, and records each prediction', async () => {
    const { test } = await fixtureData();
    const png = pngOf(imageOf(test, 0));
    const before = await countRows(t.store, 'predictions');
    const single = await t.request(`/api/v1/models/${modelId}/predict`, { method: 'POST', token: t.tokens.predict, json: { image: b64(png) } });
    expect(single.status).toBe(200);
    expect(single.headers.get('server-timing')).toMatch(/^parse;dur=[\d.]+, decode;dur=[\d.]+, predict;dur=[\d.]+, store;dur=[\d.]+$/);
    const answer = await single.json() as { label: number; class: string; probabilities: number[]; top: Array<{ label: number; class: string; probability: number }> };
    expect(answer.probabilities).toHaveLength(10);
    expect(answer.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(answer.label).toBe(answer.probabilities.indexOf(Math.max(...answer.probabilities)));
    expect(answer.class).toBe(CLASSES[answer.label]);
    expect(answer.top).toHaveLength(3);
    expect(answer.top[0]).toEqual({ label: answer.label, class: answer.class, probability: answer.probabilities[answer.label] });

    const dataUrl = await (await t.request(`/api/v1/models/${modelId}/predict?top=1`, { method: 'POST', token: t.tokens.predict, json: { image: `data:image/png;base64,${b64(png)}` } })).json() as typeof answer;
    expect(dataUrl.probabilities).toEqual(answer.probabilities);
    expect(dataUrl.top).toHaveLength(1);
    const list = await (await t.request(`/api/v1/models/${modelId}/predict`, { method: 'POST', json: { images: [b64(png), b64(pngOf(imageOf(test, 1)))] } })).json() as { predictions: Array<typeof answer> };
    expect(list.predictions).toHaveLength(2);
    expect(list.predictions[0].probabilities).toEqual(answer.probabilities);
    const multipart = await (await t.request(`/api/v1/models/${modelId}/predict`, { method: 'POST', body: form({}, { image: [png, 'shoe.png'] }) })).json() as typeof answer;
    expect(multipart.probabilities).toEqual(answer.probabilities);
    const raw = await (await t.request(`/api/v1/models/${modelId}/predict`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } })).json() as typeof answer;
    expect(raw.probabilities).toEqual(answer.probabilities);
    expect(await countRows(t.store, 'predictions')).toBe(before + 6);
    const [row] = await t.store.driver.all<{ predicted: number; input: string; pixels: Uint8Array; origin: string }>('SELECT predicted, input, pixels, origin FROM predictions ORDER BY id LIMIT 1 OFFSET ?', [before]);
    expect(row).toMatchObject({ predicted: answer.label, input: 'image', origin: 'api' });
    expect(Array.from(row.pixels)).toEqual(Array.from(imageOf(test, 0)));

    const unrecorded = await t.request(`/api/v1/models/${modelId}/predict?record=false`, { method: 'POST', json: { image: b64(png) } });
    expect(unrecorded.status).toBe(200);
    expect(await countRows(t.store, 'predictions')).toBe(before + 6);
  });

  it('classifies concurrent requests in one batch, each answered as if alone, and records only the recorded ones', async () => {
    const { test } = await fixtureData();
    const pngs = Array.from({ length: 8 }, (_, i) => b64(pngOf(imageOf(test, i))));
    type Answer = { label: number; probabilities: number[]; top: Array<{ label: number }> };
    const alone: Answer[] = [];
    for (const [i, png] of pngs.entries()) {
      alone.push(await (await t.request(`/api/v1/models/${modelId}/predict?record=false&top=${1 + (i % 3)}`, { method: 'POST', json: { image: png } })).json() as Answer);
    }
    const metrics = async () => (await (await t.request('/api/v1/metrics')).json() as { predict_batches: { batches: number; images: number } }).predict_batches;
    const before = await metrics();
    const rows = await countRows(t.store, 'predictions');
    // Sent together: half recorded, tops of 1 to 3, one of them a list of two.
    const together = await Promise.all(pngs.map(async (png, i) => {
      const path = `/api/v1/models/${modelId}/predict?top=${1 + (i % 3)}${i % 2 ? '&record=false' : ''}`;
      const reply = await t.request(path, { method: 'POST', json: i === 7 ? { images: [png, pngs[0]] } : { image: png } });
      expect(reply.status).toBe(200);
      return reply.json() as Promise<Answer & { predictions?: Answer[] }>;
    }));
    for (const [i, answer] of together.entries()) {
      expect(answer.predictions?.[0] ?? answer, `request ${i}`).toEqual(alone[i]);
    }
    expect(together[7].predictions![1].probabilities).toEqual(alone[0].probabilities);
    const after = await metrics();
    expect(after.images - before.images).toBe(9);
    expect(after.batches - before.batches).toBeLessThanOrEqual(8);
    expect(await countRows(t.store, 'predictions')).toBe(rows + 4);
  });

  it('a batch: requests submitted in one turn share one forward pass and one commit, each getting its own rows', async () => {
    const { test } = await fixtureData();
    const predictor = new Predictor(t.store);
    const batcher = new PredictionBatcher(predictor, t.store);
    const loaded = (await predictor.load(modelId))!;
    const images = Array.from({ length: 6 }, (_, i) => imageOf(test, i));
    const alone = images.map((pixels) => predictor.classify(loaded, [pixels], 10)[0]);
    const rows = await countRows(t.store, 'predictions');
    const record = (i: number) => ({ createdBy: 'batch test', inputs: [`item ${i}`], trueLabels: [null] });
    const answers = await Promise.all(images.map((pixels, i) => batcher.submit(loaded, [pixels], 1 + (i % 3), i < 4 ? record(i) : undefined)));
    expect(batcher.stats).toEqual({ batches: 1, images: 6 });
    for (const [i, { results }] of answers.entries()) {
      expect(results).toEqual([{ ...alone[i], top: alone[i].top.slice(0, 1 + (i % 3)) }]);
    }
    expect(await countRows(t.store, 'predictions')).toBe(rows + 4);
    const recorded = await t.store.driver.all<{ input: string; predicted: number }>('SELECT input, predicted FROM predictions WHERE created_by = ? ORDER BY id', ['batch test']);
    expect(recorded).toEqual([0, 1, 2, 3].map((i) => ({ input: `item ${i}`, predicted: alone[i].label })));
    // A wrong size is refused at once, before the batch.
    expect(() => batcher.submit(loaded, [new Uint8Array(10)], 1)).toThrow(/takes 28×28 images/);
    // A model forgotten while its batch waits answers 404 instead of using freed weights.
    const waiting = batcher.submit(loaded, [images[0]], 1);
    predictor.evict(modelId);
    await expect(waiting).rejects.toMatchObject({ statusCode: 404 });
    await batcher.drain();
  });

  it('records a true label given as a name, an index or a query parameter, and lists the wrong ones with the image the model saw', async () => {
    const { test } = await fixtureData();
    const items = [0, 1, 2, 3].map((i) => ({ pixels: imageOf(test, i), png: b64(pngOf(imageOf(test, i))), truth: test.labels[i] }));
    type Page = { total: number; items: Array<{ id: number; model_id: number; label: number; class: string | null; true_label: number | null; true_class: string | null; probability: number; image: string; created_by: string | null; origin: string }> };
    const earlier = (await (await t.request(`/api/v1/predictions?model=${modelId}`, { token: t.tokens.predict })).json() as Page).total;
    const single = await (await t.request(`/api/v1/models/${modelId}/predict`, { method: 'POST', token: t.tokens.predict, json: { image: items[0].png, true_label: CLASSES[items[0].truth] } })).json() as { label: number };
    // The others: one says the truth, one claims a class the model did not predict (so it is wrong), one gives none.
    const listed = await (await t.request(`/api/v1/models/${modelId}/predict`, { method: 'POST', token: t.tokens.predict, json: { images: [items[1].png, items[2].png, items[3].png], true_labels: [items[1].truth, null, null] } })).json() as { predictions: Array<{ label: number }> };
    const claimed = (listed.predictions[1].label + 1) % 10;
    const raw = await t.request(`/api/v1/models/${modelId}/predict?true_label=${claimed}`, { method: 'POST', token: t.tokens.predict, body: Buffer.from(pngOf(items[2].pixels)), headers: { 'content-type': 'image/png' } });
    expect(raw.status).toBe(200);

    const mine = await (await t.request(`/api/v1/predictions?model=${modelId}&limit=4`, { token: t.tokens.predict })).json() as Page;
    expect(mine.total).toBe(earlier + 5); // what the 'predict' token made, only
    expect(mine.items.map((p) => p.true_label)).toEqual([claimed, null, null, items[1].truth]);
    expect(mine.items[0]).toMatchObject({ model_id: modelId, label: listed.predictions[1].label, true_class: CLASSES[claimed], origin: 'api', created_by: 'test predict' });
    const wrong = await (await t.request(`/api/v1/predictions?model=${modelId}&wrong=true`, { token: t.tokens.predict })).json() as Page;
    expect(wrong.items.map((p) => p.id)).toContain(mine.items[0].id);
    for (const p of wrong.items) expect(p.true_label !== null && p.true_label !== p.label).toBe(true);
    const byClass = await (await t.request(`/api/v1/predictions?class=${single.label}`, { token: t.tokens.predict })).json() as Page;
    expect(byClass.items.length).toBeGreaterThan(0);
    for (const p of byClass.items) expect(p.label).toBe(single.label);

    // The image is the 28×28 the model saw; a 'train' token sees every prediction, a 'predict' token its own.
    const png = await t.request(mine.items[0].image, { token: t.tokens.predict });
    expect(png.headers.get('content-type')).toBe('image/png');
    const { decode } = await import('fast-png');
    expect(Array.from(decode(new Uint8Array(await png.arrayBuffer())).data)).toEqual(Array.from(items[2].pixels));
    const all = await (await t.request('/api/v1/predictions?limit=1', { token: t.tokens.train })).json() as Page;
    expect(all.total).toBeGreaterThan(mine.total);
    const others = (await t.request('/api/v1/predictions?limit=500', { token: t.tokens.admin }).then((r) => r.json()) as Page).items.find((p) => p.created_by !== 'test predict')!;
    expect((await t.request(`/api/v1/predictions/${others.id}`, { token: t.tokens.predict })).status).toBe(404);
    expect((await t.request(`/api/v1/predictions/${others.id}/image.png`, { token: t.tokens.predict })).status).toBe(404);
    const one = await (await t.request(`/api/v1/predictions/${others.id}`, { token: t.tokens.train })).json() as { probabilities: number[] };
    expect(one.probabilities).toHaveLength(10);

    const before = await countRows(t.store, 'predictions');
    for (const [query, json, field] of [
      ['', { image: items[0].png, true_label: 'Sock' }, 'true_label'],
      ['?true_label=10', { image: items[0].png }, 'true_label'],
      ['', { images: [items[0].png, items[1].png], true_labels: [1] }, 'true_labels'],
      ['?true_label=1', { images: [items[0].png, items[1].png] }, 'true_label'],
    ] as const) {
      const refused = await t.request(`/api/v1/models/${modelId}/predict${query}`, { method: 'POST', json });
      expect(refused.status, JSON.stringify(json)).toBe(400);
      expect((await refused.json() as { field: string }).field).toBe(field);
    }
    expect(await countRows(t.store, 'predictions')).toBe(before);
  });

  it('refuses unknown models, bad images and bad bodies with 4xx JSON naming the field, recording nothing', async () => {
    const { test } = await fixtureData();
    const png = Buffer.from(pngOf(imageOf(test, 0))).toString('base64');
    const before = await countRows(t.store, 'predictions');
    const cases: Array<[string, RequestInit & { json?: unknown }, number, string]> = [
      ['/api/v1/models/424242/predict', { json: { image: png } }, 404, 'id'],
      ['/api/v1/models/abc/predict', { json: { image: png } }, 400, 'id'],
      [`/api/v1/models/${modelId}/predict`, { json: { image: 'not base64!' } }, 400, 'image'],
      [`/api/v1/models/${modelId}/predict`, { json: { image: Buffer.from('hello').toString('base64') } }, 422, 'image'],
      [`/api/v1/models/${modelId}/predict`, { json: {} }, 400, 'image'],
      [`/api/v1/models/${modelId}/predict`, { json: { image: png, images: [png] } }, 400, 'image'],
      [`/api/v1/models/${modelId}/predict`, { json: { images: new Array(65).fill(png) } }, 400, 'images'],
      [`/api/v1/models/${modelId}/predict`, { json: { image: png, extra: 1 } }, 400, 'extra'],
      [`/api/v1/models/${modelId}/predict?top=11`, { json: { image: png } }, 400, 'top'],
      [`/api/v1/models/${modelId}/predict`, { body: Buffer.from(pngOf(new Uint8Array(5000 * 4000), 5000, 4000)), headers: { 'content-type': 'image/png' } }, 422, 'image'],
      [`/api/v1/models/${modelId}/predict`, { body: '{"image": ', headers: { 'content-type': 'application/json' } }, 400, 'body'],
      [`/api/v1/models/${modelId}/predict`, { body: 'x', headers: { 'content-type': 'text/plain' } }, 415, 'body'],
    ];
    for (const [path, init, status, field] of cases) {
      const response = await t.request(path, { method: 'POST', ...init });
      const body = await response.json() as Record<string, unknown>;
      expect(response.status, `${path} ${JSON.stringify(body)}`).toBe(status);
      expect(body.field, `${path} ${JSON.stringify(body)}`).toBe(field);
    }
    expect(await countRows(t.store, 'predictions')).toBe(before);
  });
});
