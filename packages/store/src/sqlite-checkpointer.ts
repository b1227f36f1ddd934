/**
 * A thread that checkpoints a SQLite database's write-ahead log (copies committed pages from the
 * -wal file into the database file) every few hundred milliseconds, with its own connection, so
 * that the connection that commits never stalls on it. PASSIVE checkpoints take no lock that
 * writers or readers wait for. Started by SqliteDriver.checkpointInBackground.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const port = parentPort!;
const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file, { fileMustExist: true });

const timer = setInterval(() => {
  const [result] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
  if (result.checkpointed > 0) port.postMessage({ pages: result.checkpointed });
}, intervalMs);

port.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  port.close();
});
