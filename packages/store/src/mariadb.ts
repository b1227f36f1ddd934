/**
 * The MariaDB driver (the `mariadb` connector): a small pool of connections; a transaction takes
 * one connection for itself; many rows go in one bulk batch. Rows come back as plain numbers and
 * strings (no BigInt, no Date), as they do from SQLite.
 */
import * as mariadb from 'mariadb';
import type { Driver, Executor, QueryResult, RunResult, SqlValue } from './driver.js';
import { StoreError, oneLine } from './driver.js';
import type { MariadbLocation } from './location.js';
import { MARIADB } from './migrations.js';

const CONNECT_TIMEOUT_MS = 5000;
/** Statements that only read, which `descent db query` accepts (checked besides the read-only transaction). */
const READING_STATEMENT = /^(SELECT|WITH|VALUES|TABLE|SHOW|DESCRIBE|DESC|EXPLAIN)\b/i;

function config(location: MariadbLocation): mariadb.ConnectionConfig {
  return {
    ...(location.socket ? { socketPath: location.socket } : { host: location.host, port: location.port }),
    user: location.user,
    password: location.password,
    database: location.database,
    connectTimeout: CONNECT_TIMEOUT_MS,
    bigIntAsNumber: true,
    insertIdAsNumber: true,
    decimalAsNumber: true,
    dateStrings: true,
    timezone: '+00:00',
    // Large bulk batches of images: let the connector size its packets to the server's limit.
    maxAllowedPacket: undefined,
  };
}

export async function openMariadb(location: MariadbLocation): Promise<MariadbDriver> {
  // One plain connection first: it reports the real cause (refused, bad password, no database),
  // where a pool would only time out.
  try {
    const probe = await mariadb.createConnection(config(location));
    await probe.end();
  } catch (err) {
    throw mariadbError(err, location.display);
  }
  const pool = mariadb.createPool({ ...config(location), connectionLimit: 4, acquireTimeout: 30_000 });
  return new MariadbDriver(pool, location);
}

/** A connector error as one line naming the database (never the password). */
export function mariadbError(err: unknown, display: string): StoreError {
  if (err instanceof StoreError) return err;
  const e = err as { code?: string; errno?: number; sqlMessage?: string | null; text?: string; message?: string };
  const message = oneLine(e.sqlMessage ?? e.text ?? e.message ?? String(err));
  const prefix = `--db ${display}`;
  switch (e.code) {
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_DBACCESS_DENIED_ERROR':
      return new StoreError(`${prefix}: access denied (${message})`);
    case 'ER_BAD_DB_ERROR':
      return new StoreError(`${prefix}: ${message}; create the database first (CREATE DATABASE …) or name another`);
    case 'ECONNREFUSED':
      return new StoreError(`${prefix}: cannot connect (connection refused): is the server running?`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new StoreError(`${prefix}: cannot connect (unknown host)`);
    case 'ENOENT':
      return new StoreError(`${prefix}: cannot connect (no such socket)`);
    case 'ER_CONNECTION_TIMEOUT':
    case 'ETIMEDOUT':
    case 'ER_GET_CONNECTION_TIMEOUT':
      return new StoreError(`${prefix}: cannot connect (timed out after ${CONNECT_TIMEOUT_MS / 1000} s)`);
    default:
      return new StoreError(`${prefix}: ${message}`);
  }
}

export class MariadbDriver implements Driver {
  readonly dialect = MARIADB;
  readonly display: string;

  constructor(private readonly pool: mariadb.Pool, readonly location: MariadbLocation) {
    this.display = location.display;
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.withConnection((c) => c.all<T>(sql, params));
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    return this.withConnection((c) => c.run(sql, params));
  }

  runMany(sql: string, rows: readonly (readonly SqlValue[])[]): Promise<void> {
    return this.withConnection((c) => c.runMany(sql, rows));
  }

  each(sql: string, params: readonly SqlValue[], onRow: (row: unknown[]) => void): Promise<void> {
    return this.withConnection((c) => c.each(sql, params, onRow));
  }

  async transaction<T>(work: (tx: Executor) => Promise<T>): Promise<T> {
    const connection = await this.connection();
    try {
      await connection.beginTransaction();
      try {
        const result = await work(new MariadbExecutor(connection, this.display));
        await connection.commit();
        return result;
      } catch (err) {
        await connection.rollback().catch(() => undefined);
        throw err;
      }
    } catch (err) {
      throw mariadbError(err, this.display);
    } finally {
      await connection.release();
    }
  }

  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const connection = await this.connection();
    try {
      const [row] = (await connection.query({ sql: 'SELECT GET_LOCK(?, 60) AS got', rowsAsArray: false }, ['descent_store_schema'])) as Array<{ got: number | null }>;
      if (row?.got !== 1) throw new StoreError(`--db ${this.display}: another process holds the schema lock (waited 60 s)`);
      try {
        return await work();
      } finally {
        await connection.query('SELECT RELEASE_LOCK(?)', ['descent_store_schema']).catch(() => undefined);
      }
    } finally {
      await connection.release();
    }
  }

  async readOnlyQuery(sql: string, maxRows: number): Promise<QueryResult & { truncated: boolean }> {
    const statement = withoutLeadingComments(sql);
    // Statements that commit implicitly (DDL) would end a read-only transaction before running,
    // so only reading statements are sent at all; the transaction then refuses any write they hide.
    if (!READING_STATEMENT.test(statement)) {
      const word = /^\S{1,40}/.exec(statement)?.[0] ?? '';
      throw new StoreError(`the query starts with "${word}": \`descent db query\` runs only statements that read (SELECT, WITH, VALUES, SHOW, DESCRIBE, EXPLAIN)`);
    }
    if (/\bINTO\s+(OUTFILE|DUMPFILE)\b/i.test(statement)) throw new StoreError('the query writes a file (INTO OUTFILE); `descent db query` only reads');
    const connection = await this.connection();
    try {
      await connection.query('START TRANSACTION READ ONLY');
      try {
        const result = (await connection.query({ sql, rowsAsArray: true })) as unknown[][] & { meta?: Array<{ name(): string }> };
        if (!Array.isArray(result) || !Array.isArray(result.meta)) {
          throw new StoreError('the statement returned no rows; `descent db query` runs queries (SELECT …)');
        }
        const columns = result.meta.map((column) => column.name());
        const truncated = result.length > maxRows;
        return { columns, rows: truncated ? result.slice(0, maxRows) : [...result], truncated };
      } finally {
        await connection.query('ROLLBACK').catch(() => undefined);
      }
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const e = err as { code?: string; sqlMessage?: string | null };
      if (e.code === 'ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION') {
        throw new StoreError('the query would change the database; `descent db query` only reads (SELECT, WITH … SELECT, SHOW, EXPLAIN)');
      }
      throw new StoreError(`the query failed: ${oneLine(e.sqlMessage ?? (err as Error).message)}`);
    } finally {
      await connection.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }

  private async connection(): Promise<mariadb.PoolConnection> {
    try {
      return await this.pool.getConnection();
    } catch (err) {
      throw mariadbError(err, this.display);
    }
  }

  private async withConnection<T>(work: (executor: Executor) => Promise<T>): Promise<T> {
    const connection = await this.connection();
    try {
      return await work(new MariadbExecutor(connection, this.display));
    } finally {
      await connection.release();
    }
  }
}

class MariadbExecutor implements Executor {
  readonly dialect = MARIADB;

  constructor(private readonly connection: mariadb.Connection, private readonly display: string) {}

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    const rows = await this.guard(() => this.connection.query({ sql }, params.map(bindable)));
    return [...(rows as T[])];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    const result = (await this.guard(() => this.connection.query({ sql }, params.map(bindable)))) as mariadb.UpsertResult;
    return { changes: Number(result.affectedRows), lastId: Number(result.insertId) };
  }

  async runMany(sql: string, rows: readonly (readonly SqlValue[])[]): Promise<void> {
    if (rows.length === 0) return;
    await this.guard(() => this.connection.batch({ sql }, rows.map((row) => row.map(bindable))));
  }

  async each(sql: string, params: readonly SqlValue[], onRow: (row: unknown[]) => void): Promise<void> {
    const rows = (await this.guard(() => this.connection.query({ sql, rowsAsArray: true }, params.map(bindable)))) as unknown[][];
    for (const row of rows) onRow(row);
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw mariadbError(err, this.display);
    }
  }
}

/** The connector sends Buffers as bytes; a plain Uint8Array view would not be bounded to its view. */
function bindable(value: SqlValue): unknown {
  return value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value;
}

function withoutLeadingComments(sql: string): string {
  let rest = sql.trimStart();
  for (;;) {
    if (rest.startsWith('--') || rest.startsWith('#')) rest = rest.slice(rest.indexOf('\n') === -1 ? rest.length : rest.indexOf('\n') + 1).trimStart();
    else if (rest.startsWith('/*') && !rest.startsWith('/*!') && !rest.startsWith('/*M!')) rest = rest.slice(rest.indexOf('*/') === -1 ? rest.length : rest.indexOf('*/') + 2).trimStart();
    else if (rest.startsWith('(')) rest = rest.slice(1).trimStart();
    else return rest;
  }
}
