/** SHA-256 checks of dataset files against the known canonical sums in catalog.ts. */
import { createHash } from 'node:crypto';
import { DataError } from '../errors.js';
import { DATASETS, FILE_ROLES, type DatasetFileRole, type DatasetName, type KnownFile } from './catalog.js';
import { DEFAULT_MAX_IDX_BYTES, isGzip, readMaybeGzip } from './idx.js';
import { readRegularFile } from './read.js';

export interface DatasetFiles {
  trainImages: string;
  trainLabels: string;
  testImages: string;
  testLabels: string;
}

export interface ChecksumStatus {
  role: DatasetFileRole;
  file: string;
  /** SHA-256 of the file as it is on disk. */
  sha256: string;
  /** SHA-256 of the IDX bytes (after gunzip for a .gz file; equal to sha256 otherwise). */
  contentSha256: string;
  /** SHA-256 of the published .gz archive. */
  expectedArchiveSha256: string;
  /** SHA-256 of the IDX bytes inside the published archive. */
  expectedContentSha256: string;
  /** The file is the published archive, or holds exactly the canonical IDX bytes. */
  matches: boolean;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Hashes each of the four files and compares it with the canonical checksums of `name`. */
export function checksumStatus(files: DatasetFiles, name: DatasetName = 'fashion-mnist'): ChecksumStatus[] {
  const info = DATASETS[name];
  if (!info) throw new RangeError(`checksumStatus: unknown dataset "${String(name)}"`);
  return FILE_ROLES.map((role) => {
    const file = files[role];
    const known = info.files[role];
    const raw = readRegularFile(file, DEFAULT_MAX_IDX_BYTES, (problem) => new DataError(file, problem), 'dataset file');
    const sha256 = sha256Hex(raw);
    // A gzip file is only opened when its archive hash does not already match.
    const contentSha256 =
      sha256 === known.archiveSha256 ? known.contentSha256 : isGzip(raw) ? contentHash(file, known) : sha256;
    return {
      role,
      file,
      sha256,
      contentSha256,
      expectedArchiveSha256: known.archiveSha256,
      expectedContentSha256: known.contentSha256,
      matches: sha256 === known.archiveSha256 || contentSha256 === known.contentSha256,
    };
  });
}

/** SHA-256 of the decompressed bytes, or '' when the file cannot be decompressed within the known size. */
export function contentHash(file: string, known: KnownFile): string {
  try {
    // Capped one byte past the canonical size: anything larger cannot match, so never inflate it all.
    return sha256Hex(readMaybeGzip(file, known.contentBytes + 1));
  } catch {
    return '';
  }
}
