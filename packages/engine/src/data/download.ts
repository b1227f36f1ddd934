/**
 * Downloads one dataset file into place, verified: bytes stream into a temporary name while being
 * hashed, and only a file whose SHA-256 matches the known sum is renamed to its real name. Any
 * failure removes the temporary file, so the cache never holds a partial or unverified file.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { temporaryName } from './atomic.js';
import type { KnownFile } from './catalog.js';
import { contentHash } from './checksums.js';

/** The part of `fetch` the downloader uses; injectable so tests need no network. */
export type FetchLike = (url: string, init: { signal: AbortSignal }) => Promise<Response>;

/** Called as bytes arrive; `total` is the Content-Length, or the known size when the server sends none. */
export type ProgressCallback = (file: string, received: number, total: number) => void;

export interface DownloadOptions {
  fetch?: FetchLike;
  onProgress?: ProgressCallback;
  /** Give up when no bytes arrive for this long. */
  idleTimeoutMs?: number;
}

const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** Downloads `url` to `dest`; throws an Error whose message says in plain words what went wrong. */
export async function downloadVerified(url: string, dest: string, known: KnownFile, options: DownloadOptions = {}): Promise<void> {
  const fetchFn: FetchLike = options.fetch ?? ((u, init) => fetch(u, init));
  const name = basename(dest);
  const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const touch = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(new Error(`no data received for ${idleMs / 1000} s`)), idleMs);
  };

  const tmp = temporaryName(dest);
  let renamed = false;
  try {
    touch();
    const response = await fetchFn(url, { signal: abort.signal });
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status} ${response.statusText}`.trim());
    const length = Number(response.headers.get('content-length'));
    const total = Number.isFinite(length) && length > 0 ? length : known.archiveBytes;

    // The folder is made only now, so a failed attempt leaves nothing behind.
    await mkdir(dirname(dest), { recursive: true });
    const hash = createHash('sha256');
    const handle = await open(tmp, 'w');
    let received = 0;
    try {
      options.onProgress?.(name, 0, total);
      if (response.body) {
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          touch();
          hash.update(value);
          await handle.write(value);
          received += value.length;
          options.onProgress?.(name, received, total);
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }

    const sha256 = hash.digest('hex');
    // A mirror that recompressed the archive still carries the canonical IDX bytes inside.
    if (sha256 !== known.archiveSha256 && contentHash(tmp, known) !== known.contentSha256) {
      throw new Error(
        `${name} failed its SHA-256 check (got ${sha256.slice(0, 12)}…, expected ${known.archiveSha256.slice(0, 12)}…) and was discarded`,
      );
    }
    await rename(tmp, dest);
    renamed = true;
  } catch (err) {
    throw new Error(describeFailure(err, abort.signal));
  } finally {
    clearTimeout(timer);
    if (!renamed) await rm(tmp, { force: true });
  }
}

/** Node's fetch says only "fetch failed"; the useful part (DNS, refused, reset) is in `cause`. */
function describeFailure(err: unknown, signal: AbortSignal): string {
  if (signal.aborted && signal.reason instanceof Error) return signal.reason.message;
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return cause && cause !== err.message ? `${err.message} (${cause})` : err.message;
}
