// Preparing images: a 28×28 item on a dark background is taken as it is, and the in-process path
// for small gray PNGs gives exactly what sharp gives, or steps aside.
import fc from 'fast-check';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encode as encodePng } from 'fast-png';
import { borderMedian, prepareImage, prepareSmallPng } from '../src/index.js';

/** A light item on black, like a Fashion-MNIST image. */
function item(seed: number): Uint8Array {
  const pixels = new Uint8Array(28 * 28);
  for (let y = 4; y < 24; y++) for (let x = 6; x < 22; x++) pixels[y * 28 + x] = ((x * 7 + y * 13 + seed) % 200) + 55;
  return pixels;
}

/** A PNG of gray pixels: 1 channel, or the same gray in RGB / RGBA as a canvas exports it. */
function png(pixels: Uint8Array, width = 28, height = 28, channels = 1): Uint8Array {
  const data = new Uint8Array(pixels.length * channels);
  for (let i = 0; i < pixels.length; i++) {
    for (let c = 0; c < channels; c++) data[i * channels + c] = channels % 2 === 0 && c === channels - 1 ? 255 : pixels[i];
  }
  return encodePng({ width, height, data, depth: 8, channels });
}

async function viaSharp(bytes: Uint8Array): Promise<Uint8Array> {
  const { data, info } = await sharp(bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data).filter((_, i) => i % info.channels === 0);
}

describe('prepareImage', () => {
  it('takes a 28×28 grayscale item on black as it is, in-process and through sharp alike', async () => {
    const pixels = item(3);
    for (const channels of [1, 2, 3, 4]) {
      const bytes = png(pixels, 28, 28, channels);
      const fast = prepareSmallPng(bytes);
      expect(fast, `${channels} channels`).toBeDefined();
      expect(Array.from(fast!.pixels)).toEqual(Array.from(pixels));
      expect(Array.from(await viaSharp(bytes))).toEqual(Array.from(pixels));
      const prepared = await prepareImage(bytes, { name: 'item.png' });
      expect(Array.from(prepared.pixels)).toEqual(Array.from(pixels));
      expect(prepared.inverted).toBe(false);
    }
    // A 28×28 item on black that the in-process path leaves to sharp (16-bit) is taken as it is too.
    const sixteen = encodePng({ width: 28, height: 28, data: Uint16Array.from(pixels, (v) => v * 257), depth: 16, channels: 1 });
    expect(prepareSmallPng(sixteen)).toBeUndefined();
    expect(Array.from((await prepareImage(sixteen, { name: 'sixteen.png' })).pixels)).toEqual(Array.from(pixels));
  });

  it('sends anything but a small 8-bit grayscale 28×28 PNG on a dark background through sharp', async () => {
    expect(prepareSmallPng(png(item(1).map((v) => 255 - v)))).toBeUndefined(); // light background
    expect(prepareSmallPng(png(new Uint8Array(30 * 28), 30, 28))).toBeUndefined();
    const reddish = encodePng({ width: 28, height: 28, data: new Uint8Array(784 * 3).map((_, i) => (i % 3 === 0 ? 90 : 10)), depth: 8, channels: 3 });
    expect(prepareSmallPng(reddish)).toBeUndefined();
    const seeThrough = encodePng({ width: 28, height: 28, data: new Uint8Array(784 * 2).map((_, i) => (i % 2 === 1 ? 128 : 0)), depth: 8, channels: 2 });
    expect(prepareSmallPng(seeThrough)).toBeUndefined();
    // A corrupted CRC is left for sharp to judge, and sharp words the error.
    const bytes = png(item(4));
    bytes[bytes.length - 20] ^= 0xff;
    expect(prepareSmallPng(bytes)).toBeUndefined();
    // A light-background 28×28 image is still inverted and refitted.
    const light = await prepareImage(png(item(1).map((v) => 255 - v)), { name: 'light.png' });
    expect(light.inverted).toBe(true);
  });

  it('the in-process path gives the bytes sharp decodes, for any gray 28×28 image on a dark border (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 784, maxLength: 784 }), fc.integer({ min: 0, max: 127 }), fc.constantFrom(1, 2, 3, 4), async (pixels, border, channels) => {
        for (let i = 0; i < 28; i++) pixels[i] = pixels[27 * 28 + i] = pixels[i * 28] = pixels[i * 28 + 27] = border;
        const bytes = png(pixels, 28, 28, channels);
        const fast = prepareSmallPng(bytes);
        if (bytes.length > 4096) return expect(fast).toBeUndefined();
        expect(fast).toBeDefined();
        expect(Array.from(fast!.pixels)).toEqual(Array.from(await viaSharp(bytes)));
      }),
      { seed: 1313, numRuns: 60 },
    );
  });
});

describe('borderMedian', () => {
  it('is the middle of the sorted border levels, for any size (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), fc.uint8Array({ minLength: 144, maxLength: 144 }), (width, height, levels) => {
        const data = levels.subarray(0, width * height);
        const border: number[] = [];
        for (let x = 0; x < width; x++) border.push(data[x], data[(height - 1) * width + x]);
        for (let y = 1; y < height - 1; y++) border.push(data[y * width], data[y * width + width - 1]);
        border.sort((a, b) => a - b);
        expect(borderMedian(data, width, height)).toBe(border[Math.floor(border.length / 2)]);
      }),
      { seed: 2813, numRuns: 300 },
    );
  });
});
