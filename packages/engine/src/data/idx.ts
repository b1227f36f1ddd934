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
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DataError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;
const UNSIGNED_BYTE = 0x08;

/** Decoded IDX images: `pixels` holds count × rows × cols bytes, image after image. */
export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  pixels: Uint8Array;
}

export interface ReadLabelsOptions {
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

/** Reads a file, gunzipping it if it is gzip (judged by its first bytes, not its name). */
export function readMaybeGzip(file: string, maxBytes?: number): Uint8Array {
  return gunzipIfNeeded(readFileBytes(file), file, maxBytes);
}

export function readIdxImages(file: string): IdxImages {
  return parseIdxImages(readMaybeGzip(file), file);
}

export function readIdxLabels(file: string, options: ReadLabelsOptions = {}): Uint8Array {
  return parseIdxLabels(readMaybeGzip(file), file, options);
}

/** Parses IDX images from bytes (raw or gzip); `file` is only used in error messages. */
export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  const data = gunzipIfNeeded(bytes, file);
  const [count, rows, cols] = parseHeader(data, file, IDX_IMAGES_MAGIC);
  if (rows === 0 || cols === 0) throw new DataError(file, `images are ${rows}x${cols}, which holds no pixels`);
  const expected = count * rows * cols;
  checkLength(data, file, 16, expected, `${plural(count, 'image')} of ${rows}x${cols}`);
  // A plain Uint8Array view (not a Buffer, whose slice() would not copy) with no copy of the data.
  return { count, rows, cols, pixels: new Uint8Array(data.buffer, data.byteOffset + 16, expected) };
}

/** Parses IDX labels from bytes (raw or gzip); `file` is only used in error messages. */
export function parseIdxLabels(bytes: Uint8Array, file: string, options: ReadLabelsOptions = {}): Uint8Array {
  const data = gunzipIfNeeded(bytes, file);
  const [count] = parseHeader(data, file, IDX_LABELS_MAGIC);
  checkLength(data, file, 8, count, plural(count, 'label'));
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

function readFileBytes(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(file, 'file not found');
    if (code === 'EISDIR') throw new DataError(file, 'is a folder, expected an IDX file');
    if (code === 'EACCES' || code === 'EPERM') throw new DataError(file, 'permission denied');
    throw new DataError(file, `cannot read: ${(err as Error).message}`);
  }
}

function gunzipIfNeeded(bytes: Uint8Array, file: string, maxBytes?: number): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes, { chunkSize: outputChunkSize(bytes, maxBytes), ...(maxBytes === undefined ? {} : { maxOutputLength: maxBytes }) });
  } catch (err) {
    throw new DataError(file, `gzip data is corrupt or truncated (${(err as Error).message})`);
  }
}

/**
 * One output chunk as large as the gzip trailer says the data is, so zlib decompresses into a
 * single buffer instead of joining many (which briefly holds the data twice: ~50 MB more peak
 * memory for the Fashion-MNIST training images). The trailer is only a hint, so it is capped.
 */
function outputChunkSize(gzip: Uint8Array, maxBytes?: number): number {
  if (gzip.length < 18) return 64 * 1024; // shorter than any gzip member: zlib reports it
  const trailer = new DataView(gzip.buffer, gzip.byteOffset, gzip.length).getUint32(gzip.length - 4, true);
  const cap = Math.min(maxBytes ?? Infinity, gzip.length * 1032, 2 ** 30); // deflate expands at most ~1032:1
  return Math.max(64 * 1024, Math.min(trailer + 1, cap));
}

function parseHeader(data: Uint8Array, file: string, expectedMagic: number): number[] {
  const expectedDims = expectedMagic & 0xff;
  const headerBytes = 4 + 4 * expectedDims;
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
  return dims;
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

function checkLength(data: Uint8Array, file: string, headerBytes: number, expected: number, what: string): void {
  const actual = data.length - headerBytes;
  if (actual < expected) {
    throw new DataError(
      file,
      `truncated: header says ${what} (${expected} bytes) but only ${actual} bytes follow the ${headerBytes}-byte header`,
    );
  }
  if (actual > expected) {
    throw new DataError(
      file,
      `${plural(actual - expected, 'extra byte')} after the data: header says ${what} (${expected} bytes) but ${actual} bytes follow the ${headerBytes}-byte header`,
    );
  }
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
