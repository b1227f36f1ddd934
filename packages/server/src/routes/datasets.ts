/**
 * Datasets of labelled 28×28 images: create, list, show (counts per class), delete; add images
 * one at a time (multipart: `label`, optional `split`, the file), a zip of one folder per label,
 * or IDX files; list the images a page at a time with a thumbnail URL for each.
 *
 * Every upload is read whole (within its size limit), decoded, checked, and then written in one
 * transaction: a refused or interrupted upload leaves nothing behind.
 */
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { MultipartFile } from '@fastify/multipart';
import { encode as encodePng } from 'fast-png';
import { DataError, encodeIdxImages, encodeIdxLabels, isGzip, parseIdxImages, parseIdxLabels } from '@descent/engine';
import { prepareImage } from '@descent/images';
import { DATASET_NAME, readLabelledZip, timestamp, type DatasetSummary, type ImportSplit, type Split } from '@descent/store';
import { errorReplies, HttpError } from '../errors.js';
import { decodeUpload, type ImageLimits } from '../images.js';
import type { ServerContext } from '../context.js';
import type { TrainingService } from '../training.js';

export interface UploadLimits {
  /** Largest upload (zip, IDX files), in bytes. */
  maxUploadBytes: number;
  /** Most files in a zip. */
  maxZipEntries: number;
  /** Most bytes a zip may hold uncompressed. */
  maxZipBytes: number;
}

const IDX_FILES = ['train-images.idx', 'train-labels.idx', 'test-images.idx', 'test-labels.idx'];
const nameParams = { type: 'object', properties: { name: { type: 'string', pattern: DATASET_NAME.source } }, required: ['name'] } as const;
const classNameSchema = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\x00-\\x1f]+$' } as const;

const datasetSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    height: { type: 'integer' },
    width: { type: 'integer' },
    classes: { type: 'array', items: { type: 'string' } },
    counts: {
      type: 'object',
      description: 'images per class (in class order), per split',
      properties: { train: { type: 'array', items: { type: 'integer' } }, test: { type: 'array', items: { type: 'integer' } } },
    },
    images: { type: 'integer' },
    created_at: { type: 'string' },
  },
} as const;

const importReply = {
  type: 'object',
  properties: {
    added: { type: 'object', properties: { train: { type: 'integer' }, test: { type: 'integer' } } },
    already_imported: { type: 'boolean', description: 'the same content was imported before; nothing was added' },
    skipped: { type: 'array', items: { type: 'object', properties: { file: { type: 'string' }, reason: { type: 'string' } } } },
    dataset: datasetSchema,
  },
} as const;

function view(d: DatasetSummary) {
  const images = [...d.counts.train, ...d.counts.test].reduce((a, b) => a + b, 0);
  return { name: d.name, height: d.height, width: d.width, classes: d.classNames, counts: d.counts, images, created_at: d.createdAt };
}

export function datasetRoutes(app: FastifyInstance, { store, imageLimits, uploads, training }: ServerContext & { imageLimits: ImageLimits; uploads: UploadLimits; training: TrainingService }): void {
  const find = async (name: string): Promise<DatasetSummary> => {
    const dataset = await store.getDataset(name);
    if (!dataset) throw new HttpError(404, `no dataset ${name}`, 'name');
    return dataset;
  };
  // Images inside a zip: a DataError names the entry, and the zip reader reports it as the file's.
  const decodeEntry = async (bytes: Uint8Array, name: string): Promise<Uint8Array> => (await prepareImage(bytes, { name, ...imageLimits })).pixels;

  for (const type of ['application/zip', 'application/octet-stream']) {
    if (!app.hasContentTypeParser(type)) app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: uploads.maxUploadBytes }, (_request, body, done) => done(null, body));
  }

  app.get('/api/v1/datasets', {
    config: { scope: 'train' },
    schema: { tags: ['datasets'], summary: 'List datasets with their classes and counts', response: { 200: { type: 'object', properties: { datasets: { type: 'array', items: datasetSchema } } }, ...errorReplies() } },
  }, async () => ({ datasets: (await store.listDatasets()).map(view) }));

  app.post<{ Body: { name: string; classes?: string[] } }>('/api/v1/datasets', {
    config: { scope: 'train' },
    schema: {
      tags: ['datasets'],
      summary: 'Create an empty dataset of 28×28 images; without `classes`, the first zip or IDX upload sets them',
      body: {
        type: 'object',
        properties: {
          name: { type: 'string', pattern: DATASET_NAME.source, description: "1-100 letters, digits, '.', '_' or '-'" },
          classes: { type: 'array', minItems: 1, maxItems: 256, uniqueItems: true, items: classNameSchema },
        },
        required: ['name'],
        additionalProperties: false,
      },
      response: { 201: datasetSchema, ...errorReplies(400, 409) },
    },
  }, async (request, reply) => {
    const { name, classes = [] } = request.body;
    await store.driver.transaction(async (tx) => {
      const existing = await tx.all('SELECT id FROM datasets WHERE name = ?', [name]);
      if (existing.length) throw new HttpError(409, `dataset ${name} already exists`, 'name');
      const { lastId } = await tx.run('INSERT INTO datasets (name, height, width, created_at) VALUES (?, ?, ?, ?)', [name, 28, 28, timestamp()]);
      await tx.runMany('INSERT INTO classes (dataset_id, label, name) VALUES (?, ?, ?)', classes.map((c, i) => [lastId, i, c]));
    });
    return reply.code(201).send(view(await find(name)));
  });

  app.get<{ Params: { name: string } }>('/api/v1/datasets/:name', {
    config: { scope: 'train' },
    schema: { tags: ['datasets'], summary: 'A dataset: classes and counts per class and split', params: nameParams, response: { 200: datasetSchema, ...errorReplies(404) } },
  }, async (request) => view(await find(request.params.name)));

  app.delete<{ Params: { name: string } }>('/api/v1/datasets/:name', {
    config: { scope: 'train' },
    schema: { tags: ['datasets'], summary: 'Delete a dataset and its images (models trained on it stay)', params: nameParams, response: { 204: { type: 'null' }, ...errorReplies(404, 409) } },
  }, async (request, reply) => {
    const dataset = await find(request.params.name);
    if (await training.datasetInUse(dataset.id)) throw new HttpError(409, `dataset ${dataset.name} is used by a queued or running training job; cancel it first`, 'name');
    await store.driver.run('DELETE FROM datasets WHERE id = ?', [dataset.id]);
    return reply.code(204).send();
  });

  app.get<{ Params: { name: string }; Querystring: { split?: Split; label?: number; offset: number; limit: number } }>('/api/v1/datasets/:name/images', {
    config: { scope: 'train' },
    schema: {
      tags: ['datasets'],
      summary: 'The images, a page at a time, in stored order, with a thumbnail URL each',
      params: nameParams,
      querystring: {
        type: 'object',
        properties: {
          split: { type: 'string', enum: ['train', 'test'] },
          label: { type: 'integer', minimum: 0, maximum: 255, description: 'only this class (index)' },
          offset: { type: 'integer', minimum: 0, default: 0 },
          limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
        },
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          properties: {
            total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' },
            items: {
              type: 'array',
              items: { type: 'object', properties: { id: { type: 'integer' }, split: { type: 'string' }, label: { type: 'integer' }, class: { type: 'string' }, source: { type: 'string' }, thumbnail: { type: 'string' } } },
            },
          },
        },
        ...errorReplies(400, 404),
      },
    },
  }, async (request) => {
    const dataset = await find(request.params.name);
    const { split, label, offset, limit } = request.query;
    const where = ['dataset_id = ?'];
    const params: Array<string | number> = [dataset.id];
    if (split) (where.push('split = ?'), params.push(split));
    if (label !== undefined) (where.push('label = ?'), params.push(label));
    const [{ n }] = await store.driver.all<{ n: number }>(`SELECT COUNT(*) AS n FROM images WHERE ${where.join(' AND ')}`, params);
    const rows = await store.driver.all<{ id: number; split: string; label: number; source: string }>(
      `SELECT id, split, label, source FROM images WHERE ${where.join(' AND ')} ORDER BY split DESC, position LIMIT ? OFFSET ?`,
      [...params, limit, offset],
    );
    const base = `/api/v1/datasets/${encodeURIComponent(dataset.name)}/images`;
    return {
      total: Number(n), offset, limit,
      items: rows.map((r) => ({ id: Number(r.id), split: r.split, label: Number(r.label), class: dataset.classNames[Number(r.label)], source: r.source, thumbnail: `${base}/${Number(r.id)}/thumbnail.png` })),
    };
  });

  // A whole split as IDX files, for training in the browser (the engine reads them as it reads Fashion-MNIST's).
  app.get<{ Params: { name: string; file: string } }>('/api/v1/datasets/:name/:file', {
    config: { scope: 'train' },
    schema: {
      tags: ['datasets'],
      summary: 'A split in bulk as an IDX file (uncompressed): train-images.idx, train-labels.idx, test-images.idx or test-labels.idx',
      params: { type: 'object', properties: { ...nameParams.properties, file: { type: 'string', enum: IDX_FILES } }, required: ['name', 'file'] },
      response: errorReplies(400, 404),
    },
  }, async (request, reply) => {
    const dataset = await find(request.params.name);
    const [split, kind] = request.params.file.replace('.idx', '').split('-') as [Split, 'images' | 'labels'];
    const part = await store.loadSplit(dataset.name, split);
    const bytes = kind === 'images' ? encodeIdxImages({ count: part.count, rows: part.rows, cols: part.cols, pixels: part.images }) : encodeIdxLabels(part.labels);
    return reply.type('application/octet-stream').header('content-disposition', `attachment; filename="${dataset.name}-${request.params.file}"`).send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  app.get<{ Params: { name: string; id: number } }>('/api/v1/datasets/:name/images/:id/thumbnail.png', {
    config: { scope: 'train' },
    schema: {
      tags: ['datasets'], summary: 'The 28×28 image as a PNG',
      params: { type: 'object', properties: { ...nameParams.properties, id: { type: 'integer', minimum: 1 } }, required: ['name', 'id'] },
      response: errorReplies(404),
    },
  }, async (request, reply) => {
    const dataset = await find(request.params.name);
    const rows = await store.driver.all<{ pixels: Uint8Array }>('SELECT pixels FROM images WHERE id = ? AND dataset_id = ?', [request.params.id, dataset.id]);
    if (!rows[0]) throw new HttpError(404, `no image ${request.params.id} in dataset ${dataset.name}`, 'id');
    const png = encodePng({ width: dataset.width, height: dataset.height, data: new Uint8Array(rows[0].pixels), depth: 8, channels: 1 });
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(Buffer.from(png));
  });

  app.post<{ Params: { name: string } }>('/api/v1/datasets/:name/images', {
    config: { scope: 'train' },
    bodyLimit: imageLimits.maxBytes + 64 * 1024,
    schema: {
      tags: ['datasets'],
      summary: 'Add one image: a multipart form with `label` (a class name), optional `split` (train or test), and the image file',
      params: nameParams,
      consumes: ['multipart/form-data'],
      response: { 201: importReply, 200: importReply, ...errorReplies(400, 404, 413, 415, 422) },
    },
  }, async (request, reply) => {
    const dataset = await find(request.params.name);
    const form = await readForm(request, imageLimits.maxBytes, ['label', 'split'], ['image', 'file']);
    const label = form.fields.label;
    if (label === undefined) throw new HttpError(400, 'label: missing; send the class name as a form field "label"', 'label');
    const index = dataset.classNames.indexOf(label);
    if (index < 0) {
      const known = dataset.classNames.length ? `the dataset's classes are ${dataset.classNames.join(', ')}` : 'the dataset has no classes yet: create it with classes, or upload a zip first';
      throw new HttpError(400, `label: unknown label ${JSON.stringify(label.slice(0, 100))}; ${known}`, 'label');
    }
    const split = splitOf(form.fields.split);
    if (!form.file) throw new HttpError(400, 'image: missing; send the image as a form file named "image"', 'image');
    const pixels = await decodeUpload(form.file, imageLimits);
    const source = form.file.name.slice(0, 1000);
    const result = await store.importImages({
      dataset: dataset.name, classNames: dataset.classNames, height: dataset.height, width: dataset.width, kind: 'upload', source,
      splits: [{ split, images: pixels, labels: Uint8Array.of(index), source: () => source }], skipDuplicates: false,
    });
    return reply.code(result.alreadyImported ? 200 : 201).send({ added: result.added, already_imported: result.alreadyImported, skipped: [], dataset: view(await find(dataset.name)) });
  });

  app.post<{ Params: { name: string }; Querystring: { split: Split } }>('/api/v1/datasets/:name/zip', {
    config: { scope: 'train' },
    bodyLimit: uploads.maxUploadBytes,
    schema: {
      tags: ['datasets'],
      summary: 'Add a zip of one folder per label (LABEL/IMAGE.png, or train/LABEL/... and test/LABEL/...), as a multipart file or an application/zip body',
      params: nameParams,
      querystring: { type: 'object', properties: { split: { type: 'string', enum: ['train', 'test'], default: 'train', description: 'the split of images not under train/ or test/' } }, additionalProperties: false },
      consumes: ['multipart/form-data', 'application/zip'],
      response: { 201: importReply, 200: importReply, ...errorReplies(400, 404, 413, 415, 422) },
    },
  }, async (request, reply) => {
    const dataset = await find(request.params.name);
    let bytes: Uint8Array;
    let name: string;
    if (Buffer.isBuffer(request.body)) {
      bytes = request.body;
      name = 'upload.zip';
    } else {
      const form = await readForm(request, uploads.maxUploadBytes, [], ['file', 'zip']);
      if (!form.file) throw new HttpError(400, 'file: missing; send the zip as a form file named "file"', 'file');
      ({ bytes, name } = form.file);
    }
    const read = await readLabelledZip(bytes, name, {
      decode: decodeEntry, size: dataset.height * dataset.width, split: request.query.split,
      limits: { maxFiles: uploads.maxZipEntries, maxTotalBytes: uploads.maxZipBytes, maxFileBytes: imageLimits.maxBytes },
    });
    const classNames = checkLabels(dataset, read.classNames, 'file');
    const splits: ImportSplit[] = (Object.entries(read.splits) as Array<[Split, NonNullable<(typeof read.splits)[Split]>]>).map(([split, part]) => ({
      split, images: part.images, labels: part.labels, source: (i) => part.sources[i],
    }));
    const result = await store.importImages({
      dataset: dataset.name, classNames, height: dataset.height, width: dataset.width, kind: 'zip', source: name, splits, skipDuplicates: false,
    });
    return reply.code(result.alreadyImported ? 200 : 201).send({ added: result.added, already_imported: result.alreadyImported, skipped: read.skipped.slice(0, 100), dataset: view(await find(dataset.name)) });
  });

  app.post<{ Params: { name: string } }>('/api/v1/datasets/:name/idx', {
    config: { scope: 'train' },
    bodyLimit: uploads.maxUploadBytes,
    schema: {
      tags: ['datasets'],
      summary: 'Add IDX files (gzipped or not): form files train_images + train_labels and/or test_images + test_labels; optional field `classes` (comma-separated names) for a dataset without classes',
      params: nameParams,
      consumes: ['multipart/form-data'],
      response: { 201: importReply, 200: importReply, ...errorReplies(400, 404, 413, 415, 422) },
    },
  }, async (request, reply) => {
    const dataset = await find(request.params.name);
    const roles = ['train_images', 'train_labels', 'test_images', 'test_labels'];
    const form = await readForm(request, uploads.maxUploadBytes, ['classes'], roles, 4);
    const files = form.files;
    const splits: ImportSplit[] = [];
    let maxLabel = -1;
    for (const split of ['train', 'test'] as const) {
      const images = files.get(`${split}_images`);
      const labels = files.get(`${split}_labels`);
      if (!images && !labels) continue;
      if (!images || !labels) throw new HttpError(400, `${split}_${images ? 'labels' : 'images'}: missing; ${split} images and labels come as a pair`, `${split}_${images ? 'labels' : 'images'}`);
      const parsedImages = parseIdx(() => parseIdxImages(inflate(images.bytes, uploads.maxUploadBytes * 4, `${split}_images`), `${split}_images`), `${split}_images`);
      const parsedLabels = parseIdx(() => parseIdxLabels(inflate(labels.bytes, uploads.maxUploadBytes, `${split}_labels`), `${split}_labels`), `${split}_labels`);
      if (parsedImages.rows !== dataset.height || parsedImages.cols !== dataset.width) {
        throw new HttpError(422, `${split}_images: holds ${parsedImages.rows}×${parsedImages.cols} images; the dataset's are ${dataset.height}×${dataset.width}`, `${split}_images`);
      }
      if (parsedLabels.length !== parsedImages.count) throw new HttpError(422, `${split}_labels: ${parsedLabels.length} labels for ${parsedImages.count} images`, `${split}_labels`);
      for (const label of parsedLabels) maxLabel = Math.max(maxLabel, label);
      splits.push({ split, images: parsedImages.pixels, labels: parsedLabels, source: (i) => `${split}_images#${i}` });
    }
    if (splits.length === 0) throw new HttpError(400, 'train_images: missing; send train_images and train_labels (and/or test_images and test_labels) as form files', 'train_images');
    let classNames = dataset.classNames;
    if (classNames.length === 0) {
      const given = form.fields.classes?.split(',').map((c) => c.trim());
      classNames = given ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
      if (new Set(classNames).size !== classNames.length || classNames.some((c) => c === '' || c.length > 200)) throw new HttpError(400, 'classes: give distinct, non-empty names separated by commas', 'classes');
    }
    if (maxLabel >= classNames.length) throw new HttpError(400, `label: unknown label ${maxLabel}; the dataset has ${classNames.length} classes (0 to ${classNames.length - 1})`, 'label');
    const result = await store.importImages({
      dataset: dataset.name, classNames, height: dataset.height, width: dataset.width, kind: 'idx', source: 'upload', splits, skipDuplicates: false,
    });
    return reply.code(result.alreadyImported ? 200 : 201).send({ added: result.added, already_imported: result.alreadyImported, skipped: [], dataset: view(await find(dataset.name)) });
  });
}

/** The class names an import may use: the dataset's own (unknown labels refused), or the upload's for a dataset without classes. */
function checkLabels(dataset: DatasetSummary, names: string[], field: string): string[] {
  if (dataset.classNames.length === 0) return names;
  const unknown = names.filter((n) => !dataset.classNames.includes(n));
  if (unknown.length) throw new HttpError(400, `${field}: unknown label${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((n) => JSON.stringify(n.slice(0, 60))).join(', ')}; the dataset's classes are ${dataset.classNames.join(', ')}`, 'label');
  return names;
}

function splitOf(value: string | undefined): Split {
  if (value === undefined || value === 'train' || value === 'test') return value ?? 'train';
  throw new HttpError(400, `split: must be train or test, not ${JSON.stringify(value.slice(0, 20))}`, 'split');
}

function inflate(bytes: Uint8Array, maxBytes: number, field: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (error) {
    const tooBig = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    throw new HttpError(tooBig ? 413 : 422, `${field}: ${tooBig ? `inflates to more than ${maxBytes} bytes` : 'is not valid gzip'}`, field);
  }
}

function parseIdx<T>(parse: () => T, field: string): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof DataError || error instanceof RangeError) throw new HttpError(422, `${field}: ${(error as Error).message.replace(/^[^:]*: /, '')}`, field);
    throw error;
  }
}

interface Form {
  fields: Record<string, string | undefined>;
  file?: { field: string; name: string; bytes: Uint8Array };
  files: Map<string, { name: string; bytes: Uint8Array }>;
}

/** Reads a multipart form: the named text fields and up to `maxFiles` files from the named file fields. */
async function readForm(request: FastifyRequest, maxFileBytes: number, fieldNames: string[], fileFields: string[], maxFiles = 1): Promise<Form> {
  if (!request.isMultipart()) throw new HttpError(415, 'send a multipart/form-data form', 'body');
  const form: Form = { fields: {}, files: new Map() };
  const parts = request.parts({ limits: { fileSize: maxFileBytes, files: maxFiles, fields: fieldNames.length + 2, parts: maxFiles + fieldNames.length + 2, fieldSize: 4096 } });
  for await (const part of parts) {
    if (part.type === 'field') {
      if (!fieldNames.includes(part.fieldname)) throw new HttpError(400, `${part.fieldname.slice(0, 50)}: unknown form field (expected ${[...fieldNames, ...fileFields].join(', ')})`, part.fieldname.slice(0, 50));
      form.fields[part.fieldname] = String(part.value);
      continue;
    }
    const file = part as MultipartFile;
    if (!fileFields.includes(file.fieldname)) throw new HttpError(400, `${file.fieldname.slice(0, 50)}: unknown form file (expected ${fileFields.join(' or ')})`, file.fieldname.slice(0, 50));
    const bytes = await file.toBuffer();
    const entry = { name: (file.filename || file.fieldname).slice(0, 200), bytes };
    form.files.set(file.fieldname, entry);
    form.file ??= { field: file.fieldname, ...entry };
  }
  return form;
}
