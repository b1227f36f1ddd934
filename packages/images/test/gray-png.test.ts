// The short decoder for 8-bit grayscale PNGs gives exactly the pixels pngjs decodes, whatever
// filters the encoder chose, and steps aside (undefined) for anything else or anything damaged.
import zlib from 'node:zlib';
import fc from 'fast-check';
import pngjs from 'pngjs';
import { describe, expect, it } from 'vitest';
import { decodeGray8Png } from '../src/gray-png.js';

const MAX = 4096;

/** pngjs's encoding of gray pixels with one filter type for every row (-1: it picks per row). */
function encode(pixels: Uint8Array, width: number, height: number, filterType: number): Buffer {
  const png = new pngjs.PNG({ width, height, colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
  png.data = Buffer.from(pixels);
  return pngjs.PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8, filterType });
}

/** The gray channel pngjs decodes (it always expands to RGBA). */
function viaPngjs(bytes: Uint8Array): Uint8Array | undefined {
  try {
    const { data } = pngjs.PNG.sync.read(Buffer.from(bytes), { checkCRC: true });
    return Uint8Array.from({ length: data.length / 4 }, (_, i) => data[i * 4]);
  } catch {
    return undefined;
  }
}

/** A chunk with its length and CRC. */
function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A gray PNG built by hand from raw filtered rows, with the IDAT data cut into `parts`. */
function build(filteredRows: Uint8Array, width: number, height: number, { parts = 1, extra = [] as Buffer[] } = {}): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  const deflated = zlib.deflateSync(filteredRows);
  const cut = Math.ceil(deflated.length / parts);
  const idats = Array.from({ length: parts }, (_, i) => chunk('IDAT', deflated.subarray(i * cut, (i + 1) * cut)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...extra, ...idats, chunk('IEND', new Uint8Array())]);
}

const item = (seed: number): Uint8Array => Uint8Array.from({ length: 784 }, (_, i) => ((i * 37 + seed * 11) % 251) * ((i % 28) > 3 ? 1 : 0));

describe('decodeGray8Png', () => {
  it('decodes every filter type as pngjs does (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 784, maxLength: 784 }), fc.constantFrom(-1, 0, 1, 2, 3, 4), (pixels, filterType) => {
        const bytes = encode(pixels, 28, 28, filterType);
        fc.pre(bytes.length <= MAX);
        const decoded = decodeGray8Png(bytes, 28, 28, MAX);
        expect(decoded).toBeDefined();
        expect(Array.from(decoded!)).toEqual(Array.from(pixels));
        expect(Array.from(viaPngjs(bytes)!)).toEqual(Array.from(pixels));
      }),
      { seed: 2811, numRuns: 200 },
    );
  });

  it('gives what pngjs gives, or steps aside, for damaged files (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }), fc.constantFrom(0, 1, 2, 3, 4),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), fc.boolean(),
        (seed, filterType, flips, fixCrcs) => {
          const bytes = Buffer.from(encode(item(seed), 28, 28, filterType));
          for (const [at, mask] of flips) bytes[at % bytes.length] ^= mask;
          if (fixCrcs) {
            // Damage past the CRCs: every chunk's CRC made right again, so only the content is wrong.
            for (let offset = 8; offset + 12 <= bytes.length;) {
              const length = bytes.readUInt32BE(offset);
              if (offset + 12 + length > bytes.length) break;
              bytes.writeUInt32BE(zlib.crc32(bytes.subarray(offset + 4, offset + 8 + length)), offset + 8 + length);
              offset += 12 + length;
            }
          }
          const decoded = decodeGray8Png(bytes, 28, 28, MAX);
          if (decoded === undefined) return;
          const reference = viaPngjs(bytes);
          expect(reference, 'decoded what pngjs rejects').toBeDefined();
          expect(Array.from(decoded)).toEqual(Array.from(reference!));
        },
      ),
      { seed: 2812, numRuns: 400 },
    );
  });

  it('reads IDAT data split over several chunks and skips ancillary chunks', () => {
    const pixels = item(5);
    const rows = new Uint8Array(28 * 29);
    for (let y = 0; y < 28; y++) rows.set(pixels.subarray(y * 28, y * 28 + 28), y * 29 + 1);
    const text = chunk('tEXt', Buffer.from('Comment\0drawn by hand', 'latin1'));
    for (const bytes of [build(rows, 28, 28, { parts: 3 }), build(rows, 28, 28, { extra: [text] })]) {
      expect(Array.from(decodeGray8Png(bytes, 28, 28, MAX)!)).toEqual(Array.from(pixels));
      expect(Array.from(viaPngjs(bytes)!)).toEqual(Array.from(pixels));
    }
  });

  it('steps aside for other layouts, transparency, bad filters, short or long data and zlib bombs', () => {
    const pixels = item(7);
    const rows = new Uint8Array(28 * 29);
    for (let y = 0; y < 28; y++) rows.set(pixels.subarray(y * 28, y * 28 + 28), y * 29 + 1);
    const good = build(rows, 28, 28);
    expect(decodeGray8Png(good, 28, 28, MAX)).toBeDefined();
    expect(decodeGray8Png(good, 28, 27, MAX)).toBeUndefined(); // another size than asked
    expect(decodeGray8Png(good, 28, 28, good.length - 1)).toBeUndefined(); // larger than allowed
    const rgb = new pngjs.PNG({ width: 28, height: 28 });
    expect(decodeGray8Png(pngjs.PNG.sync.write(rgb, { colorType: 2 }), 28, 28, MAX)).toBeUndefined();
    expect(decodeGray8Png(build(rows, 28, 28, { extra: [chunk('tRNS', Buffer.from([0, 0]))] }), 28, 28, MAX)).toBeUndefined();
    expect(decodeGray8Png(build(rows, 28, 28, { extra: [chunk('ABCD', Buffer.from([1]))] }), 28, 28, MAX)).toBeUndefined();
    const badFilter = Uint8Array.from(rows);
    badFilter[29 * 5] = 5;
    expect(decodeGray8Png(build(badFilter, 28, 28), 28, 28, MAX)).toBeUndefined();
    expect(decodeGray8Png(build(rows.subarray(0, rows.length - 1), 28, 28), 28, 28, MAX)).toBeUndefined();
    expect(decodeGray8Png(build(new Uint8Array(rows.length + 1), 28, 28), 28, 28, MAX)).toBeUndefined();
    const bomb = build(new Uint8Array(50_000_000), 28, 28);
    expect(bomb.length).toBeLessThan(MAX * 20);
    expect(decodeGray8Png(bomb, 28, 28, bomb.length)).toBeUndefined();
    const noEnd = good.subarray(0, good.length - 12);
    expect(decodeGray8Png(noEnd, 28, 28, MAX)).toBeUndefined();
  });
});
