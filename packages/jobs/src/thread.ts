/**
 * A worker thread that runs training jobs one at a time for LocalRunner (local.ts). Each thread
 * has its own engine and WASM memory, so jobs on different threads never share buffers. Datasets
 * from IDX files are read once per thread and kept for the jobs that follow; datasets in a store
 * (spec.data.store) are read afresh for each job, since they can grow in between.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DescentError, loadDataset, setBackend, setThreads, threadCount, type BackendName, type DatasetName, type LoadedDataset } from '@descent/engine';
import { openStore } from '@descent/store';
import type { TrainingJobSpec } from './spec.js';
import { runTrainingJob } from './train.js';
import type { ThreadReply, ThreadRequest } from './local.js';

const port = parentPort!;
const { backend, cancel, threads } = workerData as { backend: BackendName; cancel: Int32Array; threads: number };
setThreads(threads);
setBackend(backend);
const datasets = new Map<string, Pick<LoadedDataset, 'train' | 'test'>>();

async function dataFor(spec: TrainingJobSpec): Promise<Pick<LoadedDataset, 'train' | 'test'>> {
  // A store's datasets can grow between jobs: read them afresh each time.
  if (spec.data.store) return readFromStore(spec.data.store, spec.data.dataset);
  const key = `${spec.data.dataset}\0${spec.data.dir ?? ''}`;
  let data = datasets.get(key);
  if (!data) {
    data = await loadDataset(spec.data.dataset as DatasetName, { dir: spec.data.dir ?? undefined, download: false });
    datasets.set(key, data);
  }
  return data;
}

async function readFromStore(db: string, dataset: string): Promise<Pick<LoadedDataset, 'train' | 'test'>> {
  const store = await openStore(db, { migrate: false });
  try {
    const summary = await store.requireDataset(dataset);
    if (summary.counts.train.reduce((a, b) => a + b, 0) === 0) throw new DescentError(`dataset ${dataset} has no training images`);
    const train = await store.loadSplit(dataset, 'train');
    const test = await store.loadSplit(dataset, 'test');
    return { train, test };
  } finally {
    await store.close();
  }
}

function send(message: ThreadReply): void {
  port.postMessage(message);
}

port.on('message', (message: ThreadRequest) => {
  const { spec } = message;
  void (async () => {
    try {
      const data = await dataFor(spec);
      const result = await runTrainingJob(spec, data.train, {
        onEvent: (event) => send({ type: 'event', id: spec.id, event }),
        // Set by the runner at any moment; read after every batch, so a cancel takes effect within one batch.
        cancelled: () => Atomics.load(cancel, 0) === 1,
      }, data.test);
      send({ type: 'done', id: spec.id, result: { ...result, threads: threadCount() } });
    } catch (error) {
      const expected = error instanceof DescentError;
      send({ type: 'failed', id: spec.id, message: error instanceof Error ? error.message : String(error), exitCode: expected ? error.exitCode : null, stack: error instanceof Error ? error.stack ?? null : null });
    }
  })();
});
