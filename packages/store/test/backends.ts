// The two databases every behaviour test runs against: a SQLite file in a temporary folder, and a
// real MariaDB server started for the test file (one server per file, one database per test).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMariadbServer, type MariadbServer } from '../src/mariadb-server.js';

export interface Backend {
  name: 'sqlite' | 'mariadb';
  /** A --db value for a new, empty database. */
  fresh(): Promise<string>;
}

export interface Backends {
  sqlite: Backend;
  mariadb: Backend;
  /** The MariaDB server, once started. */
  server(): MariadbServer;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function backends(prefix: string): Backends {
  let server: MariadbServer | undefined;
  let folder: string | undefined;
  let count = 0;
  return {
    sqlite: {
      name: 'sqlite',
      async fresh() {
        folder ??= mkdtempSync(join(tmpdir(), `${prefix}-`));
        return join(folder, `t${++count}.db`);
      },
    },
    mariadb: {
      name: 'mariadb',
      async fresh() {
        if (!server) throw new Error('the MariaDB server was not started');
        return server.createDatabase(`t${++count}`);
      },
    },
    server() {
      if (!server) throw new Error('the MariaDB server was not started');
      return server;
    },
    async start() {
      server = await startMariadbServer();
    },
    async stop() {
      await server?.stop();
      if (folder) rmSync(folder, { recursive: true, force: true });
    },
  };
}
