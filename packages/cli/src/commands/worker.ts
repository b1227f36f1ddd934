/**
 * `descent worker --queue redis://HOST:PORT`: run training jobs from a BullMQ queue (the trials of
 * `descent tune --queue ...`) on this machine's cores until stopped. Start as many as you like, on
 * as many machines; a job whose worker dies is run again by another once its lock expires.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { DEFAULT_LOCK_SECONDS, serveQueue } from '@descent/jobs';
import type { BackendName } from '@descent/engine';
import { backendOption, dataOption, jsonOption, prepareForTraining } from '../common.js';
import { positiveInteger } from '../flags.js';
import { kernelThreadsText, trialThreads, trialThreadsOption } from '../tune/threads.js';
import type { CliModule } from '../module.js';
import { Output } from '../output.js';

interface WorkerFlags {
  queue: string;
  workers: number;
  threads: number | 'auto';
  data?: string;
  backend: BackendName;
  lockSeconds: number;
  json?: boolean;
}

export const workerModule: CliModule = {
  register(program) {
    program
      .command('worker')
      .description('run training jobs (e.g. the trials of descent tune --queue) from a Redis queue, until stopped')
      .requiredOption('--queue <url>', 'the queue\'s Redis server, redis://HOST:PORT')
      .option('--workers <n>', 'jobs run at once, each on a worker thread (default: one per core)', positiveInteger, availableParallelism())
      .addOption(trialThreadsOption())
      .addOption(dataOption())
      .addOption(backendOption().default('wasm'))
      .option('--lock-seconds <s>', 'seconds without news before a job of a dead worker goes to another', positiveInteger, DEFAULT_LOCK_SECONDS)
      .addOption(jsonOption())
      .action(async (flags: WorkerFlags) => runWorker(flags));
  },
};

async function runWorker(flags: WorkerFlags): Promise<void> {
  const output = new Output({ json: flags.json === true });
  const say = (what: string, jobId: string, detail?: string): void => {
    output.note(`${new Date().toISOString()} ${what} ${jobId}${detail ? ` (${detail})` : ''}`);
    output.record({ event: what, job: jobId, detail: detail ?? null, pid: process.pid });
  };
  prepareForTraining(flags.backend);
  const worker = await serveQueue(flags.queue, {
    workers: flags.workers,
    threads: trialThreads(flags),
    backend: flags.backend,
    dataDir: flags.data ? resolve(flags.data) : undefined,
    lockSeconds: flags.lockSeconds,
    onJob: say,
  });
  output.note(`Worker ${process.pid}: taking jobs from ${flags.queue} on ${flags.workers} thread${flags.workers === 1 ? '' : 's'}${kernelThreadsText(flags)}; Ctrl-C to stop`);
  output.record({ event: 'ready', pid: process.pid, queue: flags.queue, workers: flags.workers });
  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      output.note('Stopping: running jobs go back to the queue');
      void worker.close().then(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
