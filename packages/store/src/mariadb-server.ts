/**
 * A throwaway MariaDB server for tests and benchmarks: Debian's mariadb-server binaries, a new data
 * directory under the system's temporary folder, a free port on 127.0.0.1 and a Unix socket, a
 * database and a user with a random password. `stop()` shuts it down and deletes everything.
 *
 *   const server = await startMariadbServer();
 *   const url = await server.createDatabase('store_test');   // mariadb://descent:…@127.0.0.1:PORT/store_test
 *   …
 *   await server.stop();
 *
 * Start one per test file (about 3 s) and give each test its own database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mariadb from 'mariadb';

export interface MariadbServer {
  /** TCP port on 127.0.0.1. */
  port: number;
  socket: string;
  user: string;
  password: string;
  /** Creates an empty database that the user owns; returns its mariadb:// URL (TCP). */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL as root over the socket (test set-up: users, grants). */
  admin(sql: string, params?: unknown[]): Promise<unknown>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /**
   * Skip flushing to disk (default true): the data is thrown away anyway, and tests run several
   * times faster. Pass false to measure the server as it is usually configured.
   */
  fast?: boolean;
  /** Extra mariadbd arguments. */
  args?: string[];
  /** How long to wait for the server, in ms. Default 60 s. */
  timeoutMs?: number;
}

const SERVER_BINARIES = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'];
const INSTALL_BINARIES = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db'];

/** Why a server cannot be started here, or undefined when it can. */
export function mariadbUnavailable(): string | undefined {
  if (!SERVER_BINARIES.some(existsSync)) return `no MariaDB server binary (${SERVER_BINARIES.join(' or ')}); install Debian's mariadb-server`;
  if (!INSTALL_BINARIES.some(existsSync)) return `no mariadb-install-db (${INSTALL_BINARIES.join(' or ')}); install Debian's mariadb-server`;
  return undefined;
}

export async function startMariadbServer(options: StartOptions = {}): Promise<MariadbServer> {
  const missing = mariadbUnavailable();
  if (missing) throw new Error(missing);
  const serverBinary = SERVER_BINARIES.find(existsSync)!;
  const installBinary = INSTALL_BINARIES.find(existsSync)!;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const dir = mkdtempSync(join(tmpdir(), 'descent-mariadb-'));
  const datadir = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const log = join(dir, 'error.log');
  const asRoot = process.getuid?.() === 0;
  const userArgs = asRoot ? ['--user=root'] : [];
  let child: ChildProcess | undefined;
  const cleanup = () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  try {
    await run(installBinary, ['--no-defaults', `--datadir=${datadir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...userArgs], timeoutMs);
    const port = await freePort();
    const started = spawn(serverBinary, [
      '--no-defaults', `--datadir=${datadir}`, `--socket=${socket}`, `--port=${port}`, '--bind-address=127.0.0.1',
      '--skip-name-resolve', `--pid-file=${join(dir, 'mysqld.pid')}`, `--log-error=${log}`, '--innodb-buffer-pool-size=256M',
      '--max-allowed-packet=64M', ...userArgs,
      ...(options.fast === false ? [] : ['--innodb-flush-log-at-trx-commit=0', '--innodb-doublewrite=0', '--innodb-flush-method=nosync', '--sync-frm=0']),
      ...(options.args ?? []),
    ], { stdio: 'ignore' });
    child = started;
    let exited = false;
    started.once('exit', () => (exited = true));
    const root = { socketPath: socket, user: 'root', password: '', connectTimeout: 2000 };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) throw new Error(`mariadbd exited at start: ${tail(log)}`);
      try {
        const c = await mariadb.createConnection(root);
        await c.end();
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`mariadbd did not accept connections within ${timeoutMs} ms: ${tail(log)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const user = 'descent';
    const password = randomBytes(12).toString('hex');
    const admin = async (sql: string, params: unknown[] = []) => {
      const c = await mariadb.createConnection(root);
      try {
        return await c.query(sql, params);
      } finally {
        await c.end();
      }
    };
    for (const host of ['127.0.0.1', 'localhost']) await admin('CREATE USER ?@? IDENTIFIED BY ?', [user, host, password]);
    return {
      port,
      socket,
      user,
      password,
      admin,
      async createDatabase(name: string) {
        if (!/^[a-z][a-z0-9_]{0,63}$/.test(name)) throw new Error(`createDatabase: ${name} is not a simple database name`);
        await admin(`CREATE DATABASE ${name}`); // a checked identifier: names cannot be parameters
        for (const host of ['127.0.0.1', 'localhost']) await admin(`GRANT ALL ON ${name}.* TO ?@?`, [user, host]);
        return `mariadb://${user}:${password}@127.0.0.1:${port}/${name}`;
      },
      async stop() {
        process.off('exit', cleanup);
        if (!exited) {
          const gone = new Promise<void>((resolve) => started.once('exit', () => resolve()));
          started.kill('SIGTERM');
          const timer = setTimeout(() => started.kill('SIGKILL'), 30_000);
          await gone;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    process.off('exit', cleanup);
    cleanup();
    throw err;
  }
}

function run(command: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} failed (exit ${code}): ${output.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '(no log)';
  }
}
