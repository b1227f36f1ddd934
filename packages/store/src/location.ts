/**
 * Where a store lives, from the `--db` value:
 *
 *   ./descent.db, data/x.db, /abs/x.sqlite, sqlite:x.db, file:x.db    a SQLite file (the default: ./descent.db)
 *   mariadb://user:pass@host:3306/db                                  a MariaDB server over TCP
 *   mariadb://user:pass@localhost/db?socket=/run/mysqld/mysqld.sock   the same over a Unix socket
 *
 * The password never appears in what `display` returns, so messages can name the database safely.
 */
import { resolve } from 'node:path';
import { UsageError } from '@descent/engine';

/** The embedded default, in the working folder. */
export const DEFAULT_DB = 'descent.db';

export type StoreLocation = SqliteLocation | MariadbLocation;

export interface SqliteLocation {
  kind: 'sqlite';
  /** Absolute path of the database file. */
  file: string;
  /** How to name it in messages. */
  display: string;
}

export interface MariadbLocation {
  kind: 'mariadb';
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Unix socket path; when given, host and port are not used. */
  socket?: string;
  /** The URL with the password replaced by ***. */
  display: string;
}

const MAX_URL = 2048;

/** Parses a --db value; `flag` names it in errors (e.g. "--db"). */
export function parseLocation(value: string, { flag = '--db', cwd = process.cwd() }: { flag?: string; cwd?: string } = {}): StoreLocation {
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`${flag}: expected a SQLite file or mariadb://user:pass@host:port/database`);
  if (value.length > MAX_URL) throw new UsageError(`${flag}: the value is ${value.length} characters long; at most ${MAX_URL} are accepted`);
  if (/^mariadb:/i.test(value) || /^mysql:/i.test(value)) return parseMariadb(value, flag);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value);
  if (scheme) throw new UsageError(`${flag} ${printable(redact(value))}: unsupported scheme "${scheme[1]}:"; use a SQLite file path or mariadb://user:pass@host:port/database`);
  const path = value.replace(/^(sqlite|file):/i, '');
  if (path === '') throw new UsageError(`${flag} ${printable(value)}: the SQLite file name is empty`);
  if (path.includes('\0')) throw new UsageError(`${flag}: the file name contains a NUL character`);
  return { kind: 'sqlite', file: resolve(cwd, path), display: printable(path) };
}

function parseMariadb(value: string, flag: string): MariadbLocation {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag} ${printable(redact(value))}: not a valid URL; expected mariadb://user:pass@host:port/database`);
  }
  const display = printable(redact(value));
  const bad = (problem: string) => new UsageError(`${flag} ${display}: ${problem}`);
  let database: string;
  let user: string;
  let password: string;
  try {
    database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    user = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    throw bad('bad %-escape in the URL');
  }
  if (database === '') throw bad('no database name; expected mariadb://user:pass@host:port/database');
  if (database.includes('/') || database.length > 64) throw bad(`"${printable(database.slice(0, 70))}" is not a database name (at most 64 characters, no "/")`);
  if (user === '') throw bad('no user name; expected mariadb://user:pass@host:port/database');
  const port = url.port === '' ? 3306 : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const socket = url.searchParams.get('socket') ?? undefined;
  for (const key of url.searchParams.keys()) if (key !== 'socket') throw bad(`unknown option "${key}" (only ?socket=PATH is understood)`);
  if (!socket && host === '') throw bad('no host name');
  return { kind: 'mariadb', host: host || 'localhost', port, user, password, database, ...(socket ? { socket } : {}), display };
}

/** The URL with its password (if any) replaced by ***. */
export function redact(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@]*@/i, '$1:***@');
}

/** For messages: control characters shown as '?', and at most 200 characters. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 199)}…` : clean;
}
