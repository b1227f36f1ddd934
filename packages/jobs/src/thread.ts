/**
 * A worker thread that runs training jobs one at a time for LocalRunner (local.ts). Each thread
 * has its own engine and WASM memory, so jobs on different threads never share buffers. Datasets
 * are read once per thread and kept for the jobs that follow.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DescentError, loadDataset, setBackend, setThreads, threadCount, type BackendName, type LoadedDataset } from '@descent/engine';
import type { TrainingJobSpec } from './spec.js';
import { runTrainingJob } from './train.js';
import type { ThreadReply, ThreadRequest } from './local.js';

const port = parentPort!;
const { backend, cancel, threads } = workerData as { backend: BackendName; cancel: Int32Array; threads: number };
setThreads(threads);
setBackend(backend);
const datasets = new Map<string, LoadedDataset>();

async function dataFor(spec: TrainingJobSpec): Promise<LoadedDataset> {
  const key = `${spec.data.dataset}\0${spec.data.dir ?? ''}`;
  let data = datasets.get(key);
  if (!data) {
    data = await loadDataset(spec.data.dataset, { dir: spec.data.dir ?? undefined, download: false });
    datasets.set(key, data);
  }
  return data;
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
      });
      send({ type: 'done', id: spec.id, result: { ...result, threads: threadCount() } });
    } catch (error) {
      const expected = error instanceof DescentError;
      send({ type: 'failed', id: spec.id, message: error instanceof Error ? error.message : String(error), exitCode: expected ? error.exitCode : null, stack: error instanceof Error ? error.stack ?? null : null });
    }
  })();
});
