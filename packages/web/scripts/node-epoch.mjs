/**
 * One epoch of the default model on full Fashion-MNIST in Node, timed as the browser page times
 * it (from the epoch's start to its end), each run in a fresh worker thread so every run starts alike.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export function measureNodeEpoch(threads) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { threads } });
    worker.once('message', (seconds) => {
      resolve(seconds);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

if (!isMainThread) {
  const engine = await import('@descent/engine');
  const { adam, dense, flatten, loadDataset, sequential } = engine;
  const { train } = await loadDataset('fashion-mnist', { download: false });
  if (typeof engine.setThreads === 'function') {
    engine.setThreads(workerData.threads);
    await engine.threadsReady();
  }
  const model = sequential([flatten({ inputShape: [28, 28] }), dense({ units: 128, activation: 'relu' }), dense({ units: 10, activation: 'softmax' })], { seed: 42 });
  model.compile({ optimizer: adam({ learningRate: 0.001 }), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  let start = 0;
  let seconds = 0;
  await model.fit(train, train.labels, {
    epochs: 1, batchSize: 32, shuffle: true,
    callbacks: [{ onEpochBegin: () => void (start = performance.now()), onEpochEnd: () => void (seconds = (performance.now() - start) / 1000) }],
  });
  parentPort.postMessage(seconds);
}
