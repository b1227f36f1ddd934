// Reading labelled images from folders and zips: layout, skips, and hostile zips (size caps).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '@descent/engine';
import { readLabelledImages, readLabelledZip, type ReadOptions } from '../src/index.js';
import { makeZip } from './zip.js';

// A stand-in image format: "IMG" then the 4 pixel bytes of a 2×2 image.
const image = (...pixels: number[]) => Uint8Array.from([0x49, 0x4d, 0x47, ...pixels]);
const options: ReadOptions = {
  size: 4,
  split: 'train',
  decode: async (bytes, name) => {
    if (bytes.length !== 7 || bytes[0] !== 0x49) throw new Error(`${name}: cannot decode the image (not IMG)`);
    return bytes.subarray(3);
  },
};
const root = mkdtempSync(join(tmpdir(), 'descent-labelled-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function folder(files: Record<string, Uint8Array | string>): string {
  const dir = mkdtempSync(join(root, 'f-'));
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

describe('labelled images', () => {
  it('reads one folder per label, sorted, and reports what it skipped', async () => {
    const dir = folder({
      'Shirt/b.png': image(1, 2, 3, 4), 'Shirt/a.png': image(5, 6, 7, 8), 'Bag/x.jpg': image(9, 9, 9, 9),
      'Bag/notes.txt': 'hello', 'loose.png': image(0, 0, 0, 0), '.DS_Store': 'x',
    });
    const read = await readLabelledImages(dir, options);
    expect(read.classNames).toEqual(['Bag', 'Shirt']);
    expect(Array.from(read.splits.train!.images)).toEqual([9, 9, 9, 9, 5, 6, 7, 8, 1, 2, 3, 4]);
    expect(Array.from(read.splits.train!.labels)).toEqual([0, 1, 1]);
    expect(read.splits.train!.sources).toEqual(['Bag/x.jpg', 'Shirt/a.png', 'Shirt/b.png']);
    expect(read.skipped.map((s) => s.reason).sort()).toEqual(['hidden or system file', 'not an image file (.txt)', 'not inside a label folder']);
  });

  it('takes the split from train/ and test/ folders, in a zip inside one wrapping folder', async () => {
    const zip = makeZip([
      { name: 'clothes/train/Bag/1.png', data: image(1, 1, 1, 1) },
      { name: 'clothes/test/Bag/2.png', data: image(2, 2, 2, 2), stored: true },
      { name: 'clothes/test/Hat/3.png', data: image(3, 3, 3, 3) },
      { name: '__MACOSX/clothes/._1.png', data: Uint8Array.of(0) },
    ]);
    const file = join(root, 'clothes.zip');
    writeFileSync(file, zip);
    for (const read of [await readLabelledImages(file, options), await readLabelledZip(zip, 'upload.zip', options)]) {
      expect(read.classNames).toEqual(['Bag', 'Hat']);
      expect(Array.from(read.splits.train!.images)).toEqual([1, 1, 1, 1]);
      expect(Array.from(read.splits.test!.labels)).toEqual([0, 1]);
      expect(read.skipped).toEqual([{ file: '__MACOSX/clothes/._1.png', reason: 'hidden or system file' }]);
    }
  });

  it('fails in one line on a folder without images, a corrupt image, a corrupt zip', async () => {
    await expect(readLabelledImages(folder({ 'a/readme.txt': 'x' }), options)).rejects.toThrow(/holds no images in label folders.*1 not an image file \(\.txt\)/);
    await expect(readLabelledImages(folder({ 'a/bad.png': 'not an image' }), options)).rejects.toThrow(/a\/bad\.png: cannot decode/);
    const skipped = await readLabelledImages(folder({ 'a/bad.png': 'nope', 'a/good.png': image(1, 2, 3, 4) }), { ...options, skipUndecodable: true });
    expect(skipped.skipped).toEqual([{ file: 'a/bad.png', reason: 'cannot be decoded' }]);
    const broken = join(root, 'broken.zip');
    writeFileSync(broken, makeZip([{ name: 'a/1.png', data: image(1, 2, 3, 4) }]).subarray(0, 40));
    const error = await readLabelledImages(broken, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toMatch(/broken\.zip: is not a valid zip file/);
    await expect(readLabelledImages(join(root, 'missing'), options)).rejects.toThrow(/no such folder or zip file/);
  });

  it('checks sizes before reading: too many entries, entries too large, entries larger than declared', async () => {
    const many = makeZip(Array.from({ length: 6 }, (_, i) => ({ name: `a/${i}.png`, data: image(i, i, i, i) })));
    await expect(readLabelledZip(many, 'many.zip', { ...options, limits: { maxFiles: 5 } })).rejects.toThrow(/holds 6 entries; at most 5/);
    // A bomb: 8 MiB of zeros that deflate to ~8 KiB.
    const bomb = makeZip([{ name: 'a/bomb.png', data: new Uint8Array(8 * 1024 * 1024) }, { name: 'a/ok.png', data: image(1, 2, 3, 4) }]);
    const read = await readLabelledZip(bomb, 'bomb.zip', { ...options, limits: { maxFileBytes: 1024 * 1024 } });
    expect(read.skipped).toEqual([{ file: 'a/bomb.png', reason: 'larger than 1048576 bytes' }]);
    await expect(readLabelledZip(bomb, 'bomb.zip', { ...options, limits: { maxTotalBytes: 1024 * 1024 } })).rejects.toThrow(/more than 1048576 bytes uncompressed/);
    // An entry that says it holds 7 bytes but inflates to a megabyte.
    const liar = makeZip([{ name: 'a/liar.png', data: new Uint8Array(1024 * 1024), declaredSize: 7 }]);
    await expect(readLabelledZip(liar, 'liar.zip', options)).rejects.toThrow(DataError);
  });

  it('never crashes or over-allocates on damaged zips (property)', async () => {
    const good = makeZip([
      { name: 'x/train/A/1.png', data: image(1, 2, 3, 4) },
      { name: 'x/train/B/2.png', data: image(5, 6, 7, 8), stored: true },
      { name: 'x/test/A/3.png', data: image(9, 9, 9, 9) },
    ]);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat({ max: good.length }), async (edits, cut) => {
        const bytes = Buffer.from(good.subarray(0, Math.max(cut, good.length - 30)));
        for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
        const before = process.memoryUsage().arrayBuffers;
        try {
          const read = await readLabelledZip(bytes, 'fuzz.zip', { ...options, skipUndecodable: true, limits: { maxFileBytes: 1 << 20, maxTotalBytes: 4 << 20 } });
          for (const part of Object.values(read.splits)) expect(part!.images.length).toBe(part!.labels.length * 4);
        } catch (err) {
          expect(err).toBeInstanceOf(DataError);
          expect((err as Error).message).not.toContain('\n');
        }
        expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
      }),
      { seed: 2024, numRuns: 300 },
    );
  });
});
