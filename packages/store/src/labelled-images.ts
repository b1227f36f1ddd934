/**
 * Labelled images from a folder or a zip file, laid out one folder per label (as Keras's
 * image_dataset_from_directory reads them):
 *
 *   clothes/Shirt/a.png, clothes/Shirt/b.jpg, clothes/Bag/c.png, …        split given by the caller
 *   clothes/train/Shirt/a.png, …, clothes/test/Shirt/z.png                 split from the folder
 *
 * A zip may hold that layout at its top or inside one folder. Class names are the label folders'
 * names, sorted. Files are read one at a time and handed to `decode` (which makes each one the
 * dataset's height × width bytes); only the decoded bytes are kept.
 *
 * Outside input: the zip's entry count and each entry's declared size are checked before anything
 * is read or allocated, and the reader stops at the declared size (so a zip bomb or an entry that
 * lies about its size fails with one line); no file is ever written.
 */
import { open, opendir, readFile, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import type yauzl from 'yauzl';
import { DataError } from '@descent/engine';
import { oneLine } from './driver.js';
import type { Split } from './store.js';

export interface ImageLimits {
  /** Most files (or zip entries) looked at. */
  maxFiles: number;
  /** Largest single image file, in bytes. */
  maxFileBytes: number;
  /** Most bytes read (uncompressed) over all files. */
  maxTotalBytes: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxFiles: 200_000, maxFileBytes: 32 * 1024 * 1024, maxTotalBytes: 2 * 1024 * 1024 * 1024 };

/** File name endings taken as images; anything else is skipped and reported. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif'];

export interface ReadOptions {
  /** Makes an image file's bytes into `size` pixel bytes; throws (any error) when it cannot. */
  decode(bytes: Uint8Array, name: string): Promise<Uint8Array>;
  /** Bytes per decoded image (height × width). */
  size: number;
  /** The split of images not under a train/ or test/ folder. */
  split: Split;
  /** Skip images that do not decode (listed in `skipped`) instead of failing. */
  skipUndecodable?: boolean;
  limits?: Partial<ImageLimits>;
  /** Called after each file: files done, files in all. */
  onProgress?(done: number, total: number): void;
}

export interface LabelledSplit {
  images: Uint8Array;
  /** Index into classNames, per image. */
  labels: Uint8Array;
  /** Path of each image inside the folder or zip. */
  sources: string[];
}

export interface LabelledImages {
  /** Label folder names, sorted. */
  classNames: string[];
  splits: Partial<Record<Split, LabelledSplit>>;
  /** Files not imported, with the reason. */
  skipped: Array<{ file: string; reason: string }>;
}

interface Entry {
  /** Path inside the folder or zip, with '/' separators. */
  path: string;
  size: number;
  read(): Promise<Uint8Array>;
}

/** Reads a folder or a .zip file (by its first bytes) of labelled images. */
export async function readLabelledImages(path: string, options: ReadOptions): Promise<LabelledImages> {
  const limits = { ...DEFAULT_IMAGE_LIMITS, ...options.limits };
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new DataError(path, 'no such folder or zip file');
  }
  if (info.isDirectory()) return collect(path, await folderEntries(path, limits), options, limits);
  const zip = await zipEntries(path, limits, await isZipFile(path));
  try {
    return await collect(path, zip.entries, options, limits);
  } finally {
    zip.close();
  }
}

/** Reads a zip held in memory (an upload) of labelled images. */
export async function readLabelledZip(bytes: Uint8Array, name: string, options: ReadOptions): Promise<LabelledImages> {
  const limits = { ...DEFAULT_IMAGE_LIMITS, ...options.limits };
  const zip = await zipEntries(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), limits, true, name);
  try {
    return await collect(name, zip.entries, options, limits);
  } finally {
    zip.close();
  }
}

async function collect(where: string, entries: Entry[], options: ReadOptions, limits: ImageLimits): Promise<LabelledImages> {
  const skipped: Array<{ file: string; reason: string }> = [];
  const placed: Array<{ entry: Entry; split: Split; label: string; path: string }> = [];
  const segments = entries.map((e) => e.path.split('/'));
  const hidden = (parts: string[]) => parts.some((p) => p.startsWith('.')) || parts[0] === '__MACOSX';
  // A zip of a folder holds everything under that one folder: look inside it.
  const visible = segments.filter((parts) => !hidden(parts));
  const wrapper = visible.length > 0 && visible.every((s) => s.length > 2 && s[0] === visible[0][0]) && !isSplit(visible[0][0]) ? visible[0][0] : undefined;
  for (const [i, entry] of entries.entries()) {
    const parts = wrapper !== undefined && segments[i][0] === wrapper ? segments[i].slice(1) : segments[i];
    const file = parts[parts.length - 1];
    if (hidden(segments[i])) {
      skipped.push({ file: entry.path, reason: 'hidden or system file' });
      continue;
    }
    if (!IMAGE_EXTENSIONS.includes(extname(file).toLowerCase())) {
      skipped.push({ file: entry.path, reason: `not an image file (${extname(file) || 'no extension'})` });
      continue;
    }
    const withSplit = isSplit(parts[0]) && parts.length >= 3;
    const label = withSplit ? parts[1] : parts.length >= 2 ? parts[0] : undefined;
    if (label === undefined) {
      skipped.push({ file: entry.path, reason: 'not inside a label folder' });
      continue;
    }
    if (label.length > 200) {
      skipped.push({ file: entry.path, reason: 'label folder name longer than 200 characters' });
      continue;
    }
    if (entry.size > limits.maxFileBytes) {
      skipped.push({ file: entry.path, reason: `larger than ${limits.maxFileBytes} bytes` });
      continue;
    }
    placed.push({ entry, split: withSplit ? (parts[0] as Split) : options.split, label, path: entry.path });
  }
  if (placed.length === 0) {
    const why = skipped.length ? ` (${skipped.length} other file${skipped.length === 1 ? '' : 's'} skipped: ${summarise(skipped)})` : '';
    throw new DataError(where, `holds no images in label folders; expected LABEL/IMAGE.png (or train/LABEL/…, test/LABEL/…)${why}`);
  }
  placed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const classNames = [...new Set(placed.map((p) => p.label))].sort();
  const labelOf = new Map(classNames.map((name, i) => [name, i]));
  if (classNames.length > 256) throw new DataError(where, `has ${classNames.length} label folders; at most 256 classes are supported`);

  const parts: Partial<Record<Split, { images: Uint8Array[]; labels: number[]; sources: string[] }>> = {};
  let done = 0;
  for (const item of placed) {
    let pixels: Uint8Array;
    try {
      pixels = await options.decode(await item.entry.read(), item.path);
    } catch (err) {
      const reason = oneLine((err as Error).message ?? String(err));
      if (!options.skipUndecodable) throw new DataError(`${where}: ${item.path}`, `${reason.replace(/^.*?: /, '')}`);
      skipped.push({ file: item.path, reason: 'cannot be decoded' });
      continue;
    }
    if (pixels.length !== options.size) throw new RangeError(`decode gave ${pixels.length} bytes for ${item.path}, expected ${options.size}`);
    const part = (parts[item.split] ??= { images: [], labels: [], sources: [] });
    part.images.push(pixels);
    part.labels.push(labelOf.get(item.label)!);
    part.sources.push(item.path);
    options.onProgress?.(++done, placed.length);
  }
  const splits: Partial<Record<Split, LabelledSplit>> = {};
  for (const [split, part] of Object.entries(parts) as Array<[Split, NonNullable<(typeof parts)[Split]>]>) {
    const images = new Uint8Array(part.images.length * options.size);
    part.images.forEach((p, i) => images.set(p, i * options.size));
    splits[split] = { images, labels: Uint8Array.from(part.labels), sources: part.sources };
  }
  if (Object.keys(splits).length === 0) throw new DataError(where, `holds no images that could be decoded (${summarise(skipped)})`);
  return { classNames, splits, skipped };
}

/** "3 not an image file (.txt), 1 hidden or system file" */
export function summarise(skipped: ReadonlyArray<{ reason: string }>): string {
  const counts = new Map<string, number>();
  for (const s of skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  return [...counts].map(([reason, n]) => `${n} ${reason}`).join(', ');
}

function isSplit(name: string | undefined): name is Split {
  return name === 'train' || name === 'test';
}

async function folderEntries(root: string, limits: ImageLimits): Promise<Entry[]> {
  const entries: Entry[] = [];
  let total = 0;
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > 4) return; // train/LABEL/IMAGE is as deep as the layout goes (one more for a wrapping folder)
    const handle = await opendir(dir);
    for await (const item of handle) {
      const full = join(dir, item.name);
      if (item.isDirectory()) {
        await walk(full, depth + 1);
      } else if (item.isFile()) {
        if (entries.length >= limits.maxFiles) throw new DataError(root, `holds more than ${limits.maxFiles} files; import it in parts`);
        const size = (await stat(full)).size;
        total += Math.min(size, limits.maxFileBytes + 1);
        if (total > limits.maxTotalBytes) throw new DataError(root, `holds more than ${limits.maxTotalBytes} bytes of files; import it in parts`);
        entries.push({ path: relative(root, full).split(sep).join('/'), size, read: () => readFile(full) });
      }
    }
  };
  try {
    await walk(root, 0);
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(root, `cannot read the folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return entries;
}

/** Zip files start with "PK". */
async function isZipFile(path: string): Promise<boolean> {
  const bytes = Buffer.alloc(2);
  try {
    const file = await open(path, 'r');
    try {
      await file.read(bytes, 0, 2, 0);
    } finally {
      await file.close();
    }
  } catch {
    return false;
  }
  return bytes[0] === 0x50 && bytes[1] === 0x4b;
}

async function zipEntries(source: string | Buffer, limits: ImageLimits, looksLikeZip: boolean, name = String(source)): Promise<{ entries: Entry[]; close(): void }> {
  if (!looksLikeZip) throw new DataError(name, 'is neither a folder nor a zip file');
  const { default: unzip } = await import('yauzl');
  const corrupt = (err: Error) => new DataError(name, `is not a valid zip file (${oneLine(err.message)})`);
  return new Promise((resolve, reject) => {
    const options: yauzl.Options = { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true };
    const opened = (err: Error | null, zip?: yauzl.ZipFile) => {
      if (err || !zip) return reject(corrupt(err ?? new Error('unreadable')));
      if (zip.entryCount > limits.maxFiles) {
        zip.close();
        return reject(new DataError(name, `holds ${zip.entryCount} entries; at most ${limits.maxFiles} are read`));
      }
      const entries: Entry[] = [];
      let declared = 0;
      zip.on('error', (e: Error) => {
        zip.close();
        reject(corrupt(e));
      });
      zip.on('entry', (entry: yauzl.Entry) => {
        if (!entry.fileName.endsWith('/')) {
          if (entry.isEncrypted()) {
            zip.close();
            return reject(new DataError(name, `${entry.fileName} is encrypted; encrypted zips are not supported`));
          }
          declared += Math.min(entry.uncompressedSize, limits.maxFileBytes + 1);
          if (declared > limits.maxTotalBytes) {
            zip.close();
            return reject(new DataError(name, `holds more than ${limits.maxTotalBytes} bytes uncompressed; import it in parts`));
          }
          entries.push({ path: entry.fileName, size: entry.uncompressedSize, read: () => readEntry(zip, entry, name, limits) });
        }
        zip.readEntry();
      });
      zip.on('end', () => resolve({ entries, close: () => zip.close() }));
      zip.readEntry();
    };
    if (typeof source === 'string') unzip.open(source, options, opened);
    else unzip.fromBuffer(source, options, opened);
  });
}

/** One entry's bytes; the declared size was checked, and yauzl stops a stream that runs past it. */
function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string, limits: ImageLimits): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    if (entry.uncompressedSize > limits.maxFileBytes) return reject(new DataError(name, `${entry.fileName} is larger than ${limits.maxFileBytes} bytes`));
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) return reject(new DataError(name, `${entry.fileName}: ${oneLine((err ?? new Error('unreadable')).message)}`));
      const out = Buffer.allocUnsafe(entry.uncompressedSize);
      let length = 0;
      stream.on('data', (chunk: Buffer) => {
        if (length + chunk.length > out.length) {
          stream.destroy();
          return reject(new DataError(name, `${entry.fileName} holds more bytes than its header says`));
        }
        chunk.copy(out, length);
        length += chunk.length;
      });
      stream.on('error', (e: Error) => reject(new DataError(name, `${entry.fileName}: ${oneLine(e.message)}`)));
      stream.on('end', () => resolve(out.subarray(0, length)));
    });
  });
}

