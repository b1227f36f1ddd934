/**
 * What the CLI commands that use the SQL store share: the --db flag, opening the store, and a
 * progress bar for long writes.
 */
import { userInfo } from 'node:os';
import { Option } from 'commander';
import { UsageError } from '@descent/engine';
import { DEFAULT_DB, openStore, parseLocation, redact, type Store } from '@descent/store';
import type { Output } from './output.js';
import { progressLine } from './progress.js';

export const dbOption = (description = 'database') =>
  new Option('--db <url>', `${description}: a SQLite file, or mariadb://user:pass@host:port/db (default: ./${DEFAULT_DB})`);

/** Where a MariaDB password comes from when a run resumed without --db records into a MariaDB store. */
export const DB_PASSWORD_VARIABLE = 'DESCENT_DB_PASSWORD';

/**
 * The --db value as a training run saves it, for --resume: a SQLite file as its absolute path, a
 * MariaDB URL with its password replaced by *** (a password is never written to a model folder).
 */
export function savedDbLocation(db: string): string {
  const location = parseLocation(db);
  return location.kind === 'sqlite' ? location.file : redact(db);
}

/**
 * The --db of a run resumed without --db, from its saved location: a MariaDB password comes from
 * DESCENT_DB_PASSWORD; without it, one line that says to pass --db.
 */
export function resumedDbLocation(saved: string, resumeFlag: string, env: NodeJS.ProcessEnv = process.env): string {
  if (parseLocation(saved).kind === 'sqlite' || !saved.includes(':***@')) return saved;
  const password = env[DB_PASSWORD_VARIABLE];
  if (password === undefined || password === '') {
    throw new UsageError(`${resumeFlag}: the run records into ${saved}, whose password is not saved; pass --db with the full URL, or set ${DB_PASSWORD_VARIABLE}`);
  }
  return saved.replace(':***@', `:${encodeURIComponent(password)}@`);
}

/** Opens the store named by --db (default ./descent.db), applying any missing migrations. */
export function openCliStore(db: string | undefined, { create = false } = {}): Promise<Store> {
  return openStore(db ?? DEFAULT_DB, { create });
}

/** Runs `work` with the store open, and closes it whatever happens. */
export async function withStore<T>(db: string | undefined, options: { create?: boolean }, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openCliStore(db, options);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** Who is running the command, for the created_by columns. */
export function currentUser(): string | null {
  try {
    return userInfo().username;
  } catch {
    return null;
  }
}

/** A progress bar on a terminal ("35000/70000 [=====>....] - ETA: 1s"); nothing otherwise. */
export function progressBar(output: Output): (done: number, total: number) => void {
  const started = performance.now();
  let last = -Infinity;
  return (done, total) => {
    const now = performance.now();
    if (!output.interactive || output.json || (now - last < 50 && done < total)) return;
    last = now;
    const perItem = done > 0 ? (now - started) / 1000 / done : 0;
    output.redraw(progressLine(done, total, { eta: perItem * (total - done), logs: {} }));
  };
}
