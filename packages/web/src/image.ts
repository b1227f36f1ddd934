/**
 * A picture (a photo, a drawing on the canvas, a dataset image) made into a model input the way
 * `descent predict` and the server prepare uploads (packages/images):
 *   1. transparent areas on white, then gray levels;
 *   2. the background level is the median of the border pixels;
 *   3. an image already SIZE×SIZE on a dark background is taken as it is;
 *   4. otherwise the margins that hold only background are cut, and the item is fitted into
 *      SIZE×SIZE keeping its proportions (area-averaged), padded with the background level;
 *   5. light backgrounds are inverted (Fashion-MNIST is light on dark);
 *   6. levels are stretched so the background becomes black.
 * The server predicts from exactly these bytes (sent as a SIZE×SIZE gray PNG on a dark
 * background, which it takes as it is), so both answers come from the same input.
 */
export const SIZE = 28;
/** How far (0–255) a pixel must differ from the background to count as part of the item. */
const TRIM_THRESHOLD = 24;
/** Large photos are scaled down to this many pixels on their longer side before anything else. */
const MAX_SIDE = 1024;

export interface Prepared {
  pixels: Uint8Array;
  inverted: boolean;
  background: number;
}

/** Gray levels of RGBA pixels, composited on white. */
export function grayLevels(rgba: Uint8ClampedArray): Uint8Array {
  const gray = new Uint8Array(rgba.length / 4);
  for (let i = 0, j = 0; i < gray.length; i++, j += 4) {
    const alpha = rgba[j + 3] / 255;
    // ITU-R BT.601 luma, as libvips' greyscale for sRGB; then over white.
    const luma = 0.299 * rgba[j] + 0.587 * rgba[j + 1] + 0.114 * rgba[j + 2];
    gray[i] = Math.round(luma * alpha + 255 * (1 - alpha));
  }
  return gray;
}

/** The median of the pixels on the image's outer edge. */
export function borderMedian(data: Uint8Array, width: number, height: number): number {
  const values: number[] = [];
  for (let x = 0; x < width; x++) values.push(data[x], data[(height - 1) * width + x]);
  for (let y = 1; y < height - 1; y++) values.push(data[y * width], data[y * width + width - 1]);
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)];
}

/** The smallest box holding every pixel that differs from the background by more than the threshold (the whole image if none). */
function itemBox(data: Uint8Array, width: number, height: number, background: number) {
  let left = width, right = -1, top = height, bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (Math.abs(data[y * width + x] - background) > TRIM_THRESHOLD) {
        if (x < left) left = x;
        if (x > right) right = x;
        if (y < top) top = y;
        if (y > bottom) bottom = y;
      }
    }
  }
  return right < 0 ? { left: 0, top: 0, width, height } : { left, top, width: right - left + 1, height: bottom - top + 1 };
}

/**
 * The box (left, top, width, height) of `data` fitted into SIZE×SIZE keeping its proportions: each
 * output pixel is the average of the source area it covers (fractional pixels weighted).
 */
function fitInto(data: Uint8Array, stride: number, box: { left: number; top: number; width: number; height: number }, background: number): Uint8Array {
  const out = new Uint8Array(SIZE * SIZE).fill(background);
  const scale = SIZE / Math.max(box.width, box.height);
  const outWidth = Math.max(1, Math.round(box.width * scale));
  const outHeight = Math.max(1, Math.round(box.height * scale));
  const offsetX = Math.floor((SIZE - outWidth) / 2);
  const offsetY = Math.floor((SIZE - outHeight) / 2);
  const stepX = box.width / outWidth;
  const stepY = box.height / outHeight;
  for (let oy = 0; oy < outHeight; oy++) {
    const y0 = oy * stepY, y1 = y0 + stepY;
    for (let ox = 0; ox < outWidth; ox++) {
      const x0 = ox * stepX, x1 = x0 + stepX;
      let sum = 0, weight = 0;
      for (let sy = Math.floor(y0); sy < Math.min(box.height, Math.ceil(y1)); sy++) {
        const wy = Math.min(y1, sy + 1) - Math.max(y0, sy);
        const row = (box.top + sy) * stride + box.left;
        for (let sx = Math.floor(x0); sx < Math.min(box.width, Math.ceil(x1)); sx++) {
          const w = wy * (Math.min(x1, sx + 1) - Math.max(x0, sx));
          sum += data[row + sx] * w;
          weight += w;
        }
      }
      out[(offsetY + oy) * SIZE + offsetX + ox] = Math.round(sum / weight);
    }
  }
  return out;
}

/** Steps 2–6 on gray levels. */
export function prepareGray(gray: Uint8Array, width: number, height: number): Prepared {
  const background = borderMedian(gray, width, height);
  if (width === SIZE && height === SIZE && background < 128) return { pixels: Uint8Array.from(gray), inverted: false, background };
  const small = fitInto(gray, width, itemBox(gray, width, height, background), background);
  const inverted = background >= 128;
  const floor = inverted ? 255 - background : background;
  const range = Math.max(1, 255 - floor);
  const pixels = new Uint8Array(SIZE * SIZE);
  for (let i = 0; i < pixels.length; i++) {
    const v = inverted ? 255 - small[i] : small[i];
    pixels[i] = Math.round((Math.max(0, v - floor) * 255) / range);
  }
  return { pixels, inverted, background };
}

/** Steps 1–6 on a canvas's pixels. */
export function prepareCanvas(canvas: HTMLCanvasElement | OffscreenCanvas): Prepared {
  const context = canvas.getContext('2d', { willReadFrequently: true }) as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D;
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  return prepareGray(grayLevels(data), canvas.width, canvas.height);
}

/** Steps 1–6 on an image file (PNG, JPEG, WebP, GIF: whatever the browser decodes). */
export async function prepareFile(file: Blob): Promise<Prepared> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error(`${(file as File).name ?? 'the file'}: the browser cannot decode this image; use a PNG, JPEG, WebP or GIF file`);
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = new OffscreenCanvas(Math.max(1, Math.round(bitmap.width * scale)), Math.max(1, Math.round(bitmap.height * scale)));
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return prepareCanvas(canvas);
}

/** SIZE×SIZE gray bytes as an opaque gray PNG (what the server takes as it is). */
export async function pixelsToPng(pixels: Uint8Array): Promise<Blob> {
  const canvas = new OffscreenCanvas(SIZE, SIZE);
  const context = canvas.getContext('2d')!;
  const image = context.createImageData(SIZE, SIZE);
  for (let i = 0; i < pixels.length; i++) image.data.set([pixels[i], pixels[i], pixels[i], 255], i * 4);
  context.putImageData(image, 0, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}
