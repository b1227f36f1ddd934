/**
 * Turns a photo or drawing (PNG, JPEG, WebP, ...) into a Fashion-MNIST-like 28×28 input, with sharp:
 *   1. decode, apply EXIF rotation, put transparent areas on white, convert to grayscale;
 *   2. take the background level from the border pixels (their median);
 *   3. trim the margins that hold only background, then fit the item into 28×28 keeping its
 *      proportions, padding with the background level (Fashion-MNIST was made the same way);
 *   4. Fashion-MNIST is light on dark: invert when the background is light;
 *   5. stretch the levels so the background becomes black (0), like the training images.
 */
import { stat } from 'node:fs/promises';
import { DescentError } from '@descent/engine';

export const IMAGE_SIZE = 28;
/** How far (0–255) a pixel must differ from the background to count as part of the item when trimming. */
const TRIM_THRESHOLD = 24;
/** An image whose pixels all lie this close to its background (0–255) shows nothing to classify. */
export const LOW_CONTRAST = TRIM_THRESHOLD;

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

/** An image file, or an image's bytes with a name for messages (a zip entry, an upload). */
export type ImageInput = string | { name: string; bytes: Uint8Array };

export async function prepareImage(input: ImageInput): Promise<PreparedImage> {
  const file = typeof input === 'string' ? input : input.name;
  if (typeof input === 'string') {
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new DescentError(`${file}: is not a file`);
    } catch (err) {
      if (err instanceof DescentError) throw err;
      throw new DescentError(`${file}: no such image file`);
    }
  }
  const { default: sharp } = await import('sharp');
  let gray: { data: Buffer; width: number; height: number };
  try {
    const { data, info } = await sharp(typeof input === 'string' ? input : input.bytes).rotate().flatten({ background: '#ffffff' }).greyscale().raw().toBuffer({ resolveWithObject: true });
    gray = { data: firstChannel(data, info.channels), width: info.width, height: info.height };
  } catch (err) {
    throw new DescentError(`${file}: cannot decode the image (${(err as Error).message}); use a PNG, JPEG, WebP, GIF or TIFF file`);
  }
  const background = borderMedian(gray.data, gray.width, gray.height);
  let contrast = 0;
  for (const v of gray.data) contrast = Math.max(contrast, Math.abs(v - background));
  const raw = { raw: { width: gray.width, height: gray.height, channels: 1 as const } };
  const level = { r: background, g: background, b: background };
  // Fashion-MNIST items fill their frame: cut the margins that only hold background.
  let trimmed: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    trimmed = await sharp(gray.data, raw).trim({ background: level, threshold: TRIM_THRESHOLD }).raw().toBuffer({ resolveWithObject: true });
  } catch {
    trimmed = { data: gray.data, info: { width: gray.width, height: gray.height, channels: 1 } }; // nothing but background
  }
  const { data, info } = await sharp(firstChannel(trimmed.data, trimmed.info.channels), { raw: { width: trimmed.info.width, height: trimmed.info.height, channels: 1 } })
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

/** The median of the pixels on the image's outer edge. */
export function borderMedian(data: Uint8Array, width: number, height: number): number {
  const values: number[] = [];
  for (let x = 0; x < width; x++) values.push(data[x], data[(height - 1) * width + x]);
  for (let y = 1; y < height - 1; y++) values.push(data[y * width], data[y * width + width - 1]);
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)];
}

function firstChannel(data: Buffer, channels: number): Buffer {
  if (channels === 1) return data;
  const out = Buffer.alloc(data.length / channels);
  for (let i = 0; i < out.length; i++) out[i] = data[i * channels];
  return out;
}
