/**
 * The SQLite driver (better-sqlite3): one file, WAL journal (readers never block the writer),
 * foreign keys on. better-sqlite3 is synchronous; statements run one at a time through a queue so
 * that an async caller (a server handling several requests) never runs a statement inside someone
 * else's open transaction.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { Driver, Executor, QueryResult, RunResult, SqlValue } from './driver.js';
import { StoreError, oneLine } from './driver.js';
import { SQLITE } from './migrations.js';
import type { SqliteLocation } from './location.js';

type Db = Database.Database;

/** The checkpointing thread's script: next to this file when built, in dist when the sources run (tests). */
const CHECKPOINTER = ((): URL => {
  const sibling = new URL('./sqlite-checkpointer.js', import.meta.url);
  return existsSync(fileURLToPath(sibling)) ? sibling : new URL('../dist/sqlite-checkpointer.js', import.meta.url);
})();

export interface SqliteOpenOptions {
  /** Create the file when it does not exist (db init, imports). */
  create: boolean;
  /** Open the file read-only. */
  readOnly?: boolean;
}

export function openSqlite(location: SqliteLocation, options: SqliteOpenOptions): SqliteDriver {
  const { file, display } = location;
  const exists = existsSync(file);
  if (exists && statSync(file).isDirectory()) throw new StoreError(`--db ${display}: is a folder, not a SQLite database file`);
  if (!exists && !options.create) {
    throw new StoreError(`--db ${display}: no such database; create it with \`descent db init --db ${display}\` (or import a dataset)`);
  }
  if (!exists && !existsSync(dirname(file))) throw new StoreError(`--db ${display}: cannot create it, the folder ${dirname(file)} does not exist`);
  let db: Db;
  try {
    db = new Database(file, { readonly: options.readOnly === true, fileMustExist: !options.create });
  } catch (err) {
    throw sqliteError(err, display);
  }
  try {
    if (!options.readOnly) {
      // 16 KiB pages hold ~18 images each with little waste (4 KiB pages hold 4); only a new file takes it.
      if (!exists) db.pragma('page_size = 16384');
      // Reading the journal mode is the first access to the file: a non-database fails here.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL'); // with WAL: durable on a crash of the process, consistent always
    } else {
      db.pragma('query_only = ON');
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    }
    db.pragma('foreign_keys = ON');
    // Reading a split maps the file rather than copying it page by page through the cache.
    db.pragma('mmap_size = 1073741824');
    db.pragma('busy_timeout = 10000');
  } catch (err) {
    db.close();
    throw sqliteError(err, display);
  }
  return new SqliteDriver(db, location);
}

/** A SqliteError as one line naming the database. */
export function sqliteError(err: unknown, display: string): StoreError {
  const code = (err as { code?: string }).code ?? '';
  const message = oneLine((err as Error).message ?? String(err));
  const why: Record<string, string> = {
    SQLITE_NOTADB: 'is not a SQLite database',
    SQLITE_CORRUPT: `the database file is corrupt (${message})`,
    SQLITE_CANTOPEN: `cannot open the file (${message})`,
    SQLITE_READONLY: `the database is read-only (${message})`,
    SQLITE_BUSY: `the database is locked by another process (${message})`,
    SQLITE_FULL: 'the disk is full',
    SQLITE_IOERR: `input/output error (${message})`,
    SQLITE_PERM: 'permission denied',
  };
  const known = Object.entries(why).find(([prefix]) => code.startsWith(prefix));
  return new StoreError(`--db ${display}: ${known ? known[1] : message}`);
}

export class SqliteDriver implements Driver {
  readonly dialect = SQLITE;
  readonly display: string;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly direct: Executor;
  private checkpointer: Worker | undefined;
  /** Checkpoints the background thread has made that copied pages, and how many pages in all. */
  backgroundCheckpoints = 0;
  checkpointedPages = 0;

  constructor(private readonly db: Db, readonly location: SqliteLocation) {
    this.display = location.display;
    this.direct = new SqliteExecutor(db, location.display);
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.serial(() => this.direct.all<T>(sql, params));
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    return this.serial(() => this.direct.run(sql, params));
  }

  runMany(sql: string, rows: readonly (readonly SqlValue[])[]): Promise<void> {
    return this.transaction((tx) => tx.runMany(sql, rows));
  }

  each(sql: string, params: readonly SqlValue[], onRow: (row: unknown[]) => void): Promise<void> {
    return this.serial(() => this.direct.each(sql, params, onRow));
  }

  transaction<T>(work: (tx: Executor) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      this.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(this.direct);
        this.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.exec('ROLLBACK');
        throw err;
      }
    });
  }

  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return work(); // migrations run inside BEGIN IMMEDIATE, which already excludes other writers
  }

  async readOnlyQuery(sql: string, maxRows: number): Promise<QueryResult & { truncated: boolean }> {
    // A separate read-only connection with query_only set: SQLite itself refuses any write.
    const reader = openSqlite(this.location, { create: false, readOnly: true });
    try {
      let statement: Database.Statement;
      try {
        statement = reader.db.prepare(sql);
      } catch (err) {
        throw new StoreError(`the query does not run: ${oneLine((err as Error).message)}`);
      }
      if (!statement.readonly || !statement.reader) {
        throw new StoreError('the query would change the database; `descent db query` only reads (SELECT, WITH … SELECT, EXPLAIN)');
      }
      const columns = statement.columns().map((c) => c.name);
      const rows: unknown[][] = [];
      let truncated = false;
      try {
        for (const row of statement.raw(true).iterate() as IterableIterator<unknown[]>) {
          if (rows.length === maxRows) {
            truncated = true;
            break;
          }
          rows.push(row);
        }
      } catch (err) {
        throw new StoreError(`the query failed: ${oneLine((err as Error).message)}`);
      }
      return { columns, rows, truncated };
    } finally {
      await reader.close();
    }
  }

  /**
   * Checkpoints the write-ahead log on a thread of its own every `intervalMs`, and stops this
   * connection from doing it at commit time: a commit that crosses SQLite's threshold (1,000
   * pages) would otherwise copy 16 MB to the database file before it returns. If the thread
   * fails, this connection checkpoints as before.
   */
  checkpointInBackground(intervalMs = 200): void {
    if (this.checkpointer || !this.db.open || this.db.readonly) return;
    const thread = new Worker(CHECKPOINTER, { workerData: { file: this.location.file, intervalMs } });
    this.checkpointer = thread;
    this.db.pragma('wal_autocheckpoint = 0');
    thread.on('message', (message: { pages: number }) => {
      this.backgroundCheckpoints += 1;
      this.checkpointedPages += message.pages;
    });
    const stopped = (): void => {
      if (this.checkpointer === thread) this.checkpointer = undefined;
      if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
    };
    thread.on('error', stopped);
    thread.on('exit', stopped);
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    const thread = this.checkpointer;
    if (thread) {
      const exited = new Promise((resolve) => thread.once('exit', resolve));
      thread.postMessage('stop');
      await exited;
    }
    if (this.db.open) this.db.close();
  }

  private exec(sql: string): void {
    try {
      this.db.exec(sql);
    } catch (err) {
      throw sqliteError(err, this.display);
    }
  }

  /** Runs `work` after everything queued before it. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

class SqliteExecutor implements Executor {
  readonly dialect = SQLITE;
  private readonly statements = new Map<string, Database.Statement>();
  /** Statements that return rows as arrays (each). */
  private readonly rawStatements = new Map<string, Database.Statement>();

  constructor(private readonly db: Db, private readonly display: string) {}

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.guard(() => this.prepare(sql).all(...params.map(bindable)) as T[]);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    return this.guard(() => {
      const result = this.prepare(sql).run(...params.map(bindable));
      return { changes: result.changes, lastId: Number(result.lastInsertRowid) };
    });
  }

  async runMany(sql: string, rows: readonly (readonly SqlValue[])[]): Promise<void> {
    this.guard(() => {
      const statement = this.prepare(sql);
      for (const row of rows) statement.run(...row.map(bindable));
    });
  }

  async each(sql: string, params: readonly SqlValue[], onRow: (row: unknown[]) => void): Promise<void> {
    this.guard(() => {
      let statement = this.rawStatements.get(sql);
      if (!statement) this.rawStatements.set(sql, (statement = this.db.prepare(sql).raw(true)));
      for (const row of statement.iterate(...params.map(bindable)) as IterableIterator<unknown[]>) onRow(row);
    });
  }

  private prepare(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) this.statements.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }

  private guard<T>(work: () => T): T {
    try {
      return work();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw typeof code === 'string' && code.startsWith('SQLITE_') ? sqliteError(err, this.display) : err;
    }
  }
}

/** better-sqlite3 binds Buffers, not plain Uint8Arrays: view the same memory as a Buffer. */
function bindable(value: SqlValue): unknown {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return value;
}
