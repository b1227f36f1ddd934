/**
 * Reading files that come from outside. Only regular files are read: a FIFO or a device named
 * like a data file would block for ever or never end, so the file is opened without blocking and
 * refused unless it is a plain file. Sizes are checked from the file's metadata before a byte is
 * read, so a reader never allocates more than the caller allows.
 */
import { closeSync, constants, fstatSync, openSync, read, readSync } from 'node:fs';
import { promisify } from 'node:util';

/** Turns a problem ("is not a regular file") into the caller's typed error naming the file. */
export type FailWith = (problem: string) => Error;

export interface OpenedFile {
  fd: number;
  size: number;
}

/** Opens `path` for reading if it is a regular file (symbolic links are followed). */
export function openRegularFile(path: string, fail: FailWith): OpenedFile {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO that has no writer returns at once instead of waiting for one.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw fail(describeOpenError(err));
  }
  try {
    const info = fstatSync(fd);
    if (info.isDirectory()) throw fail('is a folder, not a file');
    if (!info.isFile()) throw fail('is not a regular file (a FIFO, socket or device); only plain files are read');
    return { fd, size: info.size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Reads `length` bytes at `position`; fails if the file ends sooner (it changed while being read). */
export function readExactly(file: OpenedFile, length: number, position: number, fail: FailWith): Buffer {
  const out = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = readSync(file.fd, out, done, length - done, position + done);
    } catch (err) {
      throw cannotRead(err, fail);
    }
    done += checkRead(n, position + done, fail);
  }
  return out;
}

const readAsync = promisify(read);

/**
 * The file's `size` bytes from the start as chunks of at most `chunkSize`, read off the main
 * thread, each in a buffer of its own (a consumer may keep it); fails as readExactly does.
 */
export async function* readChunks(file: OpenedFile, chunkSize: number, fail: FailWith): AsyncGenerator<Buffer> {
  for (let position = 0; position < file.size; ) {
    const chunk = Buffer.allocUnsafeSlow(Math.min(chunkSize, file.size - position));
    let n: number;
    try {
      ({ bytesRead: n } = await readAsync(file.fd, chunk, 0, chunk.length, position));
    } catch (err) {
      throw cannotRead(err, fail);
    }
    position += checkRead(n, position, fail);
    yield n === chunk.length ? chunk : chunk.subarray(0, n);
  }
}

function cannotRead(err: unknown, fail: FailWith): Error {
  return fail(`cannot be read: ${describeOpenError(err)}`);
}

/** `bytesRead`, unless it is 0: the file ended at `position`, sooner than its size said. */
function checkRead(bytesRead: number, position: number, fail: FailWith): number {
  if (bytesRead === 0) throw fail(`ended after ${position} bytes while being read (did it change?)`);
  return bytesRead;
}

/** The whole of a regular file, refused without reading when it is larger than `maxBytes`. */
export function readRegularFile(path: string, maxBytes: number, fail: FailWith, what = 'file'): Buffer {
  const file = openRegularFile(path, fail);
  try {
    if (file.size > maxBytes) throw fail(`is ${formatBytes(file.size)}, more than a ${what} may be (${formatBytes(maxBytes)})`);
    return readExactly(file, file.size, 0, fail);
  } finally {
    closeSync(file.fd);
  }
}

export function closeFile(file: OpenedFile): void {
  closeSync(file.fd);
}

/** 1536 → "1.5 KiB"; exact byte counts below 1 KiB. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${Number(value.toFixed(1))} ${units[unit]}`;
}

function describeOpenError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EISDIR') return 'is a folder, not a file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR') return 'a part of the path is a file, not a folder';
  if (code === 'ELOOP') return 'too many levels of symbolic links';
  if (code === 'ENAMETOOLONG') return 'the path is too long';
  return code ?? String((err as Error).message ?? err);
}
