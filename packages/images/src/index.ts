/**
 * Turns a photo or drawing (PNG, JPEG, WebP, GIF, TIFF) into a Fashion-MNIST-like 28×28 input, with
 * sharp. Used by `descent predict` and by anything that accepts uploaded images.
 *
 * Images come from anywhere, so limits are checked before decoding: the file must be a regular
 * file of at most `maxBytes`, and its header may declare at most `maxPixels` pixels (sharp's
 * limitInputPixels, checked before any pixel is decoded). Large images are shrunk while decoding
 * (JPEG and WebP decode at a fraction of their size), so memory stays small whatever the input.
 * Decoder warnings and errors, often several lines from libvips, become one short line.
 *
 * The preparation:
 *   1. decode, apply EXIF rotation, put transparent areas on white, convert to grayscale;
 *   2. take the background level from the border pixels (their median);
 *   3. an image that is already 28×28 on a dark background is in the dataset's form: take it as is;
 *   4. otherwise trim the margins that hold only background, then fit the item into 28×28 keeping
 *      its proportions, padding with the background level (Fashion-MNIST was made the same way);
 *   5. Fashion-MNIST is light on dark: invert when the background is light;
 *   6. stretch the levels so the background becomes black (0), like the training images.
 *
 * A small 8-bit 28×28 PNG (what a web page or a script sends for a prediction) is decoded
 * in-process by pngjs (over Node's zlib, ~33 µs), or when it is plain grayscale by the short
 * decoder in gray-png.ts (~8 µs): the same bytes as sharp, without a trip through sharp's thread
 * pool.
 */
import { DataError, closeFile, formatBytes, openRegularFile, readExactly } from '@descent/engine';
import pngjs from 'pngjs';
import { decodeGray8Png } from './gray-png.js';
import type { Sharp, SharpOptions } from 'sharp';

export const IMAGE_SIZE = 28;
/** 40 megapixels: more than most cameras' photos (a 7,300 × 5,500 image). */
export const DEFAULT_MAX_PIXELS = 40_000_000;
/** Largest image file read. */
export const DEFAULT_MAX_IMAGE_BYTES = 64 * 2 ** 20;
/** Images are worked on at most this size (longest side); the result is 28×28 anyway. */
const WORKING_SIZE = 1024;
/** How far (0–255) a pixel must differ from the background to count as part of the item when trimming. */
const TRIM_THRESHOLD = 24;
/** An image whose pixels all lie this close to its background (0–255) shows nothing to classify. */
export const LOW_CONTRAST = TRIM_THRESHOLD;
/** PNGs up to this size may take the in-process path (which bounds what inflating them can cost). */
const SMALL_PNG_MAX_BYTES = 4096;

export interface ImageLimits {
  /** Most pixels (width × height) an image may declare. Default 40 million. */
  maxPixels?: number;
  /** Largest file or buffer, in bytes. Default 64 MiB. */
  maxBytes?: number;
}

export interface PrepareImageOptions extends ImageLimits {
  /** Names the image in error messages when `input` is bytes (default "image"). */
  name?: string;
}

export interface PreparedImage {
  /** 28×28 bytes, row-major, light object on a dark background. */
  pixels: Uint8Array;
  /** Whether the image was inverted (its background was light). */
  inverted: boolean;
  /** The background level found on the border (0–255, before inversion). */
  background: number;
  /** The largest difference between a pixel and the background (0–255): near 0, the image is blank. */
  contrast: number;
}

/** A grayscale image as decoded (shrunk to at most 1024 pixels on its longest side). */
export interface GrayImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Reads an image file as bytes: a regular file of at most `maxBytes`; a DataError naming it otherwise. */
export function readImageFile(file: string, { maxBytes = DEFAULT_MAX_IMAGE_BYTES }: ImageLimits = {}): Buffer {
  const fail = (problem: string) => new DataError(file, problem === 'file not found' ? 'no such image file' : problem);
  const opened = openRegularFile(file, fail);
  try {
    if (opened.size > maxBytes) throw fail(`is ${formatBytes(opened.size)}, more than an image may be (${formatBytes(maxBytes)})`);
    return readExactly(opened, opened.size, 0, fail);
  } finally {
    closeFile(opened);
  }
}

/**
 * Decodes an image (a file, or its bytes) to grayscale: EXIF rotation applied, transparency on
 * white, shrunk to at most 1024 pixels on its longest side. A DataError with one short line for
 * anything that is not a decodable image within the limits.
 */
export async function decodeGray(input: string | Uint8Array, options: PrepareImageOptions = {}): Promise<GrayImage> {
  const name = typeof input === 'string' ? input : options.name ?? 'image';
  const bytes = typeof input === 'string' ? readImageFile(input, options) : input;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  if (bytes.length > maxBytes) throw new DataError(name, `is ${formatBytes(bytes.length)}, more than an image may be (${formatBytes(maxBytes)})`);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    const image = await open(bytes, { limitInputPixels: maxPixels });
    const { data, info } = await image
      .rotate()
      .resize(WORKING_SIZE, WORKING_SIZE, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data: firstChannel(data, info.channels), width: info.width, height: info.height };
  } catch (err) {
    throw new DataError(name, describeDecodeError(err, maxPixels));
  }
}

/** Decodes and prepares an image (a file, or its bytes) as a 28×28 Fashion-MNIST-like input. */
export async function prepareImage(input: string | Uint8Array, options: PrepareImageOptions = {}): Promise<PreparedImage> {
  const bytes = typeof input === 'string' ? readImageFile(input, options) : input;
  if (bytes.length <= (options.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES)) {
    const small = prepareSmallPng(bytes);
    if (small) return small;
  }
  const gray = await decodeGray(bytes, { ...options, name: typeof input === 'string' ? input : options.name });
  const background = borderMedian(gray.data, gray.width, gray.height);
  const contrast = contrastOf(gray.data, background);
  if (gray.width === IMAGE_SIZE && gray.height === IMAGE_SIZE && background < 128) return { pixels: Uint8Array.from(gray.data), inverted: false, background, contrast };
  const raw = { raw: { width: gray.width, height: gray.height, channels: 1 as const } };
  const level = { r: background, g: background, b: background };
  // Fashion-MNIST items fill their frame: cut the margins that only hold background.
  let trimmed: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    trimmed = await (await open(gray.data, raw)).trim({ background: level, threshold: TRIM_THRESHOLD }).raw().toBuffer({ resolveWithObject: true });
  } catch {
    trimmed = { data: Buffer.from(gray.data), info: { width: gray.width, height: gray.height, channels: 1 } }; // nothing but background
  }
  const { data, info } = await (await open(firstChannel(trimmed.data, trimmed.info.channels), { raw: { width: trimmed.info.width, height: trimmed.info.height, channels: 1 } }))
    .resize(IMAGE_SIZE, IMAGE_SIZE, { fit: 'contain', background: level })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const small = firstChannel(data, info.channels);
  const inverted = background >= 128;
  const pixels = new Uint8Array(IMAGE_SIZE * IMAGE_SIZE);
  const floor = inverted ? 255 - background : background;
  const range = Math.max(1, 255 - floor);
  for (let i = 0; i < pixels.length; i++) {
    const v = inverted ? 255 - small[i] : small[i];
    pixels[i] = Math.round((Math.max(0, v - floor) * 255) / range);
  }
  return { pixels, inverted, background, contrast };
}

/** The largest difference between a pixel and the background level. */
function contrastOf(data: Uint8Array, background: number): number {
  let lowest = 255;
  let highest = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] < lowest) lowest = data[i];
    if (data[i] > highest) highest = data[i];
  }
  return Math.max(highest - background, background - lowest, 0);
}

/**
 * The in-process path: a small, 8-bit, non-interlaced 28×28 PNG whose pixels are all gray and
 * opaque, on a dark background, is already a model input. Anything else (or anything odd about
 * it) returns undefined and goes through sharp, which decides and words any error.
 */
export function prepareSmallPng(bytes: Uint8Array): PreparedImage | undefined {
  if (bytes.length > SMALL_PNG_MAX_BYTES || bytes.length < 33) return undefined;
  // Signature, then IHDR: width, height, bit depth, colour type, compression, filter, interlace.
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  for (let i = 0; i < 8; i++) if (bytes[i] !== signature[i]) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(12) !== 0x49484452) return undefined; // 'IHDR'
  if (view.getUint32(16) !== IMAGE_SIZE || view.getUint32(20) !== IMAGE_SIZE) return undefined;
  if (bytes[24] !== 8 || ![0, 2, 4, 6].includes(bytes[25]) || bytes[28] !== 0) return undefined;
  const gray = bytes[25] === 0 ? decodeGray8Png(bytes, IMAGE_SIZE, IMAGE_SIZE, SMALL_PNG_MAX_BYTES) : undefined;
  if (gray) return smallInput(gray);
  let rgba: Uint8Array;
  try {
    // pngjs expands every colour type (palette and tRNS included) to 8-bit RGBA; a non-interlaced
    // image inflates into a buffer of exactly the declared size, so a zlib bomb cannot grow it.
    const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { checkCRC: true });
    rgba = png.data;
  } catch {
    return undefined;
  }
  if (rgba.length !== IMAGE_SIZE * IMAGE_SIZE * 4) return undefined;
  const data = grayOfRgba(rgba);
  return data && smallInput(data);
}

/** 28×28 gray pixels as a model input, when the background is dark; undefined otherwise. */
function smallInput(data: Uint8Array): PreparedImage | undefined {
  const background = borderMedian(data, IMAGE_SIZE, IMAGE_SIZE);
  if (background >= 128) return undefined;
  return { pixels: data, inverted: false, background, contrast: contrastOf(data, background) };
}

/**
 * Gray levels of 8-bit RGBA pixels, when the image is gray and opaque (a canvas exports gray
 * drawings as RGBA); undefined when a pixel has colour or transparency.
 */
function grayOfRgba(rgba: Uint8Array): Uint8Array | undefined {
  const gray = new Uint8Array(rgba.length / 4);
  for (let i = 0, j = 0; i < gray.length; i++, j += 4) {
    const v = rgba[j];
    if (rgba[j + 1] !== v || rgba[j + 2] !== v || rgba[j + 3] !== 255) return undefined;
    gray[i] = v;
  }
  return gray;
}

/**
 * A decoder's message as one short line: libvips reports each warning on its own line, often
 * the same one many times; keep each distinct line once, in order, and cut the result.
 */
export function foldDecoderMessage(message: string, maxLength = 160): string {
  const lines = message
    .split(/\r?\n/)
    .map((line) => line.replace(/[\u0000-\u001f\u007f]/g, ' ').trim())
    .filter((line) => line.length > 0);
  const distinct = [...new Set(lines)];
  const text = distinct.join('; ') || 'unknown error';
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}

/** The median of the pixels on the image's outer edge. */
export function borderMedian(data: Uint8Array, width: number, height: number): number {
  // Counting, not sorting: the median of the border's levels is the level where the count passes half.
  const counts = new Uint32Array(256);
  for (let x = 0; x < width; x++) {
    counts[data[x]]++;
    counts[data[(height - 1) * width + x]]++;
  }
  for (let y = 1; y < height - 1; y++) {
    counts[data[y * width]]++;
    counts[data[y * width + width - 1]]++;
  }
  const half = Math.floor((2 * width + 2 * Math.max(0, height - 2)) / 2);
  let seen = 0;
  for (let level = 0; level < 256; level++) {
    seen += counts[level];
    if (seen > half) return level;
  }
  return 0;
}

function describeDecodeError(err: unknown, maxPixels: number): string {
  const message = foldDecoderMessage(String((err as Error)?.message ?? err));
  if (/pixel limit/i.test(message)) {
    return `the image has more than ${maxPixels.toLocaleString('en-US')} pixels, more than descent decodes; make it smaller first`;
  }
  return `cannot decode the image (${message}); use a PNG, JPEG, WebP, GIF or TIFF file`;
}

let sharpModule: ((input?: Buffer | Uint8Array, options?: SharpOptions) => Sharp) | undefined;

/** sharp is loaded on first use: it is a native module that commands without images never need. */
async function open(input: Buffer | Uint8Array, options: SharpOptions): Promise<Sharp> {
  sharpModule ??= (await import('sharp')).default;
  return sharpModule(input, options);
}

function firstChannel(data: Buffer, channels: number): Buffer {
  if (channels === 1) return data;
  const out = Buffer.alloc(data.length / channels);
  for (let i = 0; i < out.length; i++) out[i] = data[i * channels];
  return out;
}
