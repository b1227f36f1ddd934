/**
 * What the store needs from a database, so that one store works over SQLite (synchronous, in
 * process) and MariaDB (a server, asynchronous) alike. Statements use `?` placeholders on both;
 * values are always parameters, never spliced into the SQL.
 */
import { DescentError } from '@descent/engine';
import type { Dialect } from './migrations.js';

export type SqlValue = string | number | bigint | null | Uint8Array;

export interface RunResult {
  changes: number;
  /** The id of an inserted row (auto-numbered). */
  lastId: number;
}

/** A result set: column names and one array of values per row. */
export interface QueryResult {
  columns: string[];
  rows: unknown[][];
}

/** Statements on one connection (or within one transaction). */
export interface Executor {
  readonly dialect: Dialect;
  all<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult>;
  /** The same statement once per row of values: a prepared statement (SQLite) or a bulk batch (MariaDB). */
  runMany(sql: string, rows: readonly (readonly SqlValue[])[]): Promise<void>;
  /**
   * Calls `onRow` for each row of a query, in order, without collecting them first; the values
   * are the columns in SELECT order. Bytes may be reused after the call: copy what you keep.
   */
  each(sql: string, params: readonly SqlValue[], onRow: (row: unknown[]) => void): Promise<void>;
}

export interface Driver extends Executor {
  /** How to name the database in messages (no password). */
  readonly display: string;
  /** Runs `work` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: Executor) => Promise<T>): Promise<T>;
  /**
   * Runs one statement read-only (refusing anything that writes, whatever the SQL says), for
   * `descent db query`.
   */
  readOnlyQuery(sql: string, maxRows: number): Promise<QueryResult & { truncated: boolean }>;
  /** Runs `work` holding a lock that only one process at a time can hold (migrations). */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /**
   * For a long-running server: moves the database's own housekeeping off the calling thread where
   * the database has any (SQLite: write-ahead-log checkpoints, on a thread of their own).
   */
  checkpointInBackground?(): void;
  close(): Promise<void>;
}

/** A failure of the database itself (cannot connect, refused, corrupt, …), named by its --db. */
export class StoreError extends DescentError {
  override name = 'StoreError';
}

/** The timestamp format both databases store: 'YYYY-MM-DD HH:MM:SS.mmm' in UTC. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** One line, short: database messages can carry newlines or echo long SQL. */
export function oneLine(message: string, max = 300): string {
  const line = message.replace(/\s*\n\s*/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
