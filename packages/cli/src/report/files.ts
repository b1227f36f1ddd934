/**
 * Writing a set of output files so that a failure leaves nothing half-done: each file goes to a
 * temporary name in the same folder, is flushed, then renamed over the final name; if any file
 * fails, the ones this call already created are removed again.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DescentError } from '@descent/engine';

/** The page of `descent report`. */
export const REPORT_FILE = 'report.html';

export interface OutputFile {
  name: string;
  bytes: Uint8Array | string;
}

/** A file or folder the report cannot be written to; the message names it. */
export class OutputError extends DescentError {
  override name = 'OutputError';
}

export async function writeFileAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  // Unique per call: the name only has to avoid other writers of the same folder.
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Creates `dir` if needed and writes every file into it. `what` names the folder in errors
 * (e.g. "--out /tmp/x"). Returns the paths written.
 */
export async function writeFilesAtomic(dir: string, files: readonly OutputFile[], what = dir): Promise<string[]> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new OutputError(`${what}: cannot create the folder (${reason(err)})`);
  }
  const created: string[] = [];
  const written: string[] = [];
  try {
    for (const { name, bytes } of files) {
      const path = join(dir, name);
      const existed = await exists(path);
      await writeFileAtomic(path, bytes);
      if (!existed) created.push(path);
      written.push(path);
    }
  } catch (err) {
    await Promise.all(created.map((path) => rm(path, { force: true })));
    throw new OutputError(`${what}: cannot write there (${reason(err)})`);
  }
  return written;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return 'permission denied';
  if (e?.code === 'ENOTDIR' || e?.code === 'EEXIST') return 'a file is in the way of the folder';
  if (e?.code === 'EROFS') return 'read-only file system';
  if (e?.code === 'ENOSPC') return 'no space left on the device';
  return e?.code ?? (err instanceof Error ? err.message : String(err));
}
