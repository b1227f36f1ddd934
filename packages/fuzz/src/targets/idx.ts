/**
 * The IDX reader: mutated images and labels files, raw and gzipped, from the fixture, from small
 * files made here, and from gzip bombs (a megabyte that inflates to a gigabyte) whose headers
 * promise little or much. Bytes are parsed in memory; one case in twenty goes through a file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { encodeIdxImages, encodeIdxLabels, parseIdxImages, parseIdxLabels, readIdxImages, readIdxLabels } from '@descent/engine';
import { applyByteEdits, byteEdit, concat, type ByteEdit } from '../mutate.js';
import type { FuzzTarget } from './target.js';

export interface IdxCase {
  seed: number;
  kind: 'images' | 'labels';
  /** Edits to the raw IDX bytes before compression. */
  rawEdits: ByteEdit[];
  gzip: boolean;
  /** Edits to the gzip bytes (or to the raw bytes again when not gzipped). */
  edits: ByteEdit[];
  throughFile: boolean;
}

interface Seed {
  kind: 'images' | 'labels';
  /** Raw IDX bytes, or a ready gzip stream (bombs are built as gzip directly). */
  bytes: Uint8Array;
  isGzip: boolean;
}

export function idxTarget(fixtureDir: string, workDir: string): FuzzTarget<IdxCase, { kind: 'images' | 'labels'; bytes: Uint8Array; throughFile: boolean }> {
  const seeds = makeSeeds(fixtureDir);
  const file = join(workDir, 'case.idx');
  return {
    name: 'idx',
    description: 'IDX images and labels (raw, gzip, gzip bombs), parsed from bytes and from files',
    arbitrary: fc.record({
      seed: fc.integer({ min: 0, max: seeds.length - 1 }),
      kind: fc.constantFrom('images' as const, 'labels' as const),
      rawEdits: fc.array(byteEdit, { maxLength: 3 }),
      gzip: fc.boolean(),
      edits: fc.array(byteEdit, { maxLength: 3 }),
      throughFile: fc.nat(19).map((n) => n === 0),
    }),
    prepare(input) {
      const seed = seeds[input.seed];
      let bytes = seed.bytes;
      if (!seed.isGzip) {
        bytes = applyByteEdits(bytes, input.rawEdits);
        if (input.gzip) bytes = gzipSync(bytes, { level: 1 });
      }
      bytes = applyByteEdits(bytes, input.edits);
      // Read as what the seed is most of the time, as the other kind sometimes.
      const kind = input.seed % 2 === 0 ? seed.kind : input.kind;
      if (input.throughFile) writeFileSync(file, bytes);
      return { kind, bytes, throughFile: input.throughFile };
    },
    run({ kind, bytes, throughFile }: { kind: 'images' | 'labels'; bytes: Uint8Array; throughFile: boolean }) {
      if (throughFile) return kind === 'images' ? readIdxImages(file) : readIdxLabels(file, { numClasses: 10 });
      return kind === 'images' ? parseIdxImages(bytes, 'upload.idx') : parseIdxLabels(bytes, 'upload.idx', { numClasses: 10 });
    },
    describe: (input) => JSON.stringify({ ...input, rawEdits: input.rawEdits.length, edits: input.edits.length }),
  };
}

function makeSeeds(fixtureDir: string): Seed[] {
  const image = (count: number, rows = 28, cols = 28) => ({
    count,
    rows,
    cols,
    pixels: Uint8Array.from({ length: count * rows * cols }, (_, i) => (i * 31) % 256),
  });
  const header = (magic: number, dims: number[]) => {
    const out = new Uint8Array(4 + 4 * dims.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, magic);
    dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
    return out;
  };
  // A gzip bomb: the header as one gzip member, then members of 1 MiB of zeros each (~1 KB apiece).
  const zeros = gzipSync(new Uint8Array(2 ** 20), { level: 9 });
  const bomb = (head: Uint8Array, mebibytes: number) => concat([gzipSync(head), ...Array.from({ length: mebibytes }, () => zeros)]);
  return [
    { kind: 'images', bytes: encodeIdxImages(image(3)), isGzip: false },
    { kind: 'labels', bytes: encodeIdxLabels(Uint8Array.from([0, 1, 9, 3, 5])), isGzip: false },
    { kind: 'images', bytes: encodeIdxImages(image(2, 5, 7)), isGzip: false },
    { kind: 'labels', bytes: new Uint8Array(readFileSync(join(fixtureDir, 't10k-labels-idx1-ubyte.gz'))), isGzip: true },
    { kind: 'images', bytes: new Uint8Array(readFileSync(join(fixtureDir, 't10k-images-idx3-ubyte.gz'))), isGzip: true },
    { kind: 'labels', bytes: encodeIdxLabels(new Uint8Array(0)), isGzip: false },
    // Bombs: the header promises 1 image, or 10,000 images (7.8 MB), or labels; the zeros go on far longer.
    { kind: 'images', bytes: bomb(header(0x803, [1, 28, 28]), 1024), isGzip: true },
    { kind: 'labels', bytes: bomb(header(0x801, [5]), 256), isGzip: true },
    { kind: 'images', bytes: bomb(header(0x803, [10_000, 28, 28]), 16), isGzip: true },
  ];
}
