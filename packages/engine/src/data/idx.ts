/**
 * IDX files (the format of MNIST and Fashion-MNIST), raw or gzipped.
 *
 *   offset 0   magic: 0x00 0x00 <type 0x08 = unsigned byte> <number of dimensions>
 *   offset 4   one big-endian uint32 per dimension
 *   then       the data, row-major, one byte per value
 *
 * Images are 3-D (count, rows, cols), magic 0x00000803; labels are 1-D (count), magic 0x00000801.
 * Every problem is a DataError that names the file and says what is wrong.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { DataError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { closeFile, formatBytes, openRegularFile, readChunks, readExactly, type FailWith, type OpenedFile } from './read.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
const UNSIGNED_BYTE = 0x08;
/** Largest IDX file (header and data, after decompression) read unless the caller allows more: 128 MiB. */
export const DEFAULT_MAX_IDX_BYTES = 128 * 2 ** 20;

/** Decoded IDX images: `pixels` holds count × rows × cols bytes, image after image. */
export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

export interface ReadIdxOptions {
  /** Largest file, header and data after decompression, that is read (default 128 MiB; Fashion-MNIST's largest is 47 MB). */
  maxBytes?: number;
}

export interface ReadLabelsOptions extends ReadIdxOptions {
  /** When given, every label must be below this. */
  numClasses?: number;
}

export interface WriteIdxOptions {
  /** Gzip the output. Defaults to true when the file name ends in `.gz`. */
  gzip?: boolean;
}

/** True when the bytes start with the gzip signature 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Reads a file, gunzipping it if it is gzip (judged by its first bytes, not its name). With
 * `maxBytes`, decompression stops as soon as the output passes it (a DataError).
 */
export function readMaybeGzip(file: string, maxBytes = DEFAULT_MAX_IDX_BYTES): Uint8Array {
  const fail = failWith(file);
  const opened = openRegularFile(file, fail);
  try {
    if (opened.size > maxBytes + GZIP_SLACK) throw fail(`is ${formatBytes(opened.size)}, more than the ${formatBytes(maxBytes)} allowed`);
    const bytes = readExactly(opened, opened.size, 0, fail);
    if (!isGzip(bytes)) {
      if (bytes.length > maxBytes) throw fail(`is ${formatBytes(bytes.length)}, more than the ${formatBytes(maxBytes)} allowed`);
      return bytes;
    }
    return gunzipAtMost(bytes, maxBytes, file, (limit) => `decompresses to more than ${formatBytes(limit)}`);
  } finally {
    closeFile(opened);
  }
}

export function readIdxImages(file: string, options: ReadIdxOptions = {}): IdxImages {
  return imagesFrom(readIdxFile(file, IDX_IMAGES_MAGIC, options.maxBytes));
}

export function readIdxLabels(file: string, options: ReadLabelsOptions = {}): Uint8Array {
  return labelsFrom(readIdxFile(file, IDX_LABELS_MAGIC, options.maxBytes), file, options);
}

/**
 * readIdxImages, with a gzip file inflated as a stream straight into a buffer of the size its
 * header promises: the compressed bytes are never all in memory, so none are left behind as
 * garbage (a large ArrayBuffer waits for a major GC, which a training run may never have).
 */
export async function readIdxImagesStreamed(file: string, options: ReadIdxOptions = {}): Promise<IdxImages> {
  return imagesFrom(await readIdxFileStreamed(file, IDX_IMAGES_MAGIC, options.maxBytes));
}

/** readIdxLabels, with a gzip file inflated as a stream (see readIdxImagesStreamed). */
export async function readIdxLabelsStreamed(file: string, options: ReadLabelsOptions = {}): Promise<Uint8Array> {
  return labelsFrom(await readIdxFileStreamed(file, IDX_LABELS_MAGIC, options.maxBytes), file, options);
}

/** Parses IDX images from bytes (raw or gzip); `file` is only used in error messages. */
export function parseIdxImages(bytes: Uint8Array, file: string, options: ReadIdxOptions = {}): IdxImages {
  return imagesFrom(decodeIdxBytes(bytes, file, IDX_IMAGES_MAGIC, options.maxBytes));
}

/** Parses IDX labels from bytes (raw or gzip); `file` is only used in error messages. */
export function parseIdxLabels(bytes: Uint8Array, file: string, options: ReadLabelsOptions = {}): Uint8Array {
  return labelsFrom(decodeIdxBytes(bytes, file, IDX_LABELS_MAGIC, options.maxBytes), file, options);
}

/** A decoded IDX file: its dimensions, and header plus data as exactly the bytes the header promises. */
interface DecodedIdx {
  dims: number[];
  data: Uint8Array;
}

function imagesFrom({ dims: [count, rows, cols], data }: DecodedIdx): IdxImages {
  // A plain Uint8Array view (not a Buffer, whose slice() would not copy) with no copy of the data.
  return { count, rows, cols, pixels: new Uint8Array(data.buffer, data.byteOffset + 16, count * rows * cols) };
}

function labelsFrom({ dims: [count], data }: DecodedIdx, file: string, options: ReadLabelsOptions): Uint8Array {
  const labels = new Uint8Array(data.buffer, data.byteOffset + 8, count);
  const { numClasses } = options;
  if (numClasses !== undefined) {
    const bad = labels.findIndex((label) => label >= numClasses);
    if (bad >= 0) {
      throw new DataError(
        file,
        `label ${labels[bad]} at index ${bad} is out of range: there are ${numClasses} classes (0-${numClasses - 1})`,
      );
    }
  }
  return labels;
}

/** Encodes images as an IDX file (gzipped if asked). */
export function encodeIdxImages(images: IdxImages, options: { gzip?: boolean } = {}): Uint8Array {
  const { count, rows, cols, pixels } = images;
  if (pixels.length !== count * rows * cols) {
    throw new RangeError(`encodeIdxImages: ${pixels.length} pixels given for ${count} images of ${rows}x${cols}`);
  }
  return encode(IDX_IMAGES_MAGIC, [count, rows, cols], pixels, options.gzip ?? false);
}

/** Encodes labels as an IDX file (gzipped if asked). */
export function encodeIdxLabels(labels: Uint8Array, options: { gzip?: boolean } = {}): Uint8Array {
  return encode(IDX_LABELS_MAGIC, [labels.length], labels, options.gzip ?? false);
}

/** Writes images as an IDX file through a temporary name, so a crash never leaves half a file. */
export function writeIdxImages(file: string, images: IdxImages, options: WriteIdxOptions = {}): void {
  writeIdx(file, encodeIdxImages(images, { gzip: options.gzip ?? file.endsWith('.gz') }));
}

/** Writes labels as an IDX file through a temporary name, so a crash never leaves half a file. */
export function writeIdxLabels(file: string, labels: Uint8Array, options: WriteIdxOptions = {}): void {
  writeIdx(file, encodeIdxLabels(labels, { gzip: options.gzip ?? file.endsWith('.gz') }));
}

function writeIdx(file: string, bytes: Uint8Array): void {
  try {
    writeFileAtomic(file, bytes);
  } catch (err) {
    throw new DataError(file, `cannot write: ${(err as Error).message}`);
  }
}

/** A gzip file may be slightly larger than what it holds (stored blocks, headers). */
const GZIP_SLACK = 1 << 20;
/** How much gzip input is searched for the first bytes of output (the IDX header). */
const HEADER_SEARCH_BYTES = 1 << 20;
/** Input added per try while searching: deflate expands at most ~1032:1, so one try yields ≤ ~17 MB. */
const HEADER_SEARCH_STEP = 16 * 1024;
/** Chunks read from a gzip file, and inflated from it, when it is streamed. */
const STREAM_INPUT_CHUNK = 1 << 20;
const STREAM_OUTPUT_CHUNK = 256 * 1024;

/**
 * Reads an IDX file from disk. A raw file's size is compared with its header before the data is
 * read; a gzip file is read whole (its size capped) and decompressed as far as the header allows.
 */
function readIdxFile(file: string, magic: number, maxBytes = DEFAULT_MAX_IDX_BYTES): DecodedIdx {
  const fail = failWith(file);
  const opened = openRegularFile(file, fail);
  try {
    return readRawIdx(opened, file, magic, maxBytes) ?? decodeIdxBytes(readExactly(opened, opened.size, 0, fail), file, magic, maxBytes);
  } finally {
    closeFile(opened);
  }
}

/** readIdxFile, with a gzip file inflated as a stream (inflateIdx). */
async function readIdxFileStreamed(file: string, magic: number, maxBytes = DEFAULT_MAX_IDX_BYTES): Promise<DecodedIdx> {
  const opened = openRegularFile(file, failWith(file));
  try {
    return readRawIdx(opened, file, magic, maxBytes) ?? (await inflateIdx(opened, file, magic, maxBytes));
  } finally {
    closeFile(opened);
  }
}

/**
 * A raw IDX file, read once its size agrees with its header; undefined for a gzip file (whose
 * compressed size is checked here), which is left to the caller to inflate.
 */
function readRawIdx(opened: OpenedFile, file: string, magic: number, maxBytes: number): DecodedIdx | undefined {
  const fail = failWith(file);
  const head = readExactly(opened, Math.min(opened.size, headerBytesOf(magic)), 0, fail);
  if (isGzip(head)) {
    if (opened.size > maxBytes + GZIP_SLACK) throw fail(`is ${formatBytes(opened.size)} of gzip data, more than an IDX file may be (${formatBytes(maxBytes)})`);
    return undefined;
  }
  const dims = parseHeader(head, file, magic);
  const total = checkDeclaredSize(dims, file, magic, maxBytes);
  checkLength(opened.size, file, magic, dims, total);
  return { dims, data: readExactly(opened, total, 0, fail) };
}

/**
 * A gzip IDX file inflated as a stream: the header found as decodeIdxBytes finds it, then the
 * output copied into one buffer of the size the header promises, failing as soon as it passes
 * that. The errors are decodeIdxBytes's, but for a stream that holds too much and is also corrupt
 * within one inflate step after the point where it passes the promise: which problem is named then
 * depends on the step sizes, and the two readers' steps differ once the output passes 64 KiB.
 */
async function inflateIdx(opened: OpenedFile, file: string, magic: number, maxBytes: number): Promise<DecodedIdx> {
  const fail = failWith(file);
  const { dims, total } = gzipHeader((length) => readExactly(opened, length, 0, fail), opened.size, file, magic, maxBytes);
  // Uninitialised: its pages cost memory only once written, so a header promising far more than
  // the file holds costs little.
  const data = Buffer.allocUnsafeSlow(total);
  let length = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (length + chunk.length > total) return done(new DataError(file, inflatesPastHeader(dims, magic, total)));
      chunk.copy(data, length);
      length += chunk.length;
      done();
    },
  });
  try {
    await pipeline(readChunks(opened, STREAM_INPUT_CHUNK, fail), createGunzip({ chunkSize: STREAM_OUTPUT_CHUNK }), sink);
  } catch (err) {
    throw err instanceof DataError ? err : corruptGzip(file, err);
  }
  checkLength(length, file, magic, dims, total);
  return { dims, data };
}

/** Decodes IDX bytes held in memory, raw or gzip. */
function decodeIdxBytes(bytes: Uint8Array, file: string, magic: number, maxBytes = DEFAULT_MAX_IDX_BYTES): DecodedIdx {
  if (!isGzip(bytes)) {
    const dims = parseHeader(bytes, file, magic);
    const total = checkDeclaredSize(dims, file, magic, maxBytes);
    checkLength(bytes.length, file, magic, dims, total);
    return { dims, data: bytes };
  }
  // First only as much as the header needs, then the data, stopping one byte past what the header promises.
  const { dims, total } = gzipHeader((length) => bytes.subarray(0, length), bytes.length, file, magic, maxBytes);
  const data = gunzipAtMost(bytes, total, file, () => inflatesPastHeader(dims, magic, total));
  checkLength(data.length, file, magic, dims, total);
  return { dims, data };
}

/** The dimensions in a gzip IDX file's header and the size they promise; `prefix(n)` gives its first n bytes. */
function gzipHeader(prefix: (length: number) => Uint8Array, size: number, file: string, magic: number, maxBytes: number): { dims: number[]; total: number } {
  const dims = parseHeader(gunzipHead(prefix, size, headerBytesOf(magic), file), file, magic);
  return { dims, total: checkDeclaredSize(dims, file, magic, maxBytes) };
}

/**
 * The first `want` bytes of the output of a gzip stream of `size` bytes (fewer if it holds fewer),
 * decompressing a growing prefix of the input so that a small file that inflates to gigabytes costs little.
 */
function gunzipHead(prefix: (length: number) => Uint8Array, size: number, want: number, file: string): Uint8Array {
  for (let inputBytes = 1024; ; inputBytes += HEADER_SEARCH_STEP) {
    const input = prefix(Math.min(inputBytes, size));
    let out: Uint8Array;
    try {
      // Z_SYNC_FLUSH: a cut-off stream is not an error; output what the prefix holds.
      out = gunzipSync(input, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 2 * 1032 * HEADER_SEARCH_STEP });
    } catch (err) {
      throw corruptGzip(file, err);
    }
    if (out.length >= want || input.length === size) return out;
    if (input.length >= HEADER_SEARCH_BYTES) {
      throw new DataError(file, `gzip data holds no IDX header in its first ${formatBytes(HEADER_SEARCH_BYTES)}`);
    }
  }
}

/**
 * The whole output of a gzip stream, failing (with `tooLarge`) as soon as it passes `limit` bytes,
 * so nothing past limit + one chunk is ever inflated. Output goes into one buffer: first sized by
 * the ISIZE trailer (right for every honest single-member file), and if the trailer was wrong,
 * inflated again into a buffer of the limit (capped by deflate's ratio), never into a growing list
 * of chunks that would have to be joined (twice the memory).
 */
function gunzipAtMost(gzip: Uint8Array, limit: number, file: string, tooLarge: (limit: number) => string): Uint8Array {
  const trailer = gzip.length >= 18 ? new DataView(gzip.buffer, gzip.byteOffset, gzip.length).getUint32(gzip.length - 4, true) : 0;
  const cap = Math.min(limit + 1, gzip.length * 1032 + 1024);
  const hinted = Math.max(64 * 1024, Math.min(trailer + 1, cap));
  const inflate = (chunkSize: number, maxOutputLength: number, finishFlush = zlibConstants.Z_FINISH): Uint8Array =>
    gunzipSync(gzip, { chunkSize, maxOutputLength: Math.max(1, maxOutputLength), finishFlush });
  const passesLimit = (err: unknown): boolean => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'Z_BUF_ERROR') return code === 'ERR_BUFFER_TOO_LARGE';
    // Cut off: gunzipSync dropped the output of its last step, which may have passed the limit
    // before the cut. Asked again with the cut not an error, the answer no longer depends on the
    // size of the steps, and agrees with inflateIdx.
    try {
      inflate(Math.max(64 * 1024, cap), limit, zlibConstants.Z_SYNC_FLUSH);
      return false;
    } catch (again) {
      return (again as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    }
  };
  try {
    try {
      return inflate(hinted, Math.min(limit, hinted - 1));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE' || hinted - 1 >= limit) throw err;
      return inflate(Math.max(64 * 1024, cap), limit); // the trailer was wrong (or several gzip members)
    }
  } catch (err) {
    if (passesLimit(err)) throw new DataError(file, tooLarge(limit));
    throw corruptGzip(file, err);
  }
}

function corruptGzip(file: string, err: unknown): DataError {
  const detail = (err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR' ? 'unexpected end of file' : String((err as Error).message ?? err);
  return new DataError(file, `gzip data is corrupt or truncated (${detail.slice(0, 80)})`);
}

function failWith(file: string): FailWith {
  return (problem) => new DataError(file, problem);
}

function headerBytesOf(magic: number): number {
  return 4 + 4 * (magic & 0xff);
}

function parseHeader(data: Uint8Array, file: string, expectedMagic: number): number[] {
  const expectedDims = expectedMagic & 0xff;
  const headerBytes = headerBytesOf(expectedMagic);
  const what = expectedMagic === IDX_IMAGES_MAGIC ? 'IDX images' : 'IDX labels';
  if (data.length < 4) {
    throw new DataError(file, `too short to be an IDX file: ${plural(data.length, 'byte')}`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const magic = view.getUint32(0);
  if (magic !== expectedMagic) {
    throw new DataError(
      file,
      `wrong magic number ${hex32(magic)}, expected ${hex32(expectedMagic)} (${what}); ${describeMagic(magic)}`,
    );
  }
  if (data.length < headerBytes) {
    throw new DataError(file, `truncated: the ${what} header needs ${headerBytes} bytes but the file has ${data.length}`);
  }
  const dims: number[] = [];
  for (let i = 0; i < expectedDims; i++) dims.push(view.getUint32(4 + 4 * i));
  if (expectedMagic === IDX_IMAGES_MAGIC && (dims[1] === 0 || dims[2] === 0)) {
    throw new DataError(file, `images are ${dims[1]}x${dims[2]}, which holds no pixels`);
  }
  return dims;
}

/** Header and data bytes the header promises, refused when larger than `maxBytes`. */
function checkDeclaredSize(dims: number[], file: string, magic: number, maxBytes: number): number {
  const total = headerBytesOf(magic) + dims.reduce((a, b) => a * b, 1);
  if (total > maxBytes) {
    throw new DataError(file, `header says ${describeData(dims, magic)} (${formatBytes(total - headerBytesOf(magic))}), more than the ${formatBytes(maxBytes)} an IDX file may hold here`);
  }
  return total;
}

/** Says in words what a wrong magic number is, so swapped or foreign files are easy to spot. */
function describeMagic(magic: number): string {
  if (magic === IDX_LABELS_MAGIC) return 'this is an IDX labels file (1-D), not images';
  if (magic === IDX_IMAGES_MAGIC) return 'this is an IDX images file (3-D), not labels';
  if (magic >>> 16 !== 0) return 'this is not an IDX file';
  const type = (magic >>> 8) & 0xff;
  const dims = magic & 0xff;
  if (type !== UNSIGNED_BYTE) return `the data type is 0x${type.toString(16).padStart(2, '0')}, only unsigned bytes (0x08) are supported`;
  return `the data has ${dims} dimensions; images must be 3-D (count, rows, cols) and labels 1-D`;
}

function checkLength(length: number, file: string, magic: number, dims: number[], total: number): void {
  const headerBytes = headerBytesOf(magic);
  const actual = length - headerBytes;
  const expected = total - headerBytes;
  if (actual < expected) {
    throw new DataError(
      file,
      `truncated: header says ${describeData(dims, magic)} (${expected} bytes) but only ${actual} bytes follow the ${headerBytes}-byte header`,
    );
  }
  if (actual > expected) {
    throw new DataError(file, `${extraBytes(dims, magic, total, actual - expected)} but ${actual} bytes follow the ${headerBytes}-byte header`);
  }
}

/** Decompression stopped early: the output passed the size the header promises. */
function inflatesPastHeader(dims: number[], magic: number, total: number): string {
  return `${extraBytes(dims, magic, total)}: the data decompresses to more bytes than the header promises`;
}

/** "N extra bytes after the data: header says …" (N unknown when decompression was stopped early). */
function extraBytes(dims: number[], magic: number, total: number, extra?: number): string {
  const expected = total - headerBytesOf(magic);
  return `${extra === undefined ? 'extra bytes' : plural(extra, 'extra byte')} after the data: header says ${describeData(dims, magic)} (${expected} bytes)`;
}

function describeData(dims: number[], magic: number): string {
  return magic === IDX_IMAGES_MAGIC ? `${plural(dims[0], 'image')} of ${dims[1]}x${dims[2]}` : plural(dims[0], 'label');
}

function encode(magic: number, dims: number[], values: Uint8Array, gzip: boolean): Uint8Array {
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + values.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(values, header);
  return gzip ? gzipSync(out, { level: 9 }) : out;
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
