/**
 * The image decoder: small PNG, JPEG, WebP, GIF and TIFF files made with sharp (and a 28×28 gray
 * PNG, which the in-process decoder takes), mutated as bytes,
 * and PNGs whose header claims up to 65,535 × 65,535 pixels (with a correct checksum, so the
 * decoder believes it).
 */
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import sharp from 'sharp';
import { prepareImage } from '@descent/images';
import { applyByteEdits, byteEdit, type ByteEdit } from '../mutate.js';
import type { FuzzTarget } from './target.js';

export interface ImageCase {
  seed: number;
  edits: ByteEdit[];
  /** For PNG seeds: width and height written into the header (IHDR), checksum fixed. */
  claimedSize?: [number, number];
}

export async function imageSeeds(): Promise<Uint8Array[]> {
  const width = 40;
  const height = 30;
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = x > 10 && x < 30 && y > 5 && y < 25;
      pixels.fill(inside ? 40 : 230, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
  const base = () => sharp(pixels, { raw: { width, height, channels: 3 } });
  return Promise.all([
    base().png().toBuffer(),
    base().jpeg({ quality: 80 }).toBuffer(),
    base().webp().toBuffer(),
    base().gif().toBuffer(),
    base().tiff().toBuffer(),
    base().png({ palette: true }).toBuffer(),
    // A 28×28 gray PNG on black, what a prediction request sends: the in-process decoder's case.
    sharp(Buffer.from(Array.from({ length: 28 * 28 }, (_, i) => ((i % 28) > 6 && (i % 28) < 22 ? 200 : 0))), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace('b-w').png().toBuffer(),
  ]).then((buffers) => buffers.map((b) => new Uint8Array(b)));
}

export function imageTarget(seeds: Uint8Array[]): FuzzTarget<ImageCase, Uint8Array> {
  return {
    name: 'image',
    description: 'images (PNG, JPEG, WebP, GIF, TIFF) mutated as bytes, and PNG headers claiming huge sizes',
    arbitrary: fc.record({
      seed: fc.integer({ min: 0, max: seeds.length - 1 }),
      edits: fc.array(byteEdit, { maxLength: 3 }),
      claimedSize: fc.oneof(
        { weight: 3, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 65_535 }), fc.integer({ min: 1, max: 65_535 })) },
      ),
    }),
    prepare: (input) => withClaimedSize(seeds[input.seed], input.claimedSize) ?? applyByteEdits(seeds[input.seed], input.edits),
    run: (bytes: Uint8Array) => prepareImage(bytes, { name: 'upload.png' }),
    describe: (input) => JSON.stringify({ ...input, edits: input.edits.map((e) => e.kind) }),
  };
}

/** A PNG with its IHDR width and height replaced and the chunk's CRC recomputed; undefined for other formats. */
export function withClaimedSize(png: Uint8Array, size: [number, number] | undefined): Uint8Array | undefined {
  if (!size || png[1] !== 0x50 || png[2] !== 0x4e || png[3] !== 0x47) return undefined;
  const out = Uint8Array.from(png);
  const view = new DataView(out.buffer);
  // Signature (8 bytes), then the IHDR chunk: length (4), type (4), width (4), height (4), ..., CRC.
  view.setUint32(16, size[0]);
  view.setUint32(20, size[1]);
  view.setUint32(29, crc32(out.subarray(12, 29)));
  return out;
}
