/**
 * The REST server and its accounts:
 *
 *   descent serve [--port 8080] [--host 127.0.0.1] [--db URL] [--workers N] [--threads N] [--rate-limit N] [--app DIR | --no-app]
 *                 [--data DIR] [--no-fashion-mnist]
 *   descent user add NAME [--scope predict|train|admin] [--password-stdin]
 *   descent user list
 *   descent token create --name NAME --scope predict|train|admin [--expires 30d] [--user NAME]
 *   descent token list
 *   descent token revoke ID
 *
 * `serve` writes JSON log lines (one per request, with its id) to stdout and says where it listens
 * on stderr. SIGTERM or Ctrl-C: stop accepting requests, finish the ones in flight, checkpoint
 * running training jobs (they continue at the next start), exit 0.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option } from 'commander';
import { destination } from 'pino';
import { UsageError, setThreads, type ThreadCount } from '@descent/engine';
import { DEFAULT_DB, redact } from '@descent/store';
import { dataOption } from '../common.js';
import { nonNegativeInteger, positiveInteger, threadCount } from '../flags.js';
import type { CliModule } from '../module.js';
import { Output } from '../output.js';
import { dbOption, openCliStore, withStore } from '../store.js';
import { importDataset } from './db.js';

const SCOPE_CHOICES = ['predict', 'train', 'admin'];

export const serveModule: CliModule = {
  register(program) {
    program
      .command('serve')
      .description('serve datasets, background training and predictions over a REST API with tokens (docs at /api/docs)')
      .option('--port <n>', 'port to listen on', (v) => port(v), 8080)
      .option('--host <address>', 'address to listen on (0.0.0.0: every interface, an explicit choice)', '127.0.0.1')
      .addOption(dbOption('database of datasets, models, users and jobs'))
      .option('--workers <n>', 'training jobs at once, each on its own thread (default: one per core)', positiveInteger)
      .addOption(new Option('--threads <n>', "threads the wasm kernels may use for predictions on the request thread: a number, or 'auto' for one per core (default 1: a small batch does not pay for waking another thread, and the other cores serve training jobs)").argParser(threadCount).default(1))
      .option('--rate-limit <n>', 'requests per minute per token (0: no limit)', nonNegativeInteger, 60_000)
      .option('--app <dir>', 'the built web app to serve at / (cross-origin isolated: COOP and COEP headers); default: packages/web/dist when it is built')
      .option('--no-app', 'serve the API only')
      .addOption(dataOption())
      .option('--no-fashion-mnist', 'do not import Fashion-MNIST into a database that holds no dataset yet')
      .addOption(new Option('--log-level <level>', 'log level of the JSON lines on stdout').choices(['fatal', 'error', 'warn', 'info', 'debug', 'silent']).default('info'))
      .action(async (flags: ServeFlags) => serve(flags));

    const user = program.command('user').description('accounts that can sign in to the server (POST /oauth/token)');
    user
      .command('add')
      .description('add a user; the password is asked for, or read from stdin with --password-stdin')
      .argument('<name>', 'user name')
      .addOption(new Option('--scope <scope>', 'the highest scope the user may ask for').choices(SCOPE_CHOICES).default('train'))
      .option('--password-stdin', 'read the password from the first line of stdin')
      .addOption(dbOption())
      .action(async (name: string, flags: { scope: 'predict' | 'train' | 'admin'; passwordStdin?: boolean; db?: string }) => {
        const password = flags.passwordStdin ? await readStdinLine() : await promptPassword();
        const { Accounts } = await import('@descent/server');
        await withStore(flags.db, { create: true }, async (store) => {
          await new Accounts(store).addUser(name, password, flags.scope);
        });
        new Output().line(`Added user ${name} (scope ${flags.scope}) to ${redact(flags.db ?? DEFAULT_DB)}`);
      });
    user
      .command('list')
      .description('list users')
      .addOption(dbOption())
      .option('--json', 'one JSON object per line')
      .action(async (flags: { db?: string; json?: boolean }) => {
        const { Accounts } = await import('@descent/server');
        const output = new Output({ json: flags.json === true });
        const users = await withStore(flags.db, {}, (store) => new Accounts(store).listUsers());
        for (const u of users) {
          output.record(u);
          output.line(`${u.name}\t${u.scope}\t${u.created_at}`);
        }
      });

    const token = program.command('token').description('personal API tokens (shown once, stored only as a hash)');
    token
      .command('create')
      .description('create a token and print it once')
      .requiredOption('--name <name>', 'what the token is for')
      .addOption(new Option('--scope <scope>', 'what it may do: predict < train < admin').choices(SCOPE_CHOICES).makeOptionMandatory())
      .option('--expires <duration>', 'lifetime: 30d, 12h, 45m, 3600s, or never', '30d')
      .option('--user <name>', 'the user it belongs to (default: none)')
      .addOption(dbOption())
      .action(async (flags: { name: string; scope: 'predict' | 'train' | 'admin'; expires: string; user?: string; db?: string }) => {
        const { Accounts, parseDuration } = await import('@descent/server');
        const ttl = parseDuration(flags.expires);
        if (flags.name.length > 200) throw new UsageError('--name: at most 200 characters');
        const issued = await withStore(flags.db, { create: true }, async (store) => {
          const accounts = new Accounts(store);
          let userId: number | null = null;
          if (flags.user) {
            const found = (await accounts.listUsers()).find((u) => u.name === flags.user);
            if (!found) throw new UsageError(`--user ${flags.user}: no such user`);
            userId = found.id;
          }
          return accounts.issue('personal', flags.scope, { name: flags.name, ttlSeconds: ttl, userId });
        });
        process.stdout.write(`${issued.token}\n`);
        const until = issued.expiresAt === null ? 'never expires' : `expires ${new Date(issued.expiresAt).toISOString()}`;
        process.stderr.write(`Token ${issued.id} (${flags.scope}, ${until}). It is shown only now: store it safely. Use it as "Authorization: Bearer <token>".\n`);
      });
    token
      .command('list')
      .description('list tokens (never their secrets)')
      .addOption(dbOption())
      .option('--json', 'one JSON object per line')
      .action(async (flags: { db?: string; json?: boolean }) => {
        const { Accounts } = await import('@descent/server');
        const output = new Output({ json: flags.json === true });
        const tokens = await withStore(flags.db, {}, (store) => new Accounts(store).listTokens());
        for (const t of tokens) {
          output.record({ ...t });
          const state = t.revoked_at ? `revoked ${t.revoked_at}` : t.expires_at ? `expires ${t.expires_at}` : 'no expiry';
          output.line(`${t.id}\t${t.kind}\t${t.scope}\t${t.name ?? ''}\t${t.user ?? ''}\t${state}`);
        }
      });
    token
      .command('revoke')
      .description('revoke a token by id (a refresh token takes its access tokens with it)')
      .argument('<id>', 'token id (descent token list)', positiveInteger)
      .addOption(dbOption())
      .action(async (id: number, flags: { db?: string }) => {
        const { Accounts } = await import('@descent/server');
        const revoked = await withStore(flags.db, {}, (store) => new Accounts(store).revoke(id));
        if (revoked === 0) throw new UsageError(`token ${id}: no such token, or already revoked`);
        new Output().line(`Revoked ${revoked} token${revoked === 1 ? '' : 's'}`);
      });
  },
};

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new UsageError(`--port ${value}: expected a port number, 0 to 65535`);
  return n;
}

interface ServeFlags {
  port: number;
  host: string;
  db?: string;
  workers?: number;
  rateLimit: number;
  logLevel: string;
  /** A folder, false with --no-app, undefined: the built web app when there is one. */
  app?: string | false;
  data?: string;
  fashionMnist: boolean;
  threads: ThreadCount;
}

/** The web app's build in this repository (packages/web/dist), when it has been built. */
function builtWebApp(): string | null {
  const dist = resolve(dirname(fileURLToPath(import.meta.url)), '../../../web/dist');
  return existsSync(join(dist, 'index.html')) ? dist : null;
}

async function serve(flags: ServeFlags): Promise<void> {
  if (typeof flags.app === 'string' && !existsSync(join(flags.app, 'index.html'))) throw new UsageError(`--app ${flags.app}: holds no index.html (build the web app first)`);
  const appDir = typeof flags.app === 'string' ? resolve(flags.app) : flags.app === undefined ? builtWebApp() : null;
  const db = flags.db ?? DEFAULT_DB;
  setThreads(flags.threads);
  const store = await openCliStore(db, { create: true });
  const { createServer } = await import('@descent/server');
  // Log lines are written to stdout asynchronously and in blocks of at least 4 KiB (a write per
  // request would cost the event loop a system call each), and at least every half second;
  // whatever is still buffered is written out when the process exits.
  const log = flags.logLevel === 'silent' ? false : destination({ dest: 1, sync: false, minLength: 4096 });
  if (log) {
    setInterval(() => log.flush(), 500).unref();
    process.once('exit', () => flushLog(log));
  }
  let server;
  try {
    // A new database starts with Fashion-MNIST, so there is something to train on at once.
    if (flags.fashionMnist && (await store.listDatasets()).length === 0) {
      const notes = new Output({ stdout: process.stderr });
      await importDataset(store, 'fashion-mnist', { data: flags.data }, notes).catch((error: unknown) => {
        notes.warn(`Fashion-MNIST was not imported: ${(error as Error).message}`);
      });
    }
    server = await createServer({ store, db, workers: flags.workers, rateLimit: flags.rateLimit, logLevel: flags.logLevel, log, appDir });
  } catch (error) {
    await store.close();
    throw error;
  }
  let address: string;
  try {
    address = await server.listen({ port: flags.port, host: flags.host });
  } catch (error) {
    await server.close();
    await store.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError(`--port ${flags.port}: already in use on ${flags.host}`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`--host ${flags.host}: not an address of this machine`);
    throw error;
  }
  const users = await store.driver.all<{ n: number }>('SELECT COUNT(*) AS n FROM users');
  const lines = [
    `descent serve: listening on ${address} (database ${store.display})${flags.host === '0.0.0.0' ? ' on every network interface' : ''}`,
    `  get a token:  curl -s ${address}/oauth/token -d grant_type=password -d username=NAME --data-urlencode password=PASSWORD`,
    Number(users[0].n) === 0 ? '  no users yet: add one with `descent user add NAME` (or make a personal token: `descent token create --name me --scope train`)' : null,
    `  API docs:     ${address}/api/docs  (OpenAPI: ${address}/api/openapi.json)`,
    appDir ? `  web app:      ${address}/  (from ${appDir})` : null,
  ].filter((line): line is string => line !== null);
  process.stderr.write(`${lines.join('\n')}\n`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`descent serve: ${signal}: no new requests; finishing those in flight and checkpointing training jobs\n`);
      void server.close().then(() => store.close()).then(resolve, (error: unknown) => {
        process.stderr.write(`descent serve: ${(error as Error).message}\n`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** Writes out log lines still buffered (at exit; a stdout that is gone is not an error then). */
function flushLog(log: ReturnType<typeof destination>): void {
  try {
    log.flushSync();
  } catch {
    // stdout closed, or nothing was ever written
  }
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    if (Buffer.concat(chunks).includes(10) || Buffer.concat(chunks).length > 4096) break;
  }
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0];
  if (!line) throw new UsageError('--password-stdin: stdin held no password');
  return line;
}

/** Asks for the password twice on the terminal, without echoing it. */
async function promptPassword(): Promise<string> {
  if (!process.stdin.isTTY) throw new UsageError('no terminal to ask for the password on; pipe it with --password-stdin');
  const ask = (question: string) => new Promise<string>((resolve, reject) => {
    process.stderr.write(question);
    let typed = '';
    const stdin = process.stdin;
    stdin.setRawMode(true);
    stdin.resume();
    const onData = (data: Buffer) => {
      for (const char of data.toString('utf8')) {
        if (char === '\r' || char === '\n') {
          finish();
          resolve(typed);
          return;
        }
        if (char === '\u0003') {
          finish();
          reject(new UsageError('cancelled'));
          return;
        }
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
  const first = await ask('Password: ');
  const again = await ask('Password (again): ');
  if (first !== again) throw new UsageError('the passwords do not match');
  return first;
}
