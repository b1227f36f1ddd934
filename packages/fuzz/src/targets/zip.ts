/**
 * Zips of labelled images, as `descent db import-images` and uploads read them (the store's
 * readLabelledZip, each image prepared by @descent/images): small well-formed zips in both layouts,
 * mutated as bytes, plus zips whose entries lie about their size, deflate bombs, many entries,
 * names with "..", absolute paths and control characters.
 */
import fc from 'fast-check';
import sharp from 'sharp';
import { prepareImage } from '@descent/images';
import { readLabelledZip } from '@descent/store';
import { applyByteEdits, byteEdit, type ByteEdit } from '../mutate.js';
import { makeZip, type ZipEntry } from '../zip.js';
import type { FuzzTarget } from './target.js';

export interface ZipCase {
  seed: number;
  edits: ByteEdit[];
  skipUndecodable: boolean;
}

const NAMES = ['clothes/Shirt/a.png', 'clothes/Bag/b.jpg', 'train/Shirt/c.png', 'test/Bag/d.png', '../evil/e.png', '/abs/Shirt/f.png', 'x/Sh\nirt/g.png', 'x/\u0000/h.png', 'x/Shirt/i.txt', '__MACOSX/x/._j.png'];

export async function zipSeeds(): Promise<Uint8Array[]> {
  const pixels = Buffer.alloc(12 * 10 * 3, 200);
  pixels.fill(30, 60, 240);
  const png = new Uint8Array(await sharp(pixels, { raw: { width: 12, height: 10, channels: 3 } }).png().toBuffer());
  const jpeg = new Uint8Array(await sharp(pixels, { raw: { width: 12, height: 10, channels: 3 } }).jpeg().toBuffer());
  const zip = (entries: ZipEntry[]) => new Uint8Array(makeZip(entries));
  const MiB = 2 ** 20;
  return [
    zip([{ name: NAMES[0], data: png }, { name: NAMES[1], data: jpeg, stored: true }]),
    zip([{ name: NAMES[2], data: png }, { name: NAMES[3], data: png }, { name: NAMES[8], data: new TextEncoder().encode('notes') }, { name: NAMES[9], data: png }]),
    zip([{ name: NAMES[4], data: png }, { name: NAMES[5], data: png }, { name: NAMES[6], data: png }, { name: NAMES[7], data: jpeg }]),
    // A deflate bomb that says so (32 MiB of zeros, the largest entry read), and one that lies (declares 7 bytes).
    zip([{ name: 'a/Shirt/bomb.png', data: new Uint8Array(32 * MiB) }, { name: NAMES[0], data: png }]),
    zip([{ name: 'a/Shirt/liar.png', data: new Uint8Array(4 * MiB), declaredSize: 7 }, { name: NAMES[1], data: jpeg }]),
    // Many small entries and label folders (each image costs a decode: 60 stay within the time limit).
    zip(Array.from({ length: 60 }, (_, i) => ({ name: `many/c${i % 40}/${i}.png`, data: png, stored: i % 2 === 0 }))),
    // Names of hundreds of characters: a label folder, an extension, a file.
    zip([{ name: `x/${'L'.repeat(300)}/a.png`, data: png }, { name: `x/Shirt/b.${'e'.repeat(500)}`, data: png }, { name: `x/Shirt/${'f'.repeat(2000)}.png`, data: jpeg }]),
  ];
}

export function zipTarget(seeds: Uint8Array[]): FuzzTarget<ZipCase, { bytes: Uint8Array; skipUndecodable: boolean }> {
  return {
    name: 'zip',
    description: 'zips of labelled images (both layouts, lying sizes, deflate bombs, odd names) mutated as bytes, read and decoded',
    arbitrary: fc.record({
      seed: fc.integer({ min: 0, max: seeds.length - 1 }),
      edits: fc.array(byteEdit, { maxLength: 3 }),
      skipUndecodable: fc.boolean(),
    }),
    prepare: (input) => ({ bytes: applyByteEdits(seeds[input.seed], input.edits), skipUndecodable: input.skipUndecodable }),
    run: ({ bytes, skipUndecodable }) => readLabelledZip(bytes, 'upload.zip', {
      size: 28 * 28,
      split: 'train',
      skipUndecodable,
      decode: async (image, name) => (await prepareImage(image, { name })).pixels,
    }),
    describe: (input) => JSON.stringify({ ...input, edits: input.edits.map((e) => e.kind) }),
  };
}
