/**
 * Files are written under a temporary name in the same folder, flushed, then renamed into place:
 * rename is atomic, so readers see either no file or the whole file, never half of one.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/** A temporary name next to `file`, unique to this process, so concurrent writers do not collide. */
export function temporaryName(file: string): string {
  counter += 1;
  return join(dirname(file), `.${basename(file)}.${process.pid}-${counter}.tmp`);
}

/** Write all of `bytes` to `file` and flush them to disk before returning. */
export function writeFileSynced(file: string, bytes: Uint8Array): void {
  const fd = openSync(file, 'w');
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const tmp = temporaryName(file);
  try {
    writeFileSynced(tmp, bytes);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
