/**
 * Data set images as PNGs, built by sharp from the raw grayscale bytes. They are enlarged with
 * nearest-neighbour so each of the 28×28 pixels stays a crisp square instead of a blur.
 */
import type sharpModule from 'sharp';

let sharpLoaded: Promise<typeof sharpModule> | undefined;
/** sharp (libvips) loads on the first image: commands that draw none never pay for it. */
export function loadSharp(): Promise<typeof sharpModule> {
  sharpLoaded ??= import('sharp').then((m) => m.default);
  return sharpLoaded;
}

export interface GrayImage {
  /** rows × cols bytes, row-major, 0 = black. */
  pixels: Uint8Array;
  rows: number;
  cols: number;
}

export interface ImagePngOptions {
  /** Edge length of the PNG in pixels. Default 112 (4× a 28-pixel image). */
  size?: number;
  /**
   * Draw dark clothes on white (Fashion-MNIST stores light-on-dark), like the `binary` colour
   * map of the tutorials; the page stays white and the garments stand out.
   */
  invert?: boolean;
}

export async function grayImagePng({ pixels, rows, cols }: GrayImage, { size = 112, invert = true }: ImagePngOptions = {}): Promise<Buffer> {
  if (pixels.length !== rows * cols) throw new RangeError(`an image of ${rows}x${cols} needs ${rows * cols} bytes, got ${pixels.length}`);
  const sharp = await loadSharp();
  const bytes = Buffer.from(invert ? pixels.map((v) => 255 - v) : pixels);
  return sharp(bytes, { raw: { width: cols, height: rows, channels: 1 } })
    .resize(size, Math.round((size * rows) / cols), { kernel: 'nearest' })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}

/** Image `index` of a byte dataset, without copying. */
export function imageAt(dataset: { images: Uint8Array; rows: number; cols: number }, index: number): GrayImage {
  const size = dataset.rows * dataset.cols;
  return { pixels: dataset.images.subarray(index * size, (index + 1) * size), rows: dataset.rows, cols: dataset.cols };
}
