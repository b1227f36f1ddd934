// Datasets over the API: create, upload one image, a zip of label folders, IDX files; counts,
// pages and thumbnails; and hostile uploads (too big, too many pixels, undecodable, zip bombs,
// '..' and absolute paths, unknown labels), each a 4xx JSON answer naming the field, leaving no rows.
import { gzipSync } from 'node:zlib';
import { decode as decodePng } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeIdxImages, encodeIdxLabels, parseIdxImages } from '@descent/engine';
import { CLASSES, countRows, fixtureData, fixtureZip, form, imageOf, pngOf, startServer, zipOf, type TestServer } from './helpers.js';

let t: TestServer;

beforeAll(async () => {
  t = await startServer({ rateLimit: 0, images: { maxBytes: 64 * 1024, maxPixels: 512 * 512 }, uploads: { maxUploadBytes: 2 * 1024 * 1024, maxZipEntries: 400, maxZipBytes: 1024 * 1024 } });
});
afterAll(async () => t?.close());

const classes = CLASSES;

async function expectError(response: Response, status: number, field: string, message?: RegExp) {
  expect(response.status).toBe(status);
  const body = await response.json() as Record<string, unknown>;
  expect(body.field, JSON.stringify(body)).toBe(field);
  expect(body.statusCode).toBe(status);
  if (message) expect(body.message).toMatch(message);
  expect(String(body.message)).not.toContain('\n');
}

describe('datasets', () => {
  it('creates, lists, refuses a second dataset of the same name and bad names', async () => {
    const created = await t.request('/api/v1/datasets', { method: 'POST', json: { name: 'clothes', classes } });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ name: 'clothes', classes, images: 0, counts: { train: new Array(10).fill(0) } });
    await expectError(await t.request('/api/v1/datasets', { method: 'POST', json: { name: 'clothes' } }), 409, 'name');
    await expectError(await t.request('/api/v1/datasets', { method: 'POST', json: { name: '../etc' } }), 400, 'name');
    await expectError(await t.request('/api/v1/datasets', { method: 'POST', json: { name: 'x', classes: ['a', 'a'] } }), 400, 'classes');
    const list = await (await t.request('/api/v1/datasets')).json() as { datasets: Array<{ name: string }> };
    expect(list.datasets.map((d) => d.name)).toEqual(['clothes']);
  });

  it('adds a zip of label folders: counts per class, pages with thumbnails that show the image', async () => {
    const zip = await fixtureZip(4, 2);
    const response = await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [zip, 'clothes.zip'] }) });
    expect(response.status, await response.clone().text()).toBe(201);
    const result = await response.json() as { added: { train: number; test: number }; dataset: { counts: { train: number[]; test: number[] } } };
    expect(result.added).toEqual({ train: 40, test: 20 });
    expect(result.dataset.counts.train).toEqual(new Array(10).fill(4));
    expect(result.dataset.counts.test).toEqual(new Array(10).fill(2));
    // The same zip again is a no-op; raw application/zip bodies work too.
    const again = await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: zip, headers: { 'content-type': 'application/zip' } });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ already_imported: true, added: { train: 0, test: 0 } });

    const page = await (await t.request('/api/v1/datasets/clothes/images?split=train&limit=3&offset=2')).json() as { total: number; items: Array<{ id: number; class: string; thumbnail: string; source: string }> };
    expect(page.total).toBe(40);
    expect(page.items).toHaveLength(3);
    const byClass = await (await t.request('/api/v1/datasets/clothes/images?label=9')).json() as { total: number; items: Array<{ class: string }> };
    expect(byClass.total).toBe(6);
    expect(byClass.items.every((i) => i.class === 'Ankle boot')).toBe(true);
    const item = page.items[0];
    const thumbnail = await t.request(item.thumbnail);
    expect(thumbnail.headers.get('content-type')).toBe('image/png');
    const png = decodePng(new Uint8Array(await thumbnail.arrayBuffer()));
    const { train } = await fixtureData();
    const index = Number(/\/(\d+)\.png$/.exec(item.source)![1]);
    expect(Array.from(png.data)).toEqual(Array.from(imageOf(train, index)));
    expect((await t.request(item.thumbnail, { token: null })).status).toBe(401);
  });

  it('adds one image with a label as a multipart form', async () => {
    const { test } = await fixtureData();
    const before = (await (await t.request('/api/v1/datasets/clothes')).json() as { counts: { test: number[] } }).counts.test[3];
    const response = await t.request('/api/v1/datasets/clothes/images', { method: 'POST', body: form({ label: 'Dress', split: 'test' }, { image: [pngOf(imageOf(test, 400)), 'dress.png'] }) });
    expect(response.status, await response.clone().text()).toBe(201);
    const body = await response.json() as { dataset: { counts: { test: number[] } } };
    expect(body.dataset.counts.test[3]).toBe(before + 1);
  });

  it('adds IDX files, gzipped or not, and sets the classes of a dataset that had none', async () => {
    expect((await t.request('/api/v1/datasets', { method: 'POST', json: { name: 'digits' } })).status).toBe(201);
    const { train } = await fixtureData();
    const images = encodeIdxImages({ count: 30, rows: 28, cols: 28, pixels: train.images.slice(0, 30 * 784) }, { gzip: true });
    const labels = encodeIdxLabels(train.labels.slice(0, 30));
    const response = await t.request('/api/v1/datasets/digits/idx', { method: 'POST', body: form({ classes: classes.join(',') }, { train_images: [images, 'train-images.gz'], train_labels: [labels, 'train-labels'] }) });
    expect(response.status, await response.clone().text()).toBe(201);
    const body = await response.json() as { added: { train: number }; dataset: { classes: string[] } };
    expect(body.added.train).toBe(30);
    expect(body.dataset.classes).toEqual(classes);
    // Downloaded back as IDX, a split is byte for byte what the engine writes for the same images.
    const imagesBack = new Uint8Array(await (await t.request('/api/v1/datasets/digits/train-images.idx', { token: t.tokens.train })).arrayBuffer());
    expect(Buffer.from(imagesBack).equals(Buffer.from(encodeIdxImages({ count: 30, rows: 28, cols: 28, pixels: train.images.slice(0, 30 * 784) })))).toBe(true);
    const labelsBack = await t.request('/api/v1/datasets/digits/train-labels.idx', { token: t.tokens.train });
    expect(labelsBack.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await labelsBack.arrayBuffer()).equals(Buffer.from(labels))).toBe(true);
    expect(parseIdxImages(new Uint8Array(await (await t.request('/api/v1/datasets/digits/test-images.idx')).arrayBuffer()), 'test').count).toBe(0);
    await expectError(await t.request('/api/v1/datasets/digits/valid-images.idx'), 400, 'file');
    expect((await t.request('/api/v1/datasets/digits/train-images.idx', { token: t.tokens.predict })).status).toBe(403);
  });

  it('deletes a dataset with its images', async () => {
    expect((await t.request('/api/v1/datasets/digits', { method: 'DELETE' })).status).toBe(204);
    expect((await t.request('/api/v1/datasets/digits')).status).toBe(404);
    const [{ n }] = await t.store.driver.all<{ n: number }>("SELECT COUNT(*) AS n FROM images WHERE source LIKE 'train_images#%'");
    expect(Number(n)).toBe(0);
  });
});

describe('hostile uploads: a 4xx JSON answer naming the field, and no rows', () => {
  const imageCount = () => countRows(t.store, 'images');

  it('refuses unknown labels, in a form and in a zip', async () => {
    const { test } = await fixtureData();
    const before = await imageCount();
    await expectError(await t.request('/api/v1/datasets/clothes/images', { method: 'POST', body: form({ label: 'Hat' }, { image: [pngOf(imageOf(test, 1)), 'hat.png'] }) }), 400, 'label', /unknown label "Hat"/);
    const zip = await zipOf([['Shirt/a.png', pngOf(imageOf(test, 2))], ['Hat/b.png', pngOf(imageOf(test, 3))]]);
    await expectError(await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [zip, 'x.zip'] }) }), 400, 'label', /unknown label "Hat"/);
    await expectError(await t.request('/api/v1/datasets/nope/zip', { method: 'POST', body: form({}, { file: [zip, 'x.zip'] }) }), 404, 'name');
    expect(await imageCount()).toBe(before);
  });

  it('refuses oversized bodies, too many pixels and undecodable images', async () => {
    const before = await imageCount();
    const big = new Uint8Array(70 * 1024).fill(7);
    await expectError(await t.request('/api/v1/datasets/clothes/images', { method: 'POST', body: form({ label: 'Bag' }, { image: [big, 'big.png'] }) }), 413, 'file');
    const wide = pngOf(new Uint8Array(600 * 600), 600, 600);
    await expectError(await t.request('/api/v1/datasets/clothes/images', { method: 'POST', body: form({ label: 'Bag' }, { image: [wide, 'wide.png'] }) }), 422, 'image', /^image: wide\.png: the image has more than 262,144 pixels/);
    await expectError(await t.request('/api/v1/datasets/clothes/images', { method: 'POST', body: form({ label: 'Bag' }, { image: [new TextEncoder().encode('GIF89a nonsense'), 'x.gif'] }) }), 422, 'image', /cannot decode/);
    const huge = await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: new Uint8Array(3 * 1024 * 1024), headers: { 'content-type': 'application/zip' } });
    await expectError(huge, 413, 'body');
    expect(await imageCount()).toBe(before);
  });

  it('refuses zip bombs: too many entries, too many bytes uncompressed, an image that fails half-way', async () => {
    const before = await imageCount();
    const { test } = await fixtureData();
    const many = await zipOf(Array.from({ length: 401 }, (_, i) => [`Bag/${i}.png`, pngOf(imageOf(test, 0))] as [string, Uint8Array]));
    await expectError(await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [many, 'many.zip'] }) }), 422, 'file', /holds 401 entries; at most 400/);
    // 40 entries of 60 KiB of zeros: tiny compressed, 2.4 MB uncompressed (limit 1 MiB).
    const bomb = await zipOf(Array.from({ length: 40 }, (_, i) => [`Bag/${i}.png`, new Uint8Array(60 * 1024)] as [string, Uint8Array]), { compress: true });
    expect(bomb.length).toBeLessThan(100 * 1024);
    await expectError(await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [bomb, 'bomb.zip'] }) }), 422, 'file', /more than 1048576 bytes uncompressed/);
    // Good images first, then one that cannot be decoded: nothing of the zip is kept.
    const mixed = await zipOf([['Bag/a.png', pngOf(imageOf(test, 5))], ['Bag/b.png', pngOf(imageOf(test, 6))], ['Bag/c.png', new TextEncoder().encode('broken')]]);
    await expectError(await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [mixed, 'mixed.zip'] }) }), 422, 'file', /Bag\/c\.png/);
    await expectError(await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [new TextEncoder().encode('PK not a zip'), 'x.zip'] }) }), 422, 'file');
    expect(await imageCount()).toBe(before);
  });

  it("refuses zip entries with '..' or absolute paths", async () => {
    const before = await imageCount();
    const { test } = await fixtureData();
    for (const name of ['../Bag/evil.png', '/Bag/evil.png', 'Bag/../../evil.png']) {
      const zip = patchedZip(await zipOf([[name.replace(/[./]/g, 'x').padEnd(name.length, 'x').slice(0, name.length), pngOf(imageOf(test, 7))]]), name);
      await expectError(await t.request('/api/v1/datasets/clothes/zip', { method: 'POST', body: form({}, { file: [zip, 'evil.zip'] }) }), 422, 'file', /invalid|absolute|relative/i);
    }
    expect(await imageCount()).toBe(before);
  });

  it('refuses bad IDX uploads: unpaired files, wrong magic, a gzip bomb, labels beyond the classes', async () => {
    const before = await imageCount();
    const { train } = await fixtureData();
    const images = encodeIdxImages({ count: 5, rows: 28, cols: 28, pixels: train.images.slice(0, 5 * 784) });
    await expectError(await t.request('/api/v1/datasets/clothes/idx', { method: 'POST', body: form({}, { train_images: [images, 'i'] }) }), 400, 'train_labels');
    await expectError(await t.request('/api/v1/datasets/clothes/idx', { method: 'POST', body: form({}, { train_images: [images, 'i'], train_labels: [images, 'l'] }) }), 422, 'train_labels');
    const bomb = gzipSync(new Uint8Array(12 * 1024 * 1024));
    await expectError(await t.request('/api/v1/datasets/clothes/idx', { method: 'POST', body: form({}, { train_images: [images, 'i'], train_labels: [bomb, 'l.gz'] }) }), 413, 'train_labels', /inflates to more than/);
    const labels = encodeIdxLabels(Uint8Array.of(1, 2, 3, 4, 12));
    await expectError(await t.request('/api/v1/datasets/clothes/idx', { method: 'POST', body: form({}, { train_images: [images, 'i'], train_labels: [labels, 'l'] }) }), 400, 'label', /unknown label 12/);
    expect(await imageCount()).toBe(before);
  });
});

/** A zip whose one entry's name is replaced (same length) in both headers: how an attacker writes '..' entries. */
function patchedZip(zip: Buffer, name: string): Buffer {
  const out = Buffer.from(zip);
  for (const [signature, offset] of [[0x04034b50, 30], [0x02014b50, 46]] as const) {
    for (let i = 0; i + 4 <= out.length; i++) {
      if (out.readUInt32LE(i) === signature) {
        out.write(name, i + offset, 'latin1');
        break;
      }
    }
  }
  return out;
}
